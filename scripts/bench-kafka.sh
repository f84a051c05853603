#!/usr/bin/env bash
# Kafka on this machine, for the comparisons in docs/benchmarks.md ("Kafka beside segstore, one partition and 1,000; and
# batches of 256"): 3 combined KRaft nodes
# (broker and controller in one process, as the figures of issue 14 were measured) on 127.0.0.21-23 (ports 9092 and
# 9093), 3 replicas, min ISR 2, acks=all, no fsync (Kafka's default), 1 KiB records, written by Kafka's own
# `ProducerPerformance` (kafka-producer-perf-test) from a fourth process. Kafka comes from Maven Central (kafka_2.13 and
# kafka-tools, KAFKA_VERSION, default 4.2.0), fetched by Maven into run/kafka/lib the first time; nothing of it is kept
# in git. Each topic named in TOPICS ("name:partitions", default "t1:1 t1000:1000") is created and written in turn, on
# the same cluster, with the batch size and linger given; each producer's whole output is kept in run/kafka/<name>.log.
# A later topic is written on a cluster that already holds the earlier ones' data: to measure each on a fresh cluster
# (as scripts/bench-cluster.sh does per run), run the script once per topic, e.g. TOPICS="t1000:1000".
# Usage: scripts/bench-kafka.sh [records=1500000] [warm-up records=500000] [batch bytes=262144] [linger ms=10]
# The figure to compare is the "steady state" line (after the warm-up records). The cluster is stopped (by the PIDs it
# started) and its data deleted when the script ends.
set -euo pipefail
cd "$(dirname "$0")/.."
RECORDS="${1:-1500000}"
WARMUP="${2:-500000}"
BATCH="${3:-262144}"
LINGER="${4:-10}"
VERSION="${KAFKA_VERSION:-4.2.0}"
DIR="$PWD/run/kafka"
LIB="$DIR/lib"
BOOTSTRAP=127.0.0.21:9092,127.0.0.22:9092,127.0.0.23:9092

if [ ! -f "$LIB/.complete-$VERSION" ]; then
  mkdir -p "$DIR"
  cat > "$DIR/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local</groupId><artifactId>kafka-bench</artifactId><version>1</version><packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$VERSION</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId><version>2.0.16</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId><version>2.24.3</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>2.24.3</version></dependency>
  </dependencies>
</project>
POM
  rm -rf "$LIB"
  mvn -q -B -f "$DIR/pom.xml" dependency:copy-dependencies -DoutputDirectory="$LIB"
  touch "$LIB/.complete-$VERSION" # a download cut half-way is fetched again next time
fi
CP="$LIB/*"

PIDS=()
stop() {
  for p in "${PIDS[@]}"; do kill "$p" 2> /dev/null || true; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$p" 2> /dev/null || break; sleep 0.2; done
    if kill -0 "$p" 2> /dev/null; then kill -9 "$p" 2> /dev/null || true; fi
    wait "$p" 2> /dev/null || true # our child: reaped here, so its PID is not reused under us
  done
  rm -rf "$DIR"/data-*
}
trap stop EXIT

rm -rf "$DIR"/data-* "$DIR"/k*.properties
CLUSTER_ID=$(java -cp "$CP" kafka.tools.StorageTool random-uuid 2> /dev/null | tail -1)
for i in 1 2 3; do
  cat > "$DIR/k$i.properties" <<PROPS
node.id=$i
process.roles=broker,controller
listeners=PLAINTEXT://127.0.0.2$i:9092,CONTROLLER://127.0.0.2$i:9093
advertised.listeners=PLAINTEXT://127.0.0.2$i:9092
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
controller.quorum.voters=1@127.0.0.21:9093,2@127.0.0.22:9093,3@127.0.0.23:9093
log.dirs=$DIR/data-$i
num.partitions=1
default.replication.factor=3
min.insync.replicas=2
offsets.topic.replication.factor=3
transaction.state.log.replication.factor=3
group.initial.rebalance.delay.ms=0
PROPS
  java -cp "$CP" kafka.tools.StorageTool format -t "$CLUSTER_ID" -c "$DIR/k$i.properties" > "$DIR/format-$i.log" 2>&1
done
for i in 1 2 3; do
  java -Xms1g -Xmx1g -XX:+UseG1GC -cp "$CP" kafka.Kafka "$DIR/k$i.properties" > "$DIR/k$i.log" 2>&1 &
  PIDS+=($!)
done

topics() { java -cp "$CP" org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOTSTRAP" "$@"; }
ready=""
for _ in $(seq 1 150); do
  if topics --list > /dev/null 2>&1; then ready=1; break; fi
  sleep 0.2
done
if [ -z "$ready" ]; then
  echo "Kafka did not answer within 30 s: see $DIR/k1.log" >&2
  exit 1
fi
echo "kafka $VERSION: 3 combined KRaft nodes, 3 replicas, min ISR 2, acks=all, 1024-byte records, batch.size=$BATCH, linger.ms=$LINGER"
for spec in ${TOPICS:-t1:1 t1000:1000}; do
  case "$spec" in
    *:*) name="${spec%%:*}" partitions="${spec##*:}" ;;
    *) echo "TOPICS entry '$spec' is not name:partitions" >&2; exit 1 ;;
  esac
  topics --create --topic "$name" --partitions "$partitions" --replication-factor 3 --config min.insync.replicas=2 > /dev/null 2>&1
  java -Xmx1g -cp "$CP" org.apache.kafka.tools.ProducerPerformance --topic "$name" --num-records "$RECORDS" \
    --warmup-records "$WARMUP" --record-size 1024 --throughput -1 --producer-props bootstrap.servers="$BOOTSTRAP" acks=all \
    batch.size="$BATCH" linger.ms="$LINGER" buffer.memory=67108864 > "$DIR/$name.log" 2>&1 || true
  if ! grep -E "steady state records sent" "$DIR/$name.log" | sed "s/^/$name ($partitions partitions): /" | grep .; then
    echo "no steady-state line for $name: see $DIR/$name.log" >&2
    exit 1
  fi
done
