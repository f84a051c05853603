#!/usr/bin/env bash
# Produce/consume benchmark against a local cluster of processes (3 meta + 3 storage nodes on loopback,
# started and stopped here), 3 replicas, min ISR 2, 1 KiB records (RECORD_BYTES=n: n bytes), in both durability modes.
# The load goes through the `segment` engine (SegmentStorageAdapter), as a broker's would, after a warm-up
# that is not measured (every JVM on the path needs its JIT warm: cold runs measured half as much).
# With shards > 1, each mode writes that many shards in turn (their leaders spread over the nodes), sharing
# the window of calls in flight.
# With more than 10 shards they are created at once (segstore-admin create-shard --count), the load waits until every
# segment is fully replicated (segstore-admin health), and only the first is probed and routed.
# Usage: scripts/bench-cluster.sh [seconds=20] [in-flight=32] [records-per-request=16] [warmup-seconds=30] [shards=1]
# RUN_DIR (default run/bench-cluster), META_PORT_BASE and NODE_PORT as start-cluster.sh takes them: a second cluster beside
# another one. MODES="page-cache": only the modes named (default "fsync page-cache"). ADMIN_DIST=<unpacked distribution>: take
# segstore-admin from there (create-shard --count, to measure an older build).
# The storage nodes' data directories are deleted when the script ends (a saturated run writes 5-7 GB per node); the logs
# stay in RUN_DIR. KEEP_DATA=1 keeps the data too.
set -euo pipefail
cd "$(dirname "$0")/.."
# Page-cache writes on a VM that gives freed memory back to its host cost a host fault per new page (docs/benchmarks.md,
# "this machine's fresh memory"): each mode's figures come with the free memory and the rate of a first touch of 256 MiB.
# It never fails the script: a probe that cannot run (no /dev/shm, too small a one) says so.
memory_state() {
  local free probe="not measured" f="/dev/shm/segstore-probe-$$" out
  free=$(awk '/MemFree/ {printf "%d", $2 / 1024}' /proc/meminfo 2>/dev/null || echo "?")
  if [ -d /dev/shm ] && [ -w /dev/shm ]; then
    if out=$(LC_ALL=C dd if=/dev/zero of="$f" bs=1M count=256 2>&1); then
      probe=$(echo "$out" | tail -1 | awk -F, '{gsub(/^ /, "", $NF); print $NF}')
    else
      probe="not measured (dd failed: $(echo "$out" | head -1))"
    fi
    rm -f "$f"
  fi
  echo "memory: ${free} MiB free, first touch of 256 MiB at $probe"
}
SECONDS_RUN="${1:-20}"
IN_FLIGHT="${2:-32}"
PER_REQUEST="${3:-16}"
WARMUP="${4:-30}"
SHARDS="${5:-1}"
export RUN_DIR="${RUN_DIR:-run/bench-cluster}"
rm -rf "$RUN_DIR"
# shellcheck source=scripts/cluster-lib.sh
source scripts/cluster-lib.sh
await_free_cluster_ports || true # as before: start anyway after 15 minutes
trap 'scripts/stop-cluster.sh >/dev/null; [ -n "${KEEP_DATA:-}" ] || rm -rf "$RUN_DIR"/node-*/data' EXIT
scripts/start-cluster.sh > /dev/null 2>&1
META="$(cat "$RUN_DIR/meta-addresses")"
DIST="$(cat "$RUN_DIR/dist")"
ADMIN=("${ADMIN_DIST:-$DIST}/bin/segstore-admin" --meta "$META")
LOAD=(env SEGSTORE_HEAP=-Xmx1g "$DIST/bin/segstore-perf" --meta "$META")
RECORD_BYTES="${RECORD_BYTES:-1024}"
echo "cluster benchmark: 3 replicas, min ISR 2, $RECORD_BYTES-byte records, $PER_REQUEST records per request, $IN_FLIGHT requests in flight, $SHARDS shard(s), ${WARMUP}s warm-up, ${SECONDS_RUN}s measured"
for mode in ${MODES:-fsync page-cache}; do
  NAMES=()
  for i in $(seq 1 "$SHARDS"); do
    name="bench-$mode"; [ "$SHARDS" -gt 1 ] && name="bench-$mode-$i"
    NAMES+=("$name")
  done
  if [ "$SHARDS" -gt 10 ]; then
    created=$(date +%s)
    "${ADMIN[@]}" create-shard "bench-$mode" --count "$SHARDS" --replicas 3 --min-isr 2 --durability "$mode" > /dev/null
    PROBED=("${NAMES[0]}")
    # The nodes open their replicas over the next heartbeats (each open forces files): measure once every segment
    # is fully replicated (segstore-admin health exits 0), not the opening.
    for _ in $(seq 1 300); do
      if "${ADMIN[@]}" health > /dev/null 2>&1; then break; fi
      sleep 1
    done
    echo "$SHARDS shards created and fully replicated after $(( $(date +%s) - created )) s"
  else
    for name in "${NAMES[@]}"; do
      "${ADMIN[@]}" create-shard "$name" --replicas 3 --min-isr 2 --durability "$mode" > /dev/null
    done
    PROBED=("${NAMES[@]}")
  fi
  for name in "${PROBED[@]}"; do
    for _ in $(seq 1 50); do  # wait until the leader serves
      if "${LOAD[@]}" --shard "$name" --seconds 1 --warmup-seconds 0 --in-flight 1 --records-per-request 1 > /dev/null 2>&1; then break; fi
    done
  done
  LIST="$(IFS=,; echo "${NAMES[*]}")"
  LEADERS=""
  for name in "${PROBED[@]}"; do
    LEADERS+=" $name: node $("${ADMIN[@]}" route "$name" | grep -o "leader [0-9]*" | tail -1 | cut -d' ' -f2)"
  done
  echo "durability $mode (leaders:$LEADERS; $(memory_state)):"
  "${LOAD[@]}" --shard "$LIST" --seconds "$SECONDS_RUN" --warmup-seconds "$WARMUP" --in-flight "$IN_FLIGHT" --records-per-request "$PER_REQUEST" --record-bytes "$RECORD_BYTES" 2>&1 | grep -E "^(produce|consume)"
done
