#!/usr/bin/env bash
# The pause each roll of a scripts/roll-stall.sh run cost writes, and the pauses of the seconds without a roll:
# usage scripts/roll-stall-report.sh RUN_DIR (default run/roll-stall). A roll starts when its leader logged
# "segment full at offset N, sealing" (storage node logs, wall clock, time R). A gap report at time T with longest
# pause G (writer.log: "gap T acked .. failed .. longest-gap-ms G") may hold that roll's pause when
# T - 1000 - G < R <= T (its longest pause ended in (T - 1000, T] and may have begun at R); a roll's pause is the
# largest G of the (one or two) reports that may hold it: an upper bound, as another pause of that second may be
# longer. Needs the node logs and the writer log the run left in RUN_DIR.
# With the writer's pause lines (segstore-perf --pause-log-ms M: "pause E P", every pause of P > M ms that ended at E),
# it also prints, for each roll, the longest logged pause that began at most 50 ms before R and ended within 500 ms
# after it (0: none over M), against the same for instants midway between rolls: a pause of that second that is not
# the roll's no longer counts against it.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN_DIR="${1:-${RUN_DIR:-run/roll-stall}}"
rolls="$(grep -h -E 'rolls/[0-9]+@[0-9]+: segment (full at offset|is [0-9]+ ms old)' "$RUN_DIR"/node-*/logs/segstore-node.log \
  | while read -r day time _; do date -d "$day $time" +%s%3N; done | sort -n | tr '\n' ' ')"
awk -v rolls="$rolls" '
  function pct(a, n, p,   i) { i = int(n * p) + 1; if (i > n) i = n; return a[i] }
  function show(name, a, n,   i, s) {
    if (n == 0) { printf "  %s: none\n", name; return }
    s = ""; for (i = n; i > n - 5 && i > 0; i--) s = s " " a[i]
    printf "  %s: %d, longest pause p50 %d ms, p90 %d ms, max %d ms (longest:%s)\n", name, n, pct(a, n, 0.5), pct(a, n, 0.9), a[n], s
  }
  BEGIN { nr = split(rolls, r, " ") }
  $1 == "pause" { pe[++np] = $2; pg[np] = $3; next }
  $1 == "gap" {
    t = $2; g = $8; hit = 0
    for (i = 1; i <= nr; i++) if (r[i] > t - 1000 - g && r[i] <= t) { hit = 1; if (g > m[i]) m[i] = g; seen[i] = 1 }
    if (!hit) o[++no] = g
  }
  END {
    for (i = 1; i <= nr; i++) if (seen[i]) w[++nw] = m[i]
    # insertion sorts: a few dozen values
    for (i = 2; i <= nw; i++) { v = w[i]; for (j = i - 1; j >= 1 && w[j] > v; j--) w[j + 1] = w[j]; w[j + 1] = v }
    for (i = 2; i <= no; i++) { v = o[i]; for (j = i - 1; j >= 1 && o[j] > v; j--) o[j + 1] = o[j]; o[j + 1] = v }
    printf "  rolls logged: %d\n", nr
    show("rolls with a gap report", w, nw)
    show("seconds without", o, no)
    if (np > 0) {
      for (i = 1; i <= nr; i++) { x[i] = near(r[i]) }
      for (i = 1; i < nr; i++) { y[i] = near((r[i] + r[i + 1]) / 2) }
      sortn(x, nr); sortn(y, nr - 1)
      show("pause at each roll (logged pauses: began <= 50 ms before, ended <= 500 ms after)", x, nr)
      show("pause midway between rolls (the same window)", y, nr - 1)
    }
  }
  function near(t,   j, b, best) {
    best = 0
    for (j = 1; j <= np; j++) { b = pe[j] - pg[j]; if (b >= t - 50 && pe[j] >= t && pe[j] <= t + 500 && pg[j] > best) best = pg[j] }
    return best
  }
  function sortn(a, n,   i, j, v) { for (i = 2; i <= n; i++) { v = a[i]; for (j = i - 1; j >= 1 && a[j] > v; j--) a[j + 1] = a[j]; a[j + 1] = v } }
  ' "$RUN_DIR/writer.log"
