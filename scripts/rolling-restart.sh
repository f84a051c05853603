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
# Writer options: WRITER_IN_FLIGHT (default 8), WRITER_RECORD_BYTES (default 512), WRITER_RECORDS_PER_REQUEST (4).
set -euo pipefail
cd "$(dirname "$0")/.."
RUN_DIR="${RUN_DIR:-run/rolling-restart}"
export RUN_DIR
SETTLE_SECONDS="${SETTLE_SECONDS:-3}"
BASELINE_SECONDS="${BASELINE_SECONDS:-10}"

now_ms() { date +%s%3N; }

scripts/start-cluster.sh
META="$(cat "$RUN_DIR/meta-addresses")"
DIST="$(cat "$RUN_DIR/dist")"
ADMIN=("$DIST/bin/segstore-admin" --meta "$META")
"${ADMIN[@]}" create-shard rolling --replicas 3 --min-isr 2 > /dev/null 2>&1 || "${ADMIN[@]}" route rolling > /dev/null

# The 6 processes in the order start-cluster.sh recorded them: meta-1..3, then node-1..3.
mapfile -t PIDS < "$RUN_DIR/pids"
NAMES=(meta-1 meta-2 meta-3 node-1 node-2 node-3)
if [ "${#PIDS[@]}" -ne 6 ]; then
  echo "expected 6 PIDs in $RUN_DIR/pids, found ${#PIDS[@]}" >&2
  exit 1
fi
save_pids() { printf '%s\n' "${PIDS[@]}" > "$RUN_DIR/pids"; }

# Metrics of meta node i (1..3) and storage node i, as start-meta-cluster.sh and start-cluster.sh set them up.
BASE="${META_PORT_BASE:-7000}"
meta_metrics() { curl -s --max-time 2 "http://127.0.0.1:$((BASE + 400 + $1))/metrics" || true; }
metric() { awk -v k="$1" '$1 == k { printf "%d", $2; found = 1 } END { if (!found) printf "-1" }'; }
leader_metrics() {
  for i in 1 2 3; do
    m="$(meta_metrics "$i")"
    if [ "$(metric segstore_meta_is_leader <<< "$m")" = 1 ]; then
      printf '%s' "$m"
      return
    fi
  done
}

# Healthy: a meta leader, 3 live storage nodes, every ISR full.
healthy() {
  local m
  m="$(leader_metrics)"
  [ -n "$m" ] && [ "$(metric 'segstore_meta_storage_nodes{state="alive"}' <<< "$m")" = 3 ] \
    && [ "$(metric segstore_meta_under_replicated_segments <<< "$m")" = 0 ]
}

# Meta node i is back: it applies what the leader has committed.
meta_caught_up() {
  local m leader committed applied
  leader="$(leader_metrics)"
  [ -n "$leader" ] || return 1
  committed="$(metric 'segstore_meta_raft_index{kind="committed"}' <<< "$leader")"
  m="$(meta_metrics "$1")"
  applied="$(metric 'segstore_meta_raft_index{kind="applied"}' <<< "$m")"
  [ "$applied" -ge "$committed" ] && [ "$committed" -gt 0 ]
}

wait_until() { # DESCRIPTION SECONDS COMMAND...
  local what="$1" seconds="$2"
  shift 2
  local end=$(( $(date +%s) + seconds ))
  until "$@"; do
    if [ "$(date +%s)" -ge "$end" ]; then
      echo "timed out after ${seconds}s waiting for $what" >&2
      return 1
    fi
    sleep 0.2
  done
}

start_process() { # NAME: starts it again as start-meta-cluster.sh / start-cluster.sh did; prints its PID
  local name="$1" dir="$RUN_DIR/$1"
  case "$name" in
    meta-*) SEGSTORE_HEAP=-Xmx512m SEGSTORE_LOG_DIR="$dir/logs" nohup "$DIST/bin/segstore-meta" --config "$dir/meta.properties" \
              >> "$dir/console.log" 2>&1 & ;;
    node-*) SEGSTORE_HEAP=-Xmx512m SEGSTORE_LOG_DIR="$dir/logs" nohup "$DIST/bin/segstore-node" --config "$dir/node.properties" \
              >> "$dir/console.log" 2>&1 & ;;
  esac
  echo $!
}

wait_until "a healthy cluster" 60 healthy
WRITER_LOG="$RUN_DIR/writer.log"
"$DIST/bin/segstore-perf" --meta "$META" --shard rolling --gap-report --warmup-seconds 0 --seconds 100000 \
  --in-flight "${WRITER_IN_FLIGHT:-8}" --record-bytes "${WRITER_RECORD_BYTES:-512}" \
  --records-per-request "${WRITER_RECORDS_PER_REQUEST:-4}" > "$WRITER_LOG" 2>&1 &
WRITER=$!
echo "$WRITER" > "$RUN_DIR/writer.pid"
stop_writer() {
  if kill -0 "$WRITER" 2> /dev/null; then
    kill -TERM "$WRITER" 2> /dev/null || true
  fi
  rm -f "$RUN_DIR/writer.pid"
}
trap stop_writer EXIT
wait_until "the writer's first acknowledgements" 60 grep -q 'acked [1-9]' "$WRITER_LOG"
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
for w in "${WINDOWS[@]}"; do
  read -r name t0 t1 <<< "$w"
  awk -v name="$name" -v t0="$t0" -v t1="$t1" '
    $1 == "gap" && $2 >= t0 && $2 <= t1 + 1000 { if ($8 > max) max = $8; n++ }
    $1 == "gap" { failed = $6 }
    END { printf "  %-8s %6d ms   (%d one-second reports; failed writes so far: %d)\n", name, max, n, failed }' "$WRITER_LOG"
done

if [ -z "${KEEP_CLUSTER:-}" ]; then
  scripts/stop-cluster.sh
fi
