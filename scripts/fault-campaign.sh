#!/usr/bin/env bash
# Fault-schedule campaign against an in-JVM cluster (3 meta + 3 storage nodes on loopback): jqwik generates
# schedules (a workload of writers, readers, a deleter and a group committer, and timed faults: storage nodes
# killed, partitioned, isolated and fenced, links slowed, disks failing writes or fsyncs, the meta leader
# killed), each runs on a fresh shard, and the checker (module chaos) looks for anomalies in its history.
# Unlike the 200 tries of `mvn verify`, a campaign runs every schedule even after a failure, shrinks nothing,
# and ends with a table: runs, operations, anomalies by kind, problems, write stalls by fault kind (p50/p99/max).
# Failed runs keep their files in integration-tests/target/fault-runs/<seed>/<run>/ (summary.txt, report.html,
# history.jsonl, cluster.log, data/). See FaultScheduleProperties and README ("Fault-schedule campaigns").
# Usage: scripts/fault-campaign.sh [tries=1000] [seed=random] [more -D options, e.g. -Dfaults.kinds=ISOLATE_NODE]
# MVN_ARGS="-o" runs Maven offline.
set -euo pipefail
cd "$(dirname "$0")/.."
TRIES="${1:-1000}"
SEED="${2:-}"
shift $(( $# > 2 ? 2 : $# ))
if [ -z "$SEED" ]; then SEED=$(od -An -N8 -td8 /dev/urandom | tr -d ' '); fi
mkdir -p run
LOG="run/fault-campaign-$SEED.log"
echo "fault campaign: $TRIES schedules, seed $SEED (replay: scripts/fault-campaign.sh $TRIES $SEED $*); output in $LOG"
start=$(date +%s)
set +e
# shellcheck disable=SC2086
mvn -B ${MVN_ARGS:-} -pl integration-tests -am test -Dtest=FaultScheduleProperties -Dsurefire.failIfNoSpecifiedTests=false \
  -Dfaults.campaign=true -Dfaults.tries="$TRIES" -Dfaults.seed="$SEED" "$@" > "$LOG" 2>&1
rc=$?
set -e
TABLE="integration-tests/target/fault-runs/$SEED/campaign.txt"
if [ -f "$TABLE" ]; then cat "$TABLE"; else grep -E "ERROR|FAIL" "$LOG" | head -20 || true; fi
echo "took $(( $(date +%s) - start )) s (build included); full output: $LOG (exit $rc)"
exit $rc
