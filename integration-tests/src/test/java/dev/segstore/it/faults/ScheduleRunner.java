package dev.segstore.it.faults;

import dev.segstore.adapter.ShardConfig;
import dev.segstore.adapter.StorageAdapter;
import dev.segstore.adapter.StoredRecord;
import dev.segstore.chaos.Anomaly;
import dev.segstore.chaos.Checker;
import dev.segstore.chaos.History;
import dev.segstore.chaos.Invocation;
import dev.segstore.chaos.Result;
import dev.segstore.client.SegmentStorageAdapter;
import dev.segstore.protocol.meta.Segment;
import dev.segstore.protocol.meta.SegmentStatus;
import dev.segstore.protocol.meta.ShardRoute;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Runs one {@link Schedule} against a {@link FaultCluster}:
 * <ol>
 *   <li>creates a shard of its own (3 replicas, min ISR 2, 64 KiB segments so that it rolls several times, the
 *       schedule's durability mode);</li>
 *   <li>starts the workload's client processes, each on its own thread and its own adapter (a broker of its
 *       own), recording every operation in a {@link History}; payloads are unique in the run;</li>
 *   <li>plays the fault actions at their times ({@link Nemesis}, recorded as nemesis intervals), then heals:
 *       every fault removed, every node back ({@link FaultCluster#heal()}); the clients go on a little, then
 *       stop, and their last operations complete (or time out as unknown);</li>
 *   <li>waits until the shard is quiet ({@link Quiet#await}: full ISRs, seals taken, the open segment's
 *       replicas as long as its leader's log, within {@link Quiet#DEADLINE_MS}; the time it took is the run's
 *       heal time) and compares every segment's replicas byte for byte;</li>
 *   <li>records the shard's seal points in the history (where the contract's roll window may cut a short read),
 *       reads the whole shard through an adapter that has not read it before, recorded as final reads, and runs
 *       {@link Checker#check};</li>
 *   <li>on any anomaly or problem saves the run's files ({@link RunFiles}) under {@code runsDir/<runId>}.</li>
 * </ol>
 * The shard is deleted afterwards, so that the shared cluster does not keep replicating old runs' shards.
 */
final class ScheduleRunner {
    static final long SEGMENT_BYTES = 64 * 1024;
    private static final int FINAL_PAGE = 1_000;

    private final FaultCluster cluster;
    private final CapturedLog log;
    private final Path runsDir;
    private final long segmentBytes;

    ScheduleRunner(FaultCluster cluster, CapturedLog log, Path runsDir) {
        this(cluster, log, runsDir, SEGMENT_BYTES);
    }

    /** A runner whose shards roll at {@code segmentBytes} (a schedule whose roles must stay on the same nodes: no roll). */
    ScheduleRunner(FaultCluster cluster, CapturedLog log, Path runsDir, long segmentBytes) {
        this.cluster = cluster;
        this.log = log;
        this.runsDir = runsDir;
        this.segmentBytes = segmentBytes;
    }

    RunResult run(Schedule schedule, String runId) throws Exception {
        long begin = System.nanoTime();
        log.drain();
        String shard = "faults-" + runId;
        History history = new History();
        List<String> problems = new ArrayList<>();
        SegmentStorageAdapter admin = cluster.admin(schedule.durability());
        admin.createShard(ShardConfig.of(shard, SegmentStorageAdapter.STORAGE_TYPE).withReplication(3, 2)
                .withSegmentBytes(segmentBytes)).get(30, TimeUnit.SECONDS);

        long start = System.nanoTime();
        RunContext run = new RunContext(runId, shard, history, schedule.workload(), start + TimeUnit.MILLISECONDS.toNanos(schedule.workloadMs()));
        List<Thread> clients = startClients(run);
        Nemesis nemesis = new Nemesis(cluster, history, shard, start, schedule.workload().seed(), schedule.durability());
        try {
            nemesis.play(schedule.faults());
            nemesis.waitUntil(schedule.healAtMs());
        } finally {
            List<String> healed = cluster.heal();
            healed.forEach(h -> nemesis.log().add("heal: " + h));
        }
        long healed = System.nanoTime();
        run.stopNoEarlierThan(healed + TimeUnit.MILLISECONDS.toNanos(Schedule.AFTER_HEAL_MS));
        for (Thread t : clients) {
            t.join(schedule.workloadMs() + FaultCluster.REQUEST_TIMEOUT_MS + 10_000);
            if (t.isAlive()) {
                problems.add("client " + t.getName() + " still running long after the workload ended");
            }
        }

        ShardRoute route = Quiet.await(cluster, shard, problems);
        long healMs = route == null ? -1 : TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - healed);
        if (route != null) {
            problems.addAll(Quiet.replicasDiffer(cluster, route));
            history.sealPoints(shard, route.getSegmentsList().stream().filter(s -> s.getStatus() == SegmentStatus.SEALED)
                    .map(Segment::getEndOffset).toList());
        }
        finalReads(cluster.adapter("final"), run, problems);
        List<Anomaly> anomalies = Checker.check(history);
        RunResult result = new RunResult(runId, schedule, history.ops().size(), anomalies, problems, Stalls.of(history), healMs,
                TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - begin), nemesis.log(), null);
        if (!result.passed() || Boolean.getBoolean("faults.saveAll")) { // faults.saveAll: passed runs too (debugging)
            Path dir = runsDir.resolve(runId);
            result = new RunResult(runId, schedule, result.operations(), anomalies, problems, result.stalls(), healMs,
                    result.runMs(), nemesis.log(), dir);
            RunFiles.save(dir, result, history, log.drain(), cluster, route);
        }
        admin.deleteShard(shard).exceptionally(e -> null);
        return result;
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
            Thread t = new Thread(p, "fault-client-" + p.name());
            t.setDaemon(true);
            t.start();
            threads.add(t);
        }
        return threads;
    }

    /**
     * The final state: the whole shard read page by page from offset 0 until a page comes back short. A page
     * that fails is tried again until {@link Quiet#DEADLINE_MS}; the failed attempts stay in the history as
     * failed reads.
     */
    private static void finalReads(StorageAdapter adapter, RunContext run, List<String> problems) {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(Quiet.DEADLINE_MS);
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
}
