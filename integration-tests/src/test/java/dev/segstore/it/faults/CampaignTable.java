package dev.segstore.it.faults;

import dev.segstore.chaos.Anomaly;

import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * The figures of many runs, as the table a campaign ends with: runs and operations, anomalies by kind, problems,
 * faults skipped, and per fault kind how many faults ran and how long writes stalled after they began (p50, p99,
 * max), the heal times and the run times. Thread-safe.
 */
final class CampaignTable {
    private int runs;
    private int failed;
    private long operations;
    private int problems;
    private int skipped;
    private final Map<Anomaly.Kind, Integer> anomalies = new EnumMap<>(Anomaly.Kind.class);
    private final Map<String, List<Long>> stalls = new TreeMap<>();
    private final Map<String, Integer> unmeasured = new TreeMap<>();
    private final List<Long> healMs = new ArrayList<>();
    private final List<Long> runMs = new ArrayList<>();
    private final List<String> failedRuns = new ArrayList<>();
    /** Crashes that lost the page cache: how many, and how many lost bytes; and in how many runs of each durability. */
    private final Map<String, long[]> crashes = new TreeMap<>();
    private static final java.util.regex.Pattern CRASH = java.util.regex.Pattern.compile(
            "losing its page cache: kept (\\d+) of (\\d+) unforced writes .*\\((\\d+) torn, (\\d+) bytes lost\\)");

    synchronized void add(RunResult r) {
        runs++;
        operations += r.operations();
        problems += r.problems().size();
        skipped += (int) r.nemesisLog().stream().filter(l -> l.contains(" skipped: ")).count();
        r.anomalies().forEach(a -> anomalies.merge(a.kind(), 1, Integer::sum));
        for (Stalls.Stall s : r.stalls()) {
            if (s.ms() < 0) {
                unmeasured.merge(s.kind(), 1, Integer::sum);
            } else {
                stalls.computeIfAbsent(s.kind(), k -> new ArrayList<>()).add(s.ms());
            }
        }
        if (r.healMs() >= 0) {
            healMs.add(r.healMs());
        }
        runMs.add(r.runMs());
        for (String line : r.nemesisLog()) {
            java.util.regex.Matcher m = CRASH.matcher(line);
            if (m.find()) {
                long[] c = crashes.computeIfAbsent(r.schedule().durability().toString(), k -> new long[5]);
                long lost = Long.parseLong(m.group(4));
                c[0]++;
                c[1] += lost > 0 ? 1 : 0;
                c[2] += Long.parseLong(m.group(2)) - Long.parseLong(m.group(1));
                c[3] += Long.parseLong(m.group(3));
                c[4] += lost;
            }
        }
        if (!r.passed()) {
            failed++;
            failedRuns.add(r.runId() + (r.savedTo() == null ? "" : " -> " + r.savedTo().toAbsolutePath()));
        }
    }

    synchronized int runs() {
        return runs;
    }

    synchronized int failed() {
        return failed;
    }

    synchronized String render(String title, long elapsedMs) {
        StringBuilder b = new StringBuilder(title).append('\n');
        b.append(String.format("runs %d (failed %d), operations %d, wall time %.1f s%n", runs, failed, operations, elapsedMs / 1000.0));
        b.append(String.format("%-24s %8s%n", "anomaly", "count"));
        for (Anomaly.Kind k : Anomaly.Kind.values()) {
            b.append(String.format("%-24s %8d%n", k, anomalies.getOrDefault(k, 0)));
        }
        b.append(String.format("%-24s %8d%n", "problems (not anomalies)", problems));
        b.append(String.format("faults skipped (their node down already, a meta node down or cut, no meta leader): %d%n", skipped));
        b.append(String.format("%-24s %8s %8s %8s %8s %12s%n", "writes stalled after", "faults", "p50 ms", "p99 ms", "max ms", "no write ack"));
        Set<String> kinds = new TreeSet<>(stalls.keySet());
        kinds.addAll(unmeasured.keySet());
        for (String kind : kinds) {
            List<Long> v = stalls.getOrDefault(kind, List.of());
            int none = unmeasured.getOrDefault(kind, 0);
            b.append(String.format("%-24s %8d %8d %8d %8d %12d%n", kind, v.size() + none, percentile(v, 50), percentile(v, 99),
                    percentile(v, 100), none));
        }
        b.append(String.format("%-24s %8d %8d %8d %8d%n", "heal to quiet (ISR full)", healMs.size(), percentile(healMs, 50),
                percentile(healMs, 99), percentile(healMs, 100)));
        b.append(String.format("%-24s %8d %8d %8d %8d%n", "run time", runMs.size(), percentile(runMs, 50), percentile(runMs, 99),
                percentile(runMs, 100)));
        crashes.forEach((durability, c) -> b.append(String.format(
                "crashes losing the page cache, %s shards: %d (%d lost bytes), unforced writes dropped %d, torn %d, bytes lost %d%n",
                durability, c[0], c[1], c[2], c[3], c[4])));
        failedRuns.forEach(f -> b.append("failed: ").append(f).append('\n'));
        return b.toString();
    }

    private static long percentile(List<Long> values, int p) {
        if (values.isEmpty()) {
            return -1;
        }
        List<Long> sorted = new ArrayList<>(values);
        sorted.sort(null);
        int i = (int) Math.ceil(p / 100.0 * sorted.size()) - 1;
        return sorted.get(Math.max(0, Math.min(sorted.size() - 1, i)));
    }
}
