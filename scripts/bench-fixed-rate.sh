#!/usr/bin/env bash
# Latency at a fixed rate (issue 14 item 5) against a local cluster of processes (3 meta + 3 storage nodes on loopback,
# started and stopped here): one shard, 3 replicas, min ISR 2, its default 256 MiB segments (a roll every ~26 s at
# 10,000 records/s of 1 KiB), written by segstore-perf --rate, which sends on a fixed schedule and counts each call's
# latency from the time it was due (no coordinated omission). Prints the produce line and the rolls (the nodes'
# "sealed at" lines) that fell in the measured window, after a warm-up that is not measured: the rolls of the first
# half minute run cold code in every JVM and cost up to ten times what they cost later (docs/benchmarks.md, "Fixed
# 10,000 records/s warmed up").
# Usage: scripts/bench-fixed-rate.sh [records-per-s=10000] [seconds=60] [warmup-seconds=90]
# DURABILITY (page-cache or fsync, default page-cache), RECORD_BYTES (1024), PER_REQUEST (10 records a call), IN_FLIGHT
# (64 calls at most), SEGMENT_BYTES (the shard's segment size, default the engine's), HLOG=<file>: also write an
# HdrHistogram interval log (one histogram a second); REPORT=<file.html>: and an HTML report. RUN_DIR (default
# run/bench-fixed-rate), META_PORT_BASE and NODE_PORT as start-cluster.sh takes them. The data directories are deleted at
# the end; the logs stay in RUN_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
RATE="${1:-10000}"
SECONDS_RUN="${2:-60}"
WARMUP="${3:-90}"
export RUN_DIR="${RUN_DIR:-run/bench-fixed-rate}"
rm -rf "$RUN_DIR"
# shellcheck source=scripts/cluster-lib.sh
source scripts/cluster-lib.sh
await_free_cluster_ports || { echo "the cluster ports are still in use; giving up" >&2; exit 1; }
trap 'scripts/stop-cluster.sh >/dev/null; rm -rf "$RUN_DIR"/node-*/data' EXIT
scripts/start-cluster.sh > /dev/null 2>&1
META="$(cat "$RUN_DIR/meta-addresses")"
DIST="$(cat "$RUN_DIR/dist")"
ADMIN=("$DIST/bin/segstore-admin" --meta "$META")
CREATE=(create-shard bench --replicas 3 --min-isr 2 --durability "${DURABILITY:-page-cache}")
[ -n "${SEGMENT_BYTES:-}" ] && CREATE+=(--segment-bytes "$SEGMENT_BYTES")
"${ADMIN[@]}" "${CREATE[@]}" > /dev/null
for _ in $(seq 1 60); do
  if "${ADMIN[@]}" health > /dev/null 2>&1; then break; fi
  sleep 1
done
EXTRA=()
[ -n "${HLOG:-}" ] && EXTRA+=(--histogram-log "$HLOG")
[ -n "${REPORT:-}" ] && EXTRA+=(--report "$REPORT")
echo "fixed rate: $RATE records/s of ${RECORD_BYTES:-1024} B, ${PER_REQUEST:-10} per call, at most ${IN_FLIGHT:-64} calls in flight," \
  "${DURABILITY:-page-cache}, ${WARMUP}s warm-up, ${SECONDS_RUN}s measured (load average $(cut -d' ' -f1-3 /proc/loadavg))"
started=$(date +%s%3N)
env SEGSTORE_HEAP=-Xmx1g "$DIST/bin/segstore-perf" --meta "$META" --shard bench --rate "$RATE" \
  --records-per-request "${PER_REQUEST:-10}" --in-flight "${IN_FLIGHT:-64}" --seconds "$SECONDS_RUN" \
  --warmup-seconds "$WARMUP" --record-bytes "${RECORD_BYTES:-1024}" "${EXTRA[@]}" 2>&1 | grep -E "^produce|rror"
# The measured window, from the load's start (the load generator takes a second or two to connect: a roll at the
# window's edges may be counted on either side).
from=$((started + WARMUP * 1000))
to=$((from + SECONDS_RUN * 1000))
rolls=$(grep -h "sealed at" "$RUN_DIR"/node-*/logs/*.log 2>/dev/null | grep Partition | awk '{print $1 " " $2}' \
  | while read -r d t; do echo "$(date -d "$d $t" +%s%3N) ${t%.*}"; done | sort -n \
  | awk -v from="$from" -v to="$to" '$1 - last > 1000 { last = $1; if ($1 >= from && $1 <= to) printf "%s ", $2 }')
echo "rolls in the measured window: ${rolls:-none}"
