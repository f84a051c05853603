#!/usr/bin/env bash
# Starts a 3-node meta-service group as separate processes on loopback and shows who leads.
#   Raft ports 7001-7003, RPC ports 7101-7103, metrics ports 7401-7403 (override the base with META_PORT_BASE=...).
#   Runs the distribution (scripts/dist.sh builds it once). State and logs go to run/meta-cluster/ (override with
#   RUN_DIR=...); PIDs in run/meta-cluster/pids.
# Stop it with scripts/stop-meta-cluster.sh (kills exactly the PIDs it started). CONFIG_ONLY=1 writes the
# configurations (and run/.../meta-addresses, dist) and starts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN_DIR="${RUN_DIR:-run/meta-cluster}"
BASE="${META_PORT_BASE:-7000}"
if [ -f "$RUN_DIR/pids" ]; then
  echo "a meta cluster seems to be running (see $RUN_DIR/pids); stop it first with scripts/stop-meta-cluster.sh" >&2
  exit 1
fi
mkdir -p "$RUN_DIR"
DIST="$(scripts/dist.sh)"
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
  if [ -n "${CONFIG_ONLY:-}" ]; then
    continue
  fi
  SEGSTORE_HEAP=-Xmx512m SEGSTORE_LOG_DIR="$dir/logs" nohup "$DIST/bin/segstore-meta" --config "$dir/meta.properties" \
    > "$dir/console.log" 2>&1 &
  echo $! >> "$RUN_DIR/pids"
  echo "meta node $i: pid $!, raft 127.0.0.1:$((BASE+i)), rpc 127.0.0.1:$((BASE+100+i)), metrics http://127.0.0.1:$((BASE+400+i))/metrics, log $dir/logs/segstore-meta.log"
done
META="127.0.0.1:$((BASE+101)),127.0.0.1:$((BASE+102)),127.0.0.1:$((BASE+103))"
echo "$META" > "$RUN_DIR/meta-addresses"
echo "$DIST" > "$RUN_DIR/dist"
if [ -n "${CONFIG_ONLY:-}" ]; then
  exit 0 # CONFIG_ONLY=1 (scripts/start-cluster.sh in combined mode): the configurations only, nothing started
fi
echo "waiting for a leader..."
for _ in $(seq 1 60); do
  if "$DIST/bin/segstore-admin" --meta "$META" describe 2>/dev/null; then
    echo
    echo "try: $DIST/bin/segstore-admin --meta $META describe"
    exit 0
  fi
done
echo "no leader answered; see $RUN_DIR/meta-*/logs/segstore-meta.log and console.log" >&2
exit 1
