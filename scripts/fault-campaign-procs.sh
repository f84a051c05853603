#!/usr/bin/env bash
# Fault-schedule campaign against a cluster of processes (issue 12, process part): 3 meta-service and 3
# storage-node JVMs on loopback, each on an address of its own (127.0.0.21-23, 127.0.0.11-13), every
# client->node, node->node, node->meta and client->meta connection through a fault proxy the harness controls.
# Each run: a fresh shard, a seeded schedule of a workload (writers, readers, a deleter, a group committer) and
# 1-3 timed faults: kill -9, SIGSTOP/SIGCONT and SIGTERM of the open segment's leader or a follower, of the meta
# leader or a meta follower; a storage node partitioned from its peers, from the meta-service, from clients, or
# from everyone; one-way, slow and reset links; clients cut from the meta leader; a node's disk failing writes
# (EIO, ENOSPC), fsyncs or opens, a slow disk, a crash losing the page cache; a meta node's Raft links with the
# two others cut, or one way between the meta leader and a follower (in jraft's transport, test class path
# only: docs/fault-proxy.md). Then the heal (every rule
# lifted, every process back), the shard quiet (full ISRs), replicas compared byte for byte, and the checker
# (module chaos) on the history. One cluster serves every run (a new one after a run that left it unhealthy).
# Ends with the table: runs, operations, anomalies by kind, problems, write stalls by fault kind (p50/p99/max).
# Failed runs keep their files in integration-tests/target/proc-runs/<seed>/<run>/ (summary.txt, report.html,
# history.jsonl, client.log, logs/<process>.log, data/), and the cluster's directory (every process's log and
# data) is kept in integration-tests/target/proc-runs/<seed>/cluster-N/. See ProcessFaultCampaignRun and README
# ("Fault-schedule campaigns").
# Usage: scripts/fault-campaign-procs.sh [runs=100] [seed=random] [more -D options, e.g. -Dprocs.kinds=KILL_NODE,ONE_WAY]
#        -Dprocs.runSeed=<a run's seed> replays that one run.
# MVN_ARGS="-o" runs Maven offline.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-100}"
SEED="${2:-}"
shift $(( $# > 2 ? 2 : $# ))
if [ -z "$SEED" ]; then SEED=$(od -An -N8 -td8 /dev/urandom | tr -d ' '); fi
mkdir -p run
LOG="run/fault-campaign-procs-$SEED.log"
echo "process fault campaign: $RUNS runs, seed $SEED (replay: scripts/fault-campaign-procs.sh $RUNS $SEED $*); output in $LOG"
start=$(date +%s)
set +e
# shellcheck disable=SC2086
mvn -B ${MVN_ARGS:-} -pl integration-tests -am test -Dtest=ProcessFaultCampaignRun -Dsurefire.failIfNoSpecifiedTests=false \
  -Dprocs.runs="$RUNS" -Dprocs.seed="$SEED" "$@" > "$LOG" 2>&1
rc=$?
set -e
TABLE="integration-tests/target/proc-runs/$SEED/campaign.txt"
grep -E "^process fault run [0-9]+: (FAILED|.*did not finish|.*broke)|kept in " "$LOG" || true
if [ -f "$TABLE" ]; then cat "$TABLE"; else grep -E "ERROR|FAIL" "$LOG" | head -20 || true; fi
echo "took $(( $(date +%s) - start )) s (build included); full output: $LOG (exit $rc)"
exit $rc
