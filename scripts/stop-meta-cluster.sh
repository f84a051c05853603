#!/usr/bin/env bash
# Stops the meta-service group started by scripts/start-meta-cluster.sh: only the PIDs it recorded.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN_DIR="${RUN_DIR:-run/meta-cluster}"
if [ ! -f "$RUN_DIR/pids" ]; then
  echo "nothing to stop: $RUN_DIR/pids not found"
  exit 0
fi
while read -r pid; do
  if kill "$pid" 2>/dev/null; then
    echo "stopped pid $pid"
  fi
done < "$RUN_DIR/pids"
rm -f "$RUN_DIR/pids"
