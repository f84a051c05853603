#!/usr/bin/env bash
# Starts a local cluster as separate processes on loopback: a 3-node meta-service group
# (scripts/start-meta-cluster.sh) and 3 storage nodes on 127.0.0.11, .12, .13 (data-plane port 7201),
# then creates a demo shard and shows where its replicas and leader are, and runs the README's broker example
# (dev.segstore.examples.BrokerExample): one topic on each engine (memory, rocksdb, segment) through one
# StorageDriverManager.
# Everything runs from the distribution (dist/target/segstore-VERSION, built once by scripts/dist.sh; rebuild
# with DIST_REBUILD=1 after changing the code).
# State and logs: run/cluster/. Stop everything with scripts/stop-cluster.sh (kills only the PIDs it started).
# NODE_PORT: the storage nodes' data-plane port (default 7201; metrics on NODE_PORT + 100), with META_PORT_BASE (see
# start-meta-cluster.sh) to run a second local cluster beside the first.
# NODE_SETTINGS: more storage-node settings, space-separated key=value, added to every node's file (for example
# NODE_SETTINGS="replica.fetch.batched=false").
# COMBINED=1: combined mode, 3 processes (bin/segstore-server) each running meta node i and storage node i, with
# the same configuration files, ports and data directories as the 6 processes of the default layout.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN_DIR="${RUN_DIR:-run/cluster}"
export RUN_DIR
if [ -f "$RUN_DIR/pids" ]; then
  echo "a cluster seems to be running (see $RUN_DIR/pids); stop it first with scripts/stop-cluster.sh" >&2
  exit 1
fi
if [ -n "${COMBINED:-}" ]; then
  CONFIG_ONLY=1 scripts/start-meta-cluster.sh
else
  scripts/start-meta-cluster.sh
fi
META="$(cat "$RUN_DIR/meta-addresses")"
DIST="$(cat "$RUN_DIR/dist")"
NODE_PORT="${NODE_PORT:-7201}"
for i in 1 2 3; do
  dir="$RUN_DIR/node-$i"
  mkdir -p "$dir"
  cat > "$dir/node.properties" <<PROPS
node.id=$i
host=127.0.0.1$i
port=$NODE_PORT
data.dir=data
meta.addresses=$META
heartbeat.ms=500
replica.max.lag.ms=10000
metrics.port=$((NODE_PORT + 100))
PROPS
  if [ -n "${NODE_SETTINGS:-}" ]; then printf '%s\n' ${NODE_SETTINGS} >> "$dir/node.properties"; fi
  if [ -n "${COMBINED:-}" ]; then
    SEGSTORE_HEAP=-Xmx1g SEGSTORE_LOG_DIR="$dir/logs" nohup "$DIST/bin/segstore-server" --meta-config "$RUN_DIR/meta-$i/meta.properties" \
      --node-config "$dir/node.properties" > "$dir/console.log" 2>&1 &
    echo $! >> "$RUN_DIR/pids"
    echo "server $i (meta node $i + storage node $i, combined): pid $!, storage node 127.0.0.1$i:$NODE_PORT, log $dir/logs/segstore-server.log"
    continue
  fi
  SEGSTORE_HEAP=-Xmx512m SEGSTORE_LOG_DIR="$dir/logs" nohup "$DIST/bin/segstore-node" --config "$dir/node.properties" > "$dir/console.log" 2>&1 &
  echo $! >> "$RUN_DIR/pids"
  echo "storage node $i: pid $!, 127.0.0.1$i:$NODE_PORT, metrics http://127.0.0.1$i:$((NODE_PORT + 100))/metrics, log $dir/logs/segstore-node.log"
done
if [ -n "${COMBINED:-}" ]; then
  echo "waiting for a meta leader..."
  for _ in $(seq 1 60); do
    if "$DIST/bin/segstore-admin" --meta "$META" describe > /dev/null 2>&1; then
      break
    fi
  done
fi
ADMIN=("$DIST/bin/segstore-admin" --meta "$META")
echo "waiting for the storage nodes to register..."
for _ in $(seq 1 60); do
  if [ "$("${ADMIN[@]}" describe 2>/dev/null | grep -c ' ALIVE ')" -ge 3 ]; then
    break
  fi
done
"${ADMIN[@]}" describe
"${ADMIN[@]}" create-shard demo --replicas 3 --min-isr 2 2>/dev/null || "${ADMIN[@]}" route demo
CLIENT=("$DIST/bin/segstore-client" --meta "$META")
"${CLIENT[@]}" produce demo hello replicated world
"${CLIENT[@]}" consume demo
echo
echo "the broker example (README): one topic per engine through the StorageDriverManager"
"$DIST/bin/segstore-broker-example" "$META" "$RUN_DIR/example-rocksdb"
echo
echo "try: $DIST/bin/segstore-client --meta $META produce demo more records"
echo "     $DIST/bin/segstore-admin --meta $META describe"
echo "stop: scripts/stop-cluster.sh"
