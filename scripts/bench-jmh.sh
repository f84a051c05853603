#!/usr/bin/env bash
# JMH benchmarks of in-process code (module benchmarks): segment log appends, the record batch format, the
# meta-service state machine. Builds benchmarks/target/benchmarks.jar, then runs it with short defaults for
# the options not given (JMH refuses an option given twice):
#   -f 1 -wi 3 -w 2s -i 5 -r 2s     1 fork, 3 warm-up iterations of 2 s, 5 measured iterations of 2 s
# Every argument goes on to JMH:
#   scripts/bench-jmh.sh RecordBatch                       # the benchmarks matching a regex
#   scripts/bench-jmh.sh -p durability=FSYNC SegmentLog     # one parameter value
#   scripts/bench-jmh.sh -i 10 -r 5s MetaState              # longer measurements
#   scripts/bench-jmh.sh -l                                 # list the benchmarks; -h for JMH's options
# See docs/benchmarks.md, "JMH benchmarks (in-process code)".
set -euo pipefail
cd "$(dirname "$0")/.."
mvn -q -B -pl benchmarks -am -DskipTests package
defaults=()
for option in "-f 1" "-wi 3" "-w 2s" "-i 5" "-r 2s"; do
  name="${option%% *}"
  given=false
  for arg in "$@"; do
    [[ "$arg" == "$name" ]] && given=true
  done
  $given || defaults+=("$name" "${option#* }")
done
exec java -jar benchmarks/target/benchmarks.jar "${defaults[@]}" "$@"
