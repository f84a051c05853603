#!/usr/bin/env bash
# Starts a 3-node meta-service group as separate processes on loopback and shows who leads.
#   Raft ports 7001-7003, RPC ports 7101-7103, metrics ports 7401-7403 (override the base with META_PORT_BASE=...).
#   State and logs go to run/meta-cluster/ (override with RUN_DIR=...); PIDs in run/meta-cluster/pids.
# Stop it with scripts/stop-meta-cluster.sh (kills exactly the PIDs it started).
set -euo pipefail
cd "$(dirname "$0")/.."
RUN_DIR="${RUN_DIR:-run/meta-cluster}"
BASE="${META_PORT_BASE:-7000}"
if [ -f "$RUN_DIR/pids" ]; then
  echo "a meta cluster seems to be running (see $RUN_DIR/pids); stop it first with scripts/stop-meta-cluster.sh" >&2
  exit 1
fi
mkdir -p "$RUN_DIR"
mvn -q -B install -DskipTests
mvn -q -B -pl meta-service dependency:build-classpath -Dmdep.outputFile="$PWD/$RUN_DIR/classpath.txt" -Dmdep.includeScope=runtime
CP="$PWD/meta-service/target/classes:$(cat "$RUN_DIR/classpath.txt")"
PEERS="127.0.0.1:$((BASE+1)):$((BASE+101)),127.0.0.1:$((BASE+2)):$((BASE+102)),127.0.0.1:$((BASE+3)):$((BASE+103))"
for i in 1 2 3; do
  dir="$RUN_DIR/meta-$i"
  mkdir -p "$dir"
  cat > "$dir/meta.properties" <<PROPS
self=127.0.0.1:$((BASE+i)):$((BASE+100+i))
peers=$PEERS
data.dir=data
election.timeout.ms=1000
snapshot.interval.secs=300
session.timeout.ms=6000
metrics.port=$((BASE+400+i))
PROPS
  nohup java -Xmx512m -Dlogback.configurationFile="$PWD/config/logback.xml" -cp "$CP" dev.segstore.meta.server.MetaServerMain --config "$dir/meta.properties" \
    > "$dir/meta.log" 2>&1 &
  echo $! >> "$RUN_DIR/pids"
  echo "meta node $i: pid $!, raft 127.0.0.1:$((BASE+i)), rpc 127.0.0.1:$((BASE+100+i)), metrics http://127.0.0.1:$((BASE+400+i))/metrics, log $dir/meta.log"
done
META="127.0.0.1:$((BASE+101)),127.0.0.1:$((BASE+102)),127.0.0.1:$((BASE+103))"
echo "$META" > "$RUN_DIR/meta-addresses"
echo "waiting for a leader..."
for _ in $(seq 1 60); do
  if java -Dlogback.configurationFile="$PWD/config/logback.xml" -cp "$CP" dev.segstore.meta.server.MetaAdminMain --meta "$META" describe 2>/dev/null; then
    echo
    echo "try: java -Dlogback.configurationFile=config/logback.xml -cp \"\$(cat $RUN_DIR/classpath.txt):meta-service/target/classes\" dev.segstore.meta.server.MetaAdminMain --meta $META describe"
    exit 0
  fi
done
echo "no leader answered; see $RUN_DIR/meta-*/meta.log" >&2
exit 1
