package dev.segstore.it.faults;

import dev.segstore.adapter.ShardConfig;
import dev.segstore.adapter.StorageAdapter;
import dev.segstore.adapter.StoredRecord;
import dev.segstore.chaos.Anomaly;
import dev.segstore.chaos.Checker;
import dev.segstore.chaos.History;
import dev.segstore.chaos.Invocation;
import dev.segstore.chaos.Report;
import dev.segstore.chaos.Result;
import dev.segstore.client.SegmentStorageAdapter;
import dev.segstore.node.server.InJvmCluster;
import dev.segstore.protocol.meta.Segment;
import dev.segstore.protocol.meta.SegmentStatus;
import dev.segstore.protocol.meta.ShardRoute;
import dev.segstore.protocol.node.ReplicaStatusResponse;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.stream.Stream;

/**
 * Runs one {@link ProcSchedule} against a {@link ProcCluster}, as {@link ScheduleRunner} runs a schedule in the
 * JVM, with the same workload ({@link ClientProcess}es recording a {@link History}), checker and figures
 * ({@link RunResult}, {@link Stalls}): a shard of its own (3 replicas, min ISR 2, 64 KiB segments), the clients,
 * the faults at their times ({@link ProcNemesis}), the heal (every rule lifted, every process back), the shard
 * quiet again (every segment led with a full ISR; each replica, asked directly, sealed at the segment's end or,
 * open, ending where its leader does: {@link #QUIET_MS}), replicas compared byte for byte, the final reads, and
 * the check. Before it starts, the cluster must be healthy (every process up, three live storage nodes).
 *
 * <p>A failed run keeps its files in {@code runsDir/<run>/}: summary.txt, report.html, history.jsonl,
 * client.log (the test JVM's lines), logs/&lt;process&gt;.log (each process's lines during the run) and
 * data/node-N/&lt;segment&gt;/ (the shard's files on every node).
 */
final class ProcRunner {
    static final long QUIET_MS = 60_000;
    private static final int FINAL_PAGE = 1_000;

    private final ProcCluster cluster;
    private final CapturedLog log;
    private final Path runsDir;

    ProcRunner(ProcCluster cluster, CapturedLog log, Path runsDir) {
        this.cluster = cluster;
        this.log = log;
        this.runsDir = runsDir;
    }

    /** The result, and what the run failed with in words (null if it passed). */
    record Outcome(RunResult result, String failure) {
    }

