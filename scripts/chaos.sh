#!/usr/bin/env bash
# Chaos run against a cluster of processes (3 meta + 3 storage nodes on loopback, started and stopped by the
# test): writers and a deleter run while a seeded schedule kills storage nodes and the meta leader with
# SIGKILL and restarts them; then every acknowledged write and delete is checked and the replicas compared
# byte for byte. See integration-tests/src/test/java/dev/segstore/it/SegmentChaosRun.java.
# Usage: scripts/chaos.sh [seconds=60] [seed=random, or ""] [more -D options, e.g. -Dsegstore.segment.close.ahead=false]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-60}"
SEED_ARG=()
if [ $# -ge 2 ] && [ -n "$2" ]; then SEED_ARG=("-Dchaos.seed=$2"); fi
MORE=("${@:3}")
mvn -q -B install -DskipTests
mkdir -p run
LOG=run/chaos.log
set +e
mvn -B -pl integration-tests test -Dtest=SegmentChaosRun -Dsurefire.failIfNoSpecifiedTests=false \
  -Dchaos.seconds="$SECS" "${SEED_ARG[@]}" "${MORE[@]}" > "$LOG" 2>&1
rc=$?
set -e
grep -E -A40 "chaos|Tests run:|FAIL|expected" "$LOG" | grep -E "chaos|segment [0-9]|Tests run:|FAIL|expected" | grep -v "^\[INFO\] Tests run: [0-9]*, Failures: 0, Errors: 0, Skipped: 0$" || true
echo "full output: $LOG (exit $rc)"
exit $rc
