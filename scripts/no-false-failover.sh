#!/usr/bin/env bash
# No false failover (issue 14, item 6): a saturated write load with no fault must change no leader.
#   1. starts the cluster from the distribution (scripts/start-cluster.sh; state and logs in RUN_DIR, default
#      run/no-false-failover);
#   2. creates shard "steady" (3 replicas, min ISR 2, SEGMENT_BYTES per segment, default 64 MiB, so it rolls now and
#      then; sealed segments dropped RETENTION_MS after their seal, default 2 min, so the disk does not fill) and
#      writes to it as fast as it can for LOAD_SECONDS (default 600) with bin/segstore-perf (WRITER_IN_FLIGHT
#      calls in flight, default 32, of WRITER_RECORDS_PER_REQUEST records, default 16, of 1 KiB);
#   3. prints the leader changes of the shard's segments (the sum of their leader epochs: every change of leader bumps
#      a segment's epoch, and each segment starts at 0), the controller's leadership moves away from silent leaders and
#      its fences (from the meta nodes' logs), the storage nodes' reports of silent leaders, and the writer's summary;
#      exits 1 if any leader changed. Stops the writer and the cluster (KEEP_CLUSTER=1 leaves the cluster up).
# Usage: scripts/no-false-failover.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUN_DIR="${RUN_DIR:-run/no-false-failover}"
export RUN_DIR
LOAD_SECONDS="${LOAD_SECONDS:-600}"
SEGMENT_BYTES="${SEGMENT_BYTES:-67108864}"

scripts/start-cluster.sh > /dev/null
if [ -z "${KEEP_CLUSTER:-}" ]; then
  trap 'scripts/stop-cluster.sh > /dev/null' EXIT
fi
META="$(cat "$RUN_DIR/meta-addresses")"
DIST="$(cat "$RUN_DIR/dist")"
ADMIN=("$DIST/bin/segstore-admin" --meta "$META")
"${ADMIN[@]}" create-shard steady --replicas 3 --min-isr 2 --segment-bytes "$SEGMENT_BYTES" > /dev/null
# Sealed segments are dropped RETENTION_MS after their seal (default 2 min): ten saturated minutes wrote 45 GB into
# RUN_DIR otherwise (three replicas) and filled this machine's disk. RETENTION_MS=-1 keeps everything.
"${ADMIN[@]}" alter-shard steady --retention-ms "${RETENTION_MS:-120000}" > /dev/null
echo "writing to shard steady as fast as possible for ${LOAD_SECONDS}s (load average $(cut -d' ' -f1-3 /proc/loadavg))..."
WRITER_LOG="$RUN_DIR/writer.log"
"$DIST/bin/segstore-perf" --meta "$META" --shard steady --warmup-seconds 0 --seconds "$LOAD_SECONDS" \
  --in-flight "${WRITER_IN_FLIGHT:-32}" --record-bytes 1024 --records-per-request "${WRITER_RECORDS_PER_REQUEST:-16}" \
  > "$WRITER_LOG" 2>&1 || true
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
ROUTE="$("${ADMIN[@]}" route steady)"
segments="$(grep -c -E '^ *segment ' <<< "$ROUTE" || true)"
changes="$(grep -E '^ *segment ' <<< "$ROUTE" | sed -E 's/.* epoch ([0-9]+) .*/\1/' | awk '{ s += $1 } END { print s + 0 }')"
moves="$(cat "$RUN_DIR"/meta-*/logs/*.log 2> /dev/null | grep -c 'reports leader .* silent' || true)"
fences="$(cat "$RUN_DIR"/meta-*/logs/*.log 2> /dev/null | grep -c ': fencing it' || true)"
reports="$(cat "$RUN_DIR"/node-*/logs/*.log 2> /dev/null | grep -c 'leaders silent for' || true)"
echo "segments of shard steady: $segments; leader changes (sum of leader epochs): $changes"
echo "controller: $moves leadership moves away from silent leaders, $fences fence(s); storage nodes: $reports silent-leader report(s)"
echo "writer ($WRITER_LOG):"
grep -E 'records/s|p99|failed' "$WRITER_LOG" | tail -5 | sed 's/^/  /'
[ "$changes" -eq 0 ]
