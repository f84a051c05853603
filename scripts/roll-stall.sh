#!/usr/bin/env bash
# How long writes stall at segment rolls on the local cluster.
#   1. starts the cluster from the distribution (scripts/start-cluster.sh; state and logs in RUN_DIR, default
#      run/roll-stall);
#   2. creates shard "rolls" (3 replicas, min ISR 2, SEGMENT_BYTES per segment, default 1 MiB) and writes to it at a
#      fixed rate (bin/segstore-perf --rate WRITER_RATE records/s, default 1000, of WRITER_RECORD_BYTES, default 512:
#      about 0.5 MB/s, a roll every 2 s) for LOAD_SECONDS (default 60), with --gap-report (every second, the longest
#      pause between two acknowledgements);
#   3. prints how many segments the shard rolled through and the distribution of the one-second longest pauses
#      (the seconds with a roll are the long ones), then the pause of each roll and of the seconds without one
#      apart, and the logged pauses (over PAUSE_LOG_MS, default 5 ms) at each roll and midway between rolls
#      (scripts/roll-stall-report.sh, which also reads a finished run's directory), then stops the writer
#      and the cluster (only the PIDs this run recorded; KEEP_CLUSTER=1 leaves the cluster up).
# ADMIN_BIN: the segstore-admin to create the shard with (default the distribution's; one that knows
# --segment-bytes is needed).
set -euo pipefail
cd "$(dirname "$0")/.."
RUN_DIR="${RUN_DIR:-run/roll-stall}"
export RUN_DIR
LOAD_SECONDS="${LOAD_SECONDS:-60}"
SEGMENT_BYTES="${SEGMENT_BYTES:-1048576}"

mkdir -p "$(dirname "$RUN_DIR")"
scripts/start-cluster.sh > "$RUN_DIR.start.log" 2>&1 || { cat "$RUN_DIR.start.log" >&2; exit 1; }
if [ -z "${KEEP_CLUSTER:-}" ]; then
  trap 'scripts/stop-cluster.sh > /dev/null' EXIT # only the PIDs this run recorded
fi
META="$(cat "$RUN_DIR/meta-addresses")"
DIST="$(cat "$RUN_DIR/dist")"
ADMIN=("${ADMIN_BIN:-$DIST/bin/segstore-admin}" --meta "$META")
"${ADMIN[@]}" create-shard rolls --replicas 3 --min-isr 2 --segment-bytes "$SEGMENT_BYTES" > /dev/null
WRITER_LOG="$RUN_DIR/writer.log"
"$DIST/bin/segstore-perf" --meta "$META" --shard rolls --gap-report --pause-log-ms "${PAUSE_LOG_MS:-5}" --warmup-seconds 2 --seconds "$LOAD_SECONDS" \
  --rate "${WRITER_RATE:-1000}" --in-flight "${WRITER_IN_FLIGHT:-8}" --record-bytes "${WRITER_RECORD_BYTES:-512}" \
  --records-per-request "${WRITER_RECORDS_PER_REQUEST:-4}" > "$WRITER_LOG" 2>&1 || true
echo "segments of shard rolls after the run: $("${ADMIN[@]}" route rolls | grep -c -E '^ *segment ' || true)"
echo "one-second longest pauses between acknowledgements (writer: $WRITER_LOG):"
awk '$1 == "gap" { print $8 }' "$WRITER_LOG" | sort -n | awk '
  { v[NR] = $1 }
  END {
    if (NR == 0) { print "  no gap reports"; exit }
    p99 = int(NR * 0.99) + 1; if (p99 > NR) p99 = NR
    printf "  %d reports: p50 %d ms, p90 %d ms, p99 %d ms, max %d ms\n", NR, v[int(NR * 0.5) + 1], v[int(NR * 0.9) + 1], v[p99], v[NR]
    printf "  the 10 longest:"; for (i = NR; i > NR - 10 && i > 0; i--) printf " %d", v[i]; printf "\n"
  }'
awk '$1 == "gap" { failed = $6 } END { print "  failed writes: " failed + 0 }' "$WRITER_LOG"
echo "pauses at rolls and in the seconds without one (scripts/roll-stall-report.sh $RUN_DIR):"
scripts/roll-stall-report.sh "$RUN_DIR" || true
