#!/usr/bin/env bash
# Meta-service figures: shard creations/s and route look-ups/s against a 3-node group (one JVM, loopback),
# and the state machine's heap per shard.
# Usage: scripts/bench-meta.sh [shards=100000] [requests-in-flight=256]
set -euo pipefail
cd "$(dirname "$0")/.."
SHARDS="${1:-100000}"
IN_FLIGHT="${2:-256}"
mvn -q -B install -DskipTests
MAVEN_OPTS="-Xmx4g ${MAVEN_OPTS:-}" mvn -q -B -pl meta-service exec:java \
  -Dexec.mainClass=dev.segstore.meta.bench.MetaBenchmark \
  -Dexec.classpathScope=test \
  -Dexec.args="$SHARDS $IN_FLIGHT" 2>&1 | grep -v -E "^\s*at |alipay|RemotingException|^Caused by"
