#!/usr/bin/env bash
# Stops the cluster started by scripts/start-cluster.sh: only the PIDs it recorded.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN_DIR="${RUN_DIR:-run/cluster}" exec scripts/stop-meta-cluster.sh
