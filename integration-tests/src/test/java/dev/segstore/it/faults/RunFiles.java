package dev.segstore.it.faults;

import dev.segstore.chaos.Anomaly;
import dev.segstore.chaos.History;
import dev.segstore.chaos.Report;
import dev.segstore.node.server.InJvmCluster;
import dev.segstore.protocol.meta.Segment;
import dev.segstore.protocol.meta.ShardRoute;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * The files a failed run leaves in its directory ({@code target/fault-runs/<seed>/<run>/}):
 * <ul>
 *   <li>{@code summary.txt}: the schedule, the problems and anomalies with their explanations, what the nemesis
 *       did when, and the report's summary tables;</li>
 *   <li>{@code report.html}: {@link Report}'s page (throughput, latency, fault intervals, anomalies);</li>
 *   <li>{@code history.jsonl}: the history (docs/chaos-history.md), which {@code History.read} loads again;</li>
 *   <li>{@code cluster.log}: the cluster's log lines during the run;</li>
 *   <li>{@code data/node-N/SHARDID-SEQ/}: each node's files of the shard's segments, as they were after the
 *       final reads.</li>
 * </ul>
 */
final class RunFiles {
    private RunFiles() {
    }

    static void save(Path dir, RunResult result, History history, List<String> logLines, FaultCluster cluster,
                     ShardRoute route) throws IOException {
        Files.createDirectories(dir);
        List<Anomaly> anomalies = result.anomalies();
        history.write(dir.resolve("history.jsonl"));
        Report.write(dir.resolve("report.html"), history, anomalies);
        List<String> summary = new ArrayList<>(List.of(result.failure().split("\n")));
        summary.add("");
        anomalies.forEach(a -> summary.add(a.kind() + " (ops " + a.opIds() + "): " + a.explanation()));
        summary.add("");
        summary.add(Report.summaryTable(history, anomalies));
        Files.write(dir.resolve("summary.txt"), summary, StandardCharsets.UTF_8);
        Files.write(dir.resolve("cluster.log"), logLines, StandardCharsets.UTF_8);
        if (route != null) {
            for (Segment s : route.getSegmentsList()) {
                for (int node = 1; node <= 3; node++) {
                    Path from = cluster.logDir(node, s.getShardId(), s.getSequence());
                    if (Files.isDirectory(from)) {
                        copyTree(from, dir.resolve("data").resolve("node-" + node).resolve(from.getFileName()));
                    }
                }
            }
        }
    }

    private static void copyTree(Path from, Path to) throws IOException {
        InJvmCluster.deleteTree(to);
        try (Stream<Path> files = Files.walk(from)) {
            for (Path p : files.toList()) {
                Path target = to.resolve(from.relativize(p).toString());
                if (Files.isDirectory(p)) {
                    Files.createDirectories(target);
                } else {
                    Files.copy(p, target, StandardCopyOption.REPLACE_EXISTING);
                }
            }
        }
    }
}
