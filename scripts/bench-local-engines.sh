#!/usr/bin/env bash
# Write throughput of the memory and rocksdb engines (1 KiB records, single and batched writes).
# Usage: scripts/bench-local-engines.sh [seconds-per-case=5] [writer-threads=2]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_CASE="${1:-5}"
WRITERS="${2:-2}"
mvn -q -B install -DskipTests
mvn -q -B -pl local-engines exec:java \
  -Dexec.mainClass=dev.segstore.engine.bench.LocalEngineBenchmark \
  -Dexec.classpathScope=test \
  -Dexec.args="$SECONDS_PER_CASE $WRITERS target/bench"
