#!/usr/bin/env bash
# Idle cost of many shards (issue 14 item 8): starts a local cluster (scripts/start-cluster.sh: 3 meta + 3 storage
# node processes), creates N shards (3 replicas, min ISR 2), lets them settle, then prints the CPU each process used
# over a window in which nothing is written, as a percentage of one core (utime + stime from /proc/<pid>/stat).
# Stops the cluster at the end (only the PIDs it started).
# Usage: scripts/idle-shards.sh [shards=1000] [measure-seconds=60] [settle-seconds=90]
# ADMIN_DIST=<unpacked distribution>: take segstore-admin from there (create-shard --count, to measure an older build).
# RUN_DIR (default run/idle-shards), META_PORT_BASE and NODE_PORT as start-cluster.sh takes them.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARDS="${1:-1000}"
MEASURE="${2:-60}"
SETTLE="${3:-90}"
export RUN_DIR="${RUN_DIR:-run/idle-shards}"
# shellcheck source=scripts/cluster-lib.sh
source scripts/cluster-lib.sh
await_free_cluster_ports || { echo "the cluster ports are still in use; giving up" >&2; exit 1; }
rm -rf "$RUN_DIR"
trap 'scripts/stop-cluster.sh >/dev/null' EXIT
scripts/start-cluster.sh > /dev/null 2>&1
META="$(cat "$RUN_DIR/meta-addresses")"
DIST="$(cat "$RUN_DIR/dist")"
ADMIN=("${ADMIN_DIST:-$DIST}/bin/segstore-admin" --meta "$META")
mapfile -t PIDS < "$RUN_DIR/pids" # meta nodes 1-3, then storage nodes 1-3
started=$(date +%s)
"${ADMIN[@]}" create-shard idle --count "$SHARDS" --replicas 3 --min-isr 2 --durability page-cache
echo "created in $(( $(date +%s) - started )) s; settling ${SETTLE} s"
"${ADMIN[@]}" describe | grep -E '^(shards|storage nodes)'
sleep "$SETTLE"
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ="$(getconf CLK_TCK)"
declare -a before
for i in "${!PIDS[@]}"; do before[$i]="$(ticks "${PIDS[$i]}")"; done
t0="$(date +%s.%N)"
sleep "$MEASURE"
t1="$(date +%s.%N)"
echo "idle CPU over $(echo "$t1 - $t0" | bc) s with $SHARDS idle shards (% of one core; load average: $(cut -d' ' -f1-3 /proc/loadavg)):"
for i in "${!PIDS[@]}"; do
  used="$(ticks "${PIDS[$i]}")"
  role="meta node $((i + 1))"; [ "$i" -ge 3 ] && role="storage node $((i - 2))"
  printf "  %-15s pid %-8s %6.1f%%\n" "$role" "${PIDS[$i]}" "$(echo "($used - ${before[$i]}) * 100 / $HZ / ($t1 - $t0)" | bc -l)"
done
"${ADMIN[@]}" health > /dev/null && echo "health: every segment fully replicated" || echo "health: problems (segstore-admin health)"
