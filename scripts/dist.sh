#!/usr/bin/env bash
# Prints the path of the unpacked distribution (dist/target/segstore-VERSION), building it first if it is not
# there yet (mvn package, tests skipped; about a minute). Rebuild after changing the code: DIST_REBUILD=1.
set -euo pipefail
cd "$(dirname "$0")/.."
find_dist() { find dist/target -maxdepth 1 -type d -name 'segstore-*' 2>/dev/null | head -1; }
dist="$(find_dist)"
if [ -z "$dist" ] || [ ! -x "$dist/bin/segstore-meta" ] || [ -n "${DIST_REBUILD:-}" ]; then
  echo "building the distribution (mvn package -DskipTests)..." >&2
  mvn -q -B package -DskipTests >&2
  dist="$(find_dist)"
fi
echo "$PWD/$dist"
