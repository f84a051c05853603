package dev.segstore.it.faults;

import dev.segstore.chaos.Anomaly;

import java.nio.file.Path;
import java.util.List;

/**
 * What one schedule's run found and measured.
 *
 * @param operations the operations in its history, final reads included
 * @param anomalies  what {@link dev.segstore.chaos.Checker} found
 * @param problems   what failed the run besides anomalies: the ISR not full again in time, sealed replicas
 *                   that differ, a final read that failed, a client that did not stop
 * @param stalls     per fault, how long writes stalled after it began
 * @param healMs     from the heal until every segment's ISR was full and every replica had taken its seal
 *                   (-1 if that never happened in time)
 * @param runMs      the whole run, shard creation to check
 * @param savedTo    where the failed run's files are, or null if it passed
 */
record RunResult(String runId, Schedule schedule, int operations, List<Anomaly> anomalies, List<String> problems,
                 List<Stalls.Stall> stalls, long healMs, long runMs, List<String> nemesisLog, Path savedTo) {
    boolean passed() {
        return anomalies.isEmpty() && problems.isEmpty();
    }

    /** The failure, for an assertion message: schedule, what went wrong, where the files are. */
    String failure() {
        StringBuilder b = new StringBuilder("fault run ").append(runId).append(" failed\n").append(schedule).append('\n');
        problems.forEach(p -> b.append("problem: ").append(p).append('\n'));
        anomalies.stream().limit(10).forEach(a -> b.append(a.kind()).append(": ").append(a.explanation()).append('\n'));
        if (anomalies.size() > 10) {
            b.append("... and ").append(anomalies.size() - 10).append(" more anomalies\n");
        }
        b.append("nemesis:\n");
        nemesisLog.forEach(l -> b.append("  ").append(l).append('\n'));
        if (savedTo != null) {
            b.append("history, report and the shard's segment files: ").append(savedTo.toAbsolutePath()).append('\n');
        }
        return b.toString();
    }
}