    Outcome run(ProcSchedule schedule, String runId) throws Exception {
        cluster.awaitHealthy(120_000);
        long begin = System.nanoTime();
        log.drain();
        Map<String, Long> marks = cluster.logMarks();
        String shard = "procs-" + runId;
        History history = new History();
        List<String> problems = new ArrayList<>();
        SegmentStorageAdapter admin = cluster.admin(schedule.durability());
        admin.createShard(ShardConfig.of(shard, SegmentStorageAdapter.STORAGE_TYPE).withReplication(3, 2)
                .withSegmentBytes(ScheduleRunner.SEGMENT_BYTES)).get(30, TimeUnit.SECONDS);

        long start = System.nanoTime();
        RunContext run = new RunContext(runId, shard, history, schedule.workload(), start + TimeUnit.MILLISECONDS.toNanos(schedule.workloadMs()));
        List<Thread> clients = startClients(run);
        ProcNemesis nemesis = new ProcNemesis(cluster, history, shard, start, schedule.durability());
        try {
            nemesis.play(schedule.faults());
            nemesis.waitUntil(schedule.healAtMs());
        } finally {
            cluster.heal().forEach(h -> nemesis.note("heal: " + h));
        }
        long healed = System.nanoTime();
        run.stopNoEarlierThan(healed + TimeUnit.MILLISECONDS.toNanos(ProcSchedule.AFTER_HEAL_MS));
        for (Thread t : clients) {
            t.join(schedule.workloadMs() + ProcCluster.REQUEST_TIMEOUT_MS + 20_000);
            if (t.isAlive()) {
                problems.add("client " + t.getName() + " still running long after the workload ended");
            }
        }
        ShardRoute route = awaitQuiet(shard, problems);
        long healMs = route == null ? -1 : TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - healed);
        if (route != null) {
            problems.addAll(replicasDiffer(route));
            history.sealPoints(shard, route.getSegmentsList().stream().filter(s -> s.getStatus() == SegmentStatus.SEALED)
                    .map(Segment::getEndOffset).toList());
        }
        finalReads(cluster.adapter("final"), run, problems);
        List<Anomaly> anomalies = Checker.check(history);
        // RunResult (and the campaign table) take an in-JVM Schedule: its workload and durability, no faults; the
        // process schedule is in the failure text and summary.txt.
        Schedule asTable = new Schedule(schedule.workload(), schedule.durability(), List.of());
        RunResult result = new RunResult(runId, asTable, history.ops().size(), anomalies, problems, Stalls.of(history), healMs,
                TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - begin), nemesis.log(), null);
        String failure = null;
        if (!result.passed() || Boolean.getBoolean("procs.keepAll")) { // -Dprocs.keepAll=true: every run's files
            Path dir = runsDir.resolve(runId);
            result = new RunResult(runId, asTable, result.operations(), anomalies, problems, result.stalls(), healMs,
                    result.runMs(), nemesis.log(), dir);
            failure = failure(result, schedule);
            save(dir, failure, result, history, marks, route);
            if (result.passed()) {
                failure = null;
            }
        }
        admin.deleteShard(shard).exceptionally(e -> null);
        return new Outcome(result, failure);
    }

    private List<Thread> startClients(RunContext run) {
        Workload w = run.workload;
        List<ClientProcess> processes = new ArrayList<>();
        for (int i = 0; i < w.writers(); i++) {
            processes.add(new ClientProcess("w" + i, ClientProcess.Role.WRITER, cluster.adapter("w" + i), run));
        }
        for (int i = 0; i < w.readers(); i++) {
            processes.add(new ClientProcess("r" + i, ClientProcess.Role.READER, cluster.adapter("r" + i), run));
        }
        if (w.deleter()) {
            processes.add(new ClientProcess("d0", ClientProcess.Role.DELETER, cluster.adapter("d0"), run));
        }
        if (w.committer()) {
            processes.add(new ClientProcess("c0", ClientProcess.Role.COMMITTER, cluster.adapter("c0"), run));
        }
        List<Thread> threads = new ArrayList<>();
        for (ClientProcess p : processes) {
            Thread t = new Thread(p, "proc-client-" + p.name());
            t.setDaemon(true);
            t.start();
            threads.add(t);
        }
        return threads;
    }

    /** The route once the shard is quiet, or null (and why, in {@code why}) if it was not within {@link #QUIET_MS}. */
    private ShardRoute awaitQuiet(String shard, List<String> why) {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(QUIET_MS);
        String last = "no route read";
        while (System.nanoTime() < deadline) {
            try {
                ShardRoute route = cluster.harness.route(shard).get(3, TimeUnit.SECONDS);
                String notYet = notQuiet(route);
                if (notYet == null) {
                    return route;
                }
                last = notYet;
            } catch (Exception e) {
                last = "route: " + e;
            }
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(50));
        }
        why.add("not quiet " + QUIET_MS + " ms after the heal: " + last);
        return null;
    }

    private String notQuiet(ShardRoute route) {
        for (Segment s : route.getSegmentsList()) {
            if (s.getLeader() < 0 || s.getIsrCount() != s.getReplicasCount()) {
                return "segment " + s.getSequence() + ": leader " + s.getLeader() + ", ISR " + s.getIsrList() + " of replicas " + s.getReplicasList();
            }
            ReplicaStatusResponse led = s.getStatus() == SegmentStatus.OPEN ? cluster.replicaStatus(s.getLeader(), s.getShardId(), s.getSequence()) : null;
            if (s.getStatus() == SegmentStatus.OPEN && (led == null || !led.getRole().equals("LEADER"))) {
                return "segment " + s.getSequence() + " (open): leader " + s.getLeader() + " does not answer as leader";
            }
            for (int r : s.getReplicasList()) {
                ReplicaStatusResponse st = cluster.replicaStatus(r, s.getShardId(), s.getSequence());
                if (st == null) {
                    return "segment " + s.getSequence() + ": replica on node " + r + " does not answer";
                }
                if (s.getStatus() == SegmentStatus.SEALED && (!st.getSealed() || st.getLogEndOffset() != s.getEndOffset())) {
                    return "segment " + s.getSequence() + ": replica on node " + r + " has not taken the seal at " + s.getEndOffset()
                            + " (sealed " + st.getSealed() + ", log end " + st.getLogEndOffset() + ")";
                }
                if (s.getStatus() == SegmentStatus.OPEN && st.getLogEndOffset() != led.getLogEndOffset()) {
                    return "segment " + s.getSequence() + " (open): replica on node " + r + " ends at " + st.getLogEndOffset()
                            + ", its leader at " + led.getLogEndOffset();
                }
            }
        }
        return null;
    }

    /** One line per segment file whose replicas differ (as {@link Quiet#replicasDiffer}, on the processes' directories). */
    private List<String> replicasDiffer(ShardRoute route) throws IOException {
        List<String> differ = new ArrayList<>();
        for (Segment s : route.getSegmentsList()) {
            int first = s.getReplicas(0);
            Path firstDir = cluster.logDir(first, s.getShardId(), s.getSequence());
            if (!Files.isDirectory(firstDir)) {
                if (s.getEndOffset() != s.getStartOffset()) {
                    differ.add("segment " + s.getSequence() + ": node " + first + " has no directory " + firstDir);
                }
                continue;
            }
            List<Path> files;
            try (Stream<Path> list = Files.list(firstDir)) {
                files = list.filter(p -> p.toString().endsWith(".log")).sorted().toList();
            }
            for (int r : s.getReplicasList().subList(1, s.getReplicasCount())) {
                for (Path f : files) {
                    Path other = cluster.logDir(r, s.getShardId(), s.getSequence()).resolve(f.getFileName());
                    long at = Files.exists(other) ? Files.mismatch(f, other) : 0;
                    if (at >= 0) {
                        differ.add("segment " + s.getSequence() + " file " + f.getFileName() + ": node " + first + " and node " + r
                                + " differ from byte " + at + " (sizes " + Files.size(f) + " and " + (Files.exists(other) ? Files.size(other) : -1) + ")");
                    }
                }
            }
        }
        return differ;
    }

    private static void finalReads(StorageAdapter adapter, RunContext run, List<String> problems) {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(QUIET_MS);
        long from = 0;
        while (true) {
            long at = from;
            List<StoredRecord> page = ClientProcess.call("final", run, Invocation.finalRead(run.shard, at, FINAL_PAGE),
                    () -> adapter.readByOffset(run.shard, at, FINAL_PAGE), r -> Result.records(r.stream().map(Payloads::decode).toList()), false);
            if (page == null) {
                if (System.nanoTime() > deadline) {
                    problems.add("the final read at offset " + at + " kept failing");
                    return;
                }
                continue;
            }
            if (page.size() < FINAL_PAGE) {
                return;
            }
            from = page.get(page.size() - 1).offset() + 1;
        }
    }

    static String failure(RunResult r, ProcSchedule schedule) {
        StringBuilder b = new StringBuilder("process fault run ").append(r.runId()).append(r.passed() ? " passed" : " failed").append(" (replay: -Dprocs.runSeed=")
                .append(schedule.seed()).append(")\n").append(schedule).append('\n');
        r.problems().forEach(p -> b.append("problem: ").append(p).append('\n'));
        r.anomalies().stream().limit(10).forEach(a -> b.append(a.kind()).append(": ").append(a.explanation()).append('\n'));
        if (r.anomalies().size() > 10) {
            b.append("... and ").append(r.anomalies().size() - 10).append(" more anomalies\n");
        }
        b.append("nemesis:\n");
        r.nemesisLog().forEach(l -> b.append("  ").append(l).append('\n'));
        if (r.savedTo() != null) {
            b.append("history, report, process logs and the shard's segment files: ").append(r.savedTo().toAbsolutePath()).append('\n');
        }
        return b.toString();
    }

    private void save(Path dir, String failure, RunResult result, History history, Map<String, Long> marks, ShardRoute route)
            throws IOException {
        Files.createDirectories(dir);
        history.write(dir.resolve("history.jsonl"));
        Report.write(dir.resolve("report.html"), history, result.anomalies());
        List<String> summary = new ArrayList<>(List.of(failure.split("\n")));
        summary.add("");
        result.anomalies().forEach(a -> summary.add(a.kind() + " (ops " + a.opIds() + "): " + a.explanation()));
        summary.add("");
        summary.add(Report.summaryTable(history, result.anomalies()));
        Files.write(dir.resolve("summary.txt"), summary, StandardCharsets.UTF_8);
        Files.write(dir.resolve("client.log"), log.drain(), StandardCharsets.UTF_8);
        cluster.logsSince(marks, dir.resolve("logs"));
        if (route == null) { // not quiet: the shard's files as they are
            try {
                route = cluster.harness.route(run(dir)).get(3, TimeUnit.SECONDS);
            } catch (Exception e) {
                route = null;
            }
        }
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

    /** The shard of the run saved in {@code dir}. */
    private static String run(Path dir) {
        return "procs-" + dir.getFileName();
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
