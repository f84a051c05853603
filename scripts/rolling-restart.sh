#!/usr/bin/env bash
# A rolling restart of the local cluster under write load, and how long each restart stalled the writes.
#   1. starts the cluster from the distribution (scripts/start-cluster.sh: 3 meta nodes, 3 storage nodes, on
#      loopback; state and logs in RUN_DIR, default run/rolling-restart);
#   2. creates shard "rolling" (3 replicas, min ISR 2) and starts a writer on it (bin/segstore-perf --gap-report:
#      every second, the longest pause between two acknowledgements);
#   3. restarts each of the 6 processes in turn: SIGTERM to its recorded PID (a storage node hands its
#      leaderships over first, a meta leader its Raft leadership), waits for it to exit, starts it again with the
#      same configuration, and waits until it is back (a meta node has caught up with the leader's log; a storage
#      node is registered and every ISR is full again), then lets the writer run a few seconds more;
#   4. prints, per restart, the longest pause between acknowledgements from the SIGTERM until it was back (and,
#      for scale, the longest one in BASELINE_SECONDS, default 10, of load before the first restart), then stops
#      the writer and the cluster (only the PIDs this run recorded; KEEP_CLUSTER=1 leaves the cluster up).
# On a small machine the pauses include the CPU the restarted JVM takes while it starts (7 JVMs on 2 cores here).
# Writer options: WRITER_IN_FLIGHT (default 8), WRITER_RECORD_BYTES (default 512), WRITER_RECORDS_PER_REQUEST (4),
# WRITER_RATE (records/s; default none: as fast as the window allows). SEGMENT_BYTES: the shard's segment size
# (default the cluster's), small to have segments roll during the restarts.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN_DIR="${RUN_DIR:-run/rolling-restart}"
export RUN_DIR
SETTLE_SECONDS="${SETTLE_SECONDS:-3}"
BASELINE_SECONDS="${BASELINE_SECONDS:-10}"

scripts/start-cluster.sh
META="$(cat "$RUN_DIR/meta-addresses")"
DIST="$(cat "$RUN_DIR/dist")"
ADMIN=("$DIST/bin/segstore-admin" --meta "$META")
"${ADMIN[@]}" create-shard rolling --replicas 3 --min-isr 2 ${SEGMENT_BYTES:+--segment-bytes "$SEGMENT_BYTES"} > /dev/null 2>&1 || "${ADMIN[@]}" route rolling > /dev/null

# The 6 processes in the order start-cluster.sh recorded them: meta-1..3, then node-1..3.
mapfile -t PIDS < "$RUN_DIR/pids"
NAMES=(meta-1 meta-2 meta-3 node-1 node-2 node-3)
if [ "${#PIDS[@]}" -ne 6 ]; then
  echo "expected 6 PIDs in $RUN_DIR/pids, found ${#PIDS[@]}" >&2
  exit 1
fi
save_pids() { printf '%s\n' "${PIDS[@]}" > "$RUN_DIR/pids"; }

# shellcheck source=scripts/cluster-lib.sh
source scripts/cluster-lib.sh

wait_until "a healthy cluster" 60 healthy
start_writer rolling
sleep "$SETTLE_SECONDS"
t0="$(now_ms)"
sleep "$BASELINE_SECONDS"
WINDOWS=("baseline $t0 $(( $(now_ms) - 1000 ))")
for i in "${!NAMES[@]}"; do
  name="${NAMES[$i]}"
  pid="${PIDS[$i]}"
  echo "restarting $name (pid $pid)..."
  t0="$(now_ms)"
  kill -TERM "$pid"
  wait_until "$name (pid $pid) to exit" 60 bash -c "! kill -0 $pid 2> /dev/null"
  stopped="$(now_ms)"
  PIDS[$i]="$(start_process "$name")"
  save_pids
  case "$name" in
    meta-*) wait_until "$name to catch up" 120 meta_caught_up "${name#meta-}" ;;
  esac
  wait_until "a healthy cluster after restarting $name" 180 healthy
  t1="$(now_ms)"
  echo "  $name: stopped in $((stopped - t0)) ms, back (healthy) $((t1 - t0)) ms after the SIGTERM; new pid ${PIDS[$i]}"
  WINDOWS+=("$name $t0 $t1")
  sleep "$SETTLE_SECONDS"
done
sleep 1
stop_writer
trap - EXIT

echo
echo "longest pause between acknowledgements while each process restarted, and before any (writer: $WRITER_LOG):"
report_gaps

if [ -z "${KEEP_CLUSTER:-}" ]; then
  scripts/stop-cluster.sh
fi
