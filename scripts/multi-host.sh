#!/usr/bin/env bash
# Rehearses a deployment on several hosts on this one machine: each of the 3 meta nodes and 3 storage nodes runs
# from the distribution in its own network namespace ("host") with its own address on a private bridge
# (10.77.0.0/24: meta nodes .11-.13, storage nodes .21-.23; this machine's own side is .1), each with its own
# config file written from the distribution's samples, as the README's "On several hosts" says. Then it runs the
# broker example against the cluster, cuts the link of the storage node leading the demo shard for 10 s (link
# down: a partition), shows the cluster's health while it is cut and after it heals, and stops everything.
# Needs root (ip netns, veth, a bridge); without it, it says so and exits 0. Everything it creates (namespaces,
# veth pairs, the bridge, processes by their PIDs, run/multi-host/) is removed when it ends, however it ends.
# Usage: scripts/multi-host.sh            (DIST_REBUILD=1 rebuilds the distribution first)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ] || ! ip netns list > /dev/null 2>&1; then
  echo "multi-host.sh: skipped: it needs root and network namespaces (ip netns) to give each process its own address"
  exit 0
fi
RUN_DIR="run/multi-host"
BRIDGE=segbr0
NET=10.77.0
HOSTS=(m1 m2 m3 n1 n2 n3)
declare -A ADDR=([m1]=$NET.11 [m2]=$NET.12 [m3]=$NET.13 [n1]=$NET.21 [n2]=$NET.22 [n3]=$NET.23)
PIDS=()

cleanup() {
  set +e
  for pid in "${PIDS[@]}"; do kill "$pid" 2> /dev/null; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2> /dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2> /dev/null
  done
  for h in "${HOSTS[@]}"; do
    ip netns del "seg-$h" 2> /dev/null
    ip link del "veth-$h" 2> /dev/null
  done
  ip link del "$BRIDGE" 2> /dev/null
  echo "removed the namespaces, veth pairs and bridge; stopped pids ${PIDS[*]:-none}"
}
trap cleanup EXIT

DIST="$(scripts/dist.sh)"
rm -rf "$RUN_DIR"
mkdir -p "$RUN_DIR"

# The network: a bridge in this namespace, one veth pair per host (one end on the bridge, the other its eth0).
ip link add "$BRIDGE" type bridge
ip addr add "$NET.1/24" dev "$BRIDGE"
ip link set "$BRIDGE" up
for h in "${HOSTS[@]}"; do
  ip netns add "seg-$h"
  ip link add "veth-$h" type veth peer name eth0 netns "seg-$h"
  ip link set "veth-$h" master "$BRIDGE" up
  ip -n "seg-$h" addr add "${ADDR[$h]}/24" dev eth0
  ip -n "seg-$h" link set eth0 up
  ip -n "seg-$h" link set lo up
done

# One config file per process, from the distribution's samples, changed only where a host differs.
PEERS="${ADDR[m1]}:7001:7101,${ADDR[m2]}:7001:7101,${ADDR[m3]}:7001:7101"
META="${ADDR[m1]}:7101,${ADDR[m2]}:7101,${ADDR[m3]}:7101"
for i in 1 2 3; do
  d="$RUN_DIR/m$i"; mkdir -p "$d"
  sed -e "s/^self=.*/self=${ADDR[m$i]}:7001:7101/" -e "s/^peers=.*/peers=$PEERS/" -e "s|^data.dir=.*|data.dir=data|" \
      -e "/^metrics.port=/d" "$DIST/config/meta.properties" > "$d/meta.properties"
  d="$RUN_DIR/n$i"; mkdir -p "$d"
  sed -e "s/^node.id=.*/node.id=$i/" -e "s/^host=.*/host=${ADDR[n$i]}/" -e "s|^data.dir=.*|data.dir=data|" \
      -e "s/^meta.addresses=.*/meta.addresses=$META/" -e "/^metrics.port=/d" "$DIST/config/node.properties" > "$d/node.properties"
done
start() { # host, launcher, config
  SEGSTORE_HEAP=-Xmx384m SEGSTORE_LOG_DIR="$PWD/$RUN_DIR/$1/logs" \
    ip netns exec "seg-$1" "$DIST/bin/$2" --config "$PWD/$RUN_DIR/$1/$3" > "$RUN_DIR/$1/console.log" 2>&1 &
  PIDS+=($!)
  echo "$1 (${ADDR[$1]}): $2, pid $!"
}
for i in 1 2 3; do start "m$i" segstore-meta meta.properties; done
for i in 1 2 3; do start "n$i" segstore-node node.properties; done

ADMIN=("$DIST/bin/segstore-admin" --meta "$META")
echo "waiting for a meta leader and three storage nodes..."
for _ in $(seq 1 90); do
  if [ "$("${ADMIN[@]}" describe 2> /dev/null | grep -c ' ALIVE ')" -ge 3 ]; then break; fi
  sleep 1
done
"${ADMIN[@]}" describe
"${ADMIN[@]}" create-shard demo --replicas 3 --min-isr 2 > /dev/null
"$DIST/bin/segstore-client" --meta "$META" produce demo one host each > /dev/null
"$DIST/bin/segstore-broker-example" "$META" "$RUN_DIR/example-rocksdb"

leader="$("${ADMIN[@]}" route demo | grep -o 'leader [0-9]*' | tail -1 | cut -d' ' -f2)"
echo
echo "partition: storage node $leader (${ADDR[n$leader]}) leads demo; its link goes down for 10 s"
ip -n "seg-n$leader" link set eth0 down
sleep 10
"${ADMIN[@]}" health || true
"${ADMIN[@]}" route demo
ip -n "seg-n$leader" link set eth0 up
echo "healed; waiting for the cluster to be healthy again..."
for _ in $(seq 1 60); do
  if "${ADMIN[@]}" health > /dev/null 2>&1; then break; fi
  sleep 1
done
"${ADMIN[@]}" health
"$DIST/bin/segstore-client" --meta "$META" consume demo
