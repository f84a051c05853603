# Shell functions shared by the scripts that measure write stalls on the cluster of start-cluster.sh
# (rolling-restart.sh, failover.sh). Source it after start-cluster.sh has run, with RUN_DIR, DIST and META set
# (await_free_cluster_ports: before it, bench-cluster.sh and idle-shards.sh).

now_ms() { date +%s%3N; }

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

# Starts a writer on shard $1 (bin/segstore-perf --gap-report: every second, the longest pause between two
# acknowledgements, and when it ended) into $RUN_DIR/writer.log, its log (warnings; client DEBUG lines if
# config/logback-tools.xml asks for them) into $RUN_DIR/writer.err; stop_writer stops it (also on exit).
start_writer() {
  WRITER_LOG="$RUN_DIR/writer.log"
  "$DIST/bin/segstore-perf" --meta "$META" --shard "$1" --gap-report --warmup-seconds 0 --seconds 100000 \
    --in-flight "${WRITER_IN_FLIGHT:-8}" --record-bytes "${WRITER_RECORD_BYTES:-512}" ${WRITER_RATE:+--rate "$WRITER_RATE"} \
    --records-per-request "${WRITER_RECORDS_PER_REQUEST:-4}" > "$WRITER_LOG" 2> "$RUN_DIR/writer.err" &
  WRITER=$!
  echo "$WRITER" > "$RUN_DIR/writer.pid"
  trap stop_writer EXIT
  wait_until "the writer's first acknowledgements" 60 grep -q 'acked [1-9]' "$WRITER_LOG"
}

stop_writer() {
  if kill -0 "$WRITER" 2> /dev/null; then
    kill -TERM "$WRITER" 2> /dev/null || true
  fi
  rm -f "$RUN_DIR/writer.pid"
}

# Prints, for each window "NAME T0 T1" (ms) in WINDOWS, the longest pause between acknowledgements in it.
report_gaps() {
  local w name t0 t1
  for w in "${WINDOWS[@]}"; do
    read -r name t0 t1 <<< "$w"
    awk -v name="$name" -v t0="$t0" -v t1="$t1" '
      $1 == "gap" && $2 >= t0 && $2 <= t1 + 1000 { if ($8 > max) max = $8; n++ }
      $1 == "gap" { failed = $6 }
      END { printf "  %-8s %6d ms   (%d one-second reports; failed writes so far: %d)\n", name, max, n, failed }' "$WRITER_LOG"
  done
}

# The cluster's ports (META_PORT_BASE + 1..3 and + 101..103, NODE_PORT; defaults 7000 and 7201, as start-cluster.sh
# takes them): waits (up to 15 minutes) for another cluster on them to stop; returns 1 if they are still in use.
await_free_cluster_ports() {
  local b="${META_PORT_BASE:-7000}"
  local ports=":($((b + 1))|$((b + 2))|$((b + 3))|$((b + 101))|$((b + 102))|$((b + 103))|${NODE_PORT:-7201})\b"
  for _ in $(seq 1 45); do
    ss -ltn | grep -qE "$ports" || return 0
    echo "the cluster ports are in use; waiting..." >&2
    sleep 20
  done
  ! ss -ltn | grep -qE "$ports"
}
