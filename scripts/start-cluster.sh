#!/usr/bin/env bash
# Starts a local cluster as separate processes on loopback: a 3-node meta-service group
# (scripts/start-meta-cluster.sh) and 3 storage nodes on 127.0.0.11, .12, .13 (data-plane port 7201),
# then creates a demo shard and shows where its replicas and leader are, and runs the README's broker example
# (dev.segstore.examples.BrokerExample): one topic on each engine (memory, rocksdb, segment) through one
# StorageDriverManager.
# State and logs: run/cluster/. Stop everything with scripts/stop-cluster.sh (kills only the PIDs it started).
set -euo pipefail
cd "$(dirname "$0")/.."
RUN_DIR="${RUN_DIR:-run/cluster}"
export RUN_DIR
if [ -f "$RUN_DIR/pids" ]; then
  echo "a cluster seems to be running (see $RUN_DIR/pids); stop it first with scripts/stop-cluster.sh" >&2
  exit 1
fi
scripts/start-meta-cluster.sh
META="$(cat "$RUN_DIR/meta-addresses")"
mvn -q -B -pl storage-node dependency:build-classpath -Dmdep.outputFile="$PWD/$RUN_DIR/node-classpath.txt" -Dmdep.includeScope=runtime
CP="$PWD/storage-node/target/classes:$(cat "$RUN_DIR/node-classpath.txt")"
for i in 1 2 3; do
  dir="$RUN_DIR/node-$i"
  mkdir -p "$dir"
  cat > "$dir/node.properties" <<PROPS
node.id=$i
host=127.0.0.1$i
port=7201
data.dir=data
meta.addresses=$META
heartbeat.ms=500
replica.max.lag.ms=10000
metrics.port=7301
PROPS
  nohup java -Xmx512m -Dlogback.configurationFile="$PWD/config/logback.xml" -cp "$CP" dev.segstore.node.server.StorageNodeMain --config "$dir/node.properties" > "$dir/node.log" 2>&1 &
  echo $! >> "$RUN_DIR/pids"
  echo "storage node $i: pid $!, 127.0.0.1$i:7201, metrics http://127.0.0.1$i:7301/metrics, log $dir/node.log"
done
ADMIN=(java -Dlogback.configurationFile="$PWD/config/logback.xml" -cp "$PWD/meta-service/target/classes:$(cat "$RUN_DIR/classpath.txt")" dev.segstore.meta.server.MetaAdminMain --meta "$META")
echo "waiting for the storage nodes to register..."
for _ in $(seq 1 60); do
  if [ "$("${ADMIN[@]}" describe 2>/dev/null | grep -c ' ALIVE ')" -ge 3 ]; then
    break
  fi
done
"${ADMIN[@]}" describe
"${ADMIN[@]}" create-shard demo --replicas 3 --min-isr 2 2>/dev/null || "${ADMIN[@]}" route demo
DATA=(java -Dlogback.configurationFile="$PWD/config/logback.xml" -cp "$CP" dev.segstore.node.server.DataClientMain --meta "$META")
"${DATA[@]}" produce demo hello replicated world
"${DATA[@]}" consume demo
echo
echo "the broker example (README): one topic per engine through the StorageDriverManager"
mvn -q -B -pl examples dependency:build-classpath -Dmdep.outputFile="$PWD/$RUN_DIR/examples-classpath.txt" -Dmdep.includeScope=runtime
java -Dlogback.configurationFile="$PWD/config/logback.xml" -cp "$PWD/examples/target/classes:$(cat "$RUN_DIR/examples-classpath.txt")" \
  dev.segstore.examples.BrokerExample "$META" "$RUN_DIR/example-rocksdb"
echo
echo "try: java -Dlogback.configurationFile=config/logback.xml -cp \"storage-node/target/classes:\$(cat $RUN_DIR/node-classpath.txt)\" dev.segstore.node.server.DataClientMain --meta $META produce demo more records"
echo "stop: scripts/stop-cluster.sh"
