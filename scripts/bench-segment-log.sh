#!/usr/bin/env bash
# Append and read throughput of the segment log (1 KiB and 100 B records, page-cache and fsync durability),
# with this machine's own sequential-write figure from dd printed first for scale.
# Usage: scripts/bench-segment-log.sh [seconds-per-case=5] [writer-threads=4]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_CASE="${1:-5}"
WRITERS="${2:-4}"
BENCH_DIR="segment-log/target/bench"
mkdir -p "$BENCH_DIR"
echo "machine sequential write (dd, 1 GiB in 1 MiB blocks):"
echo -n "  to the page cache:        "; dd if=/dev/zero of="$BENCH_DIR/dd.tmp" bs=1M count=1024 2>&1 | tail -1
echo -n "  with fdatasync at the end: "; dd if=/dev/zero of="$BENCH_DIR/dd.tmp" bs=1M count=1024 conv=fdatasync 2>&1 | tail -1
echo -n "  every 16 KiB block synced: "; dd if=/dev/zero of="$BENCH_DIR/dd.tmp" bs=16k count=4096 oflag=dsync 2>&1 | tail -1
rm -f "$BENCH_DIR/dd.tmp"
mvn -q -B install -DskipTests
mvn -q -B -pl segment-log exec:java \
  -Dexec.mainClass=dev.segstore.log.bench.SegmentLogBenchmark \
  -Dexec.classpathScope=test \
  -Dexec.args="$SECONDS_PER_CASE $WRITERS target/bench"
