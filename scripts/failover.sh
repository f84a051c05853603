#!/usr/bin/env bash
# Failover after kill -9 of the open segment's leader, under write load, on the cluster of start-cluster.sh, and how
# long each kill stalled the writes (issue 14, item 6).
#   1. starts the cluster from the distribution (scripts/start-cluster.sh: 3 meta nodes, 3 storage nodes, on
#      loopback; state and logs in RUN_DIR, default run/failover);
#   2. creates shard "failover" (3 replicas, min ISR 2) and starts a writer on it (bin/segstore-perf --gap-report);
#   3. KILLS times (default 3): reads the shard's route, kill -9 the storage node that leads its open segment,
#      waits until writes were acknowledged again, starts the node again with the same configuration, and waits for
#      a healthy cluster (every ISR full). FAULT=pause instead pauses the leader (SIGSTOP) for PAUSE_SECONDS
#      (default 8; the cluster's session timeout is 6 s) and resumes it (SIGCONT): its followers find it silent
#      (leader.unreachable.ms) and the controller moves its leaderships before its session ends;
#   4. prints, per kill, the longest pause between acknowledgements from the kill until the cluster was healthy
#      again (and the longest in BASELINE_SECONDS, default 10, of load before the first kill), then stops the
#      writer and the cluster (only the PIDs this run recorded; KEEP_CLUSTER=1 leaves the cluster up).
# Usage: [FAULT=kill|pause] scripts/failover.sh [KILLS=3]. Writer options and SEGMENT_BYTES as scripts/rolling-restart.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
KILLS="${1:-3}"
RUN_DIR="${RUN_DIR:-run/failover}"
export RUN_DIR
SETTLE_SECONDS="${SETTLE_SECONDS:-3}"
FAULT="${FAULT:-kill}"
PAUSE_SECONDS="${PAUSE_SECONDS:-8}"
BASELINE_SECONDS="${BASELINE_SECONDS:-10}"

scripts/start-cluster.sh
META="$(cat "$RUN_DIR/meta-addresses")"
DIST="$(cat "$RUN_DIR/dist")"
ADMIN=("$DIST/bin/segstore-admin" --meta "$META")
"${ADMIN[@]}" create-shard failover --replicas 3 --min-isr 2 ${SEGMENT_BYTES:+--segment-bytes "$SEGMENT_BYTES"} > /dev/null 2>&1 || "${ADMIN[@]}" route failover > /dev/null

# The 6 processes in the order start-cluster.sh recorded them: meta-1..3, then node-1..3.
mapfile -t PIDS < "$RUN_DIR/pids"
if [ "${#PIDS[@]}" -ne 6 ]; then
  echo "expected 6 PIDs in $RUN_DIR/pids, found ${#PIDS[@]}" >&2
  exit 1
fi
save_pids() { printf '%s\n' "${PIDS[@]}" > "$RUN_DIR/pids"; }

# shellcheck source=scripts/cluster-lib.sh
source scripts/cluster-lib.sh

# The storage node (1..3) leading the open segment of shard "failover".
open_leader() { "${ADMIN[@]}" route failover | grep ', open) ' | sed -E 's/.* leader ([0-9]+) .*/\1/'; }
# Writes were acknowledged in a one-second report that began after ms time $1.
acked_after() { awk -v t="$1" '$1 == "gap" && $2 >= t + 1000 && $4 > 0 { found = 1 } END { exit !found }' "$WRITER_LOG"; }

wait_until "a healthy cluster" 60 healthy
start_writer failover
sleep "$SETTLE_SECONDS"
t0="$(now_ms)"
sleep "$BASELINE_SECONDS"
WINDOWS=("baseline $t0 $(( $(now_ms) - 1000 ))")
for k in $(seq 1 "$KILLS"); do
  leader="$(open_leader)"
  i=$(( leader + 2 )) # node-N is the (N+3)th PID
  pid="${PIDS[$i]}"
  if [ "$FAULT" = pause ]; then
    echo "SIGSTOP of node-$leader (pid $pid), the open segment's leader, for ${PAUSE_SECONDS}s..."
    t0="$(now_ms)"
    kill -STOP "$pid"
    wait_until "writes acknowledged again while node-$leader is paused" 60 acked_after "$t0"
    echo "  writes acknowledged again while node-$leader is paused; new leader $(open_leader)"
    left=$(( PAUSE_SECONDS * 1000 - ($(now_ms) - t0) ))
    if [ "$left" -gt 0 ]; then sleep "$(awk -v ms="$left" 'BEGIN { printf "%.3f", ms / 1000 }')"; fi
    kill -CONT "$pid"
  else
    echo "kill -9 of node-$leader (pid $pid), the open segment's leader..."
    t0="$(now_ms)"
    kill -KILL "$pid"
    wait_until "node-$leader (pid $pid) to exit" 30 bash -c "! kill -0 $pid 2> /dev/null"
    wait_until "writes acknowledged again after the kill" 60 acked_after "$t0"
    PIDS[$i]="$(start_process "node-$leader")"
    save_pids
  fi
  wait_until "a healthy cluster after node-$leader is back" 180 healthy
  t1="$(now_ms)"
  echo "  node-$leader: new leader $(open_leader), healthy again $((t1 - t0)) ms after the $FAULT; pid ${PIDS[$i]}"
  WINDOWS+=("$FAULT-$k $t0 $t1")
  sleep "$SETTLE_SECONDS"
done
sleep 1
stop_writer
trap - EXIT

echo
echo "longest pause between acknowledgements after each $FAULT of the leader, and before any (writer: $WRITER_LOG):"
report_gaps

if [ -z "${KEEP_CLUSTER:-}" ]; then
  scripts/stop-cluster.sh
fi
