package dev.segstore.it.faults;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Runs process fault schedules one after the other on one {@link ProcCluster} (made before the first run, made
 * again after a run that left it unhealthy), each on a fresh shard, and adds each to a {@link CampaignTable}.
 * Run {@code k}'s seed is the {@code k}-th long of {@code Random(campaignSeed)}; each run prints its seed, and
 * {@code -Dprocs.runSeed=} replays that one schedule. A failed run prints its failure and keeps its files
 * ({@link ProcRunner}); the cluster's own directory (every process's whole log and data) is then kept too, and
 * its path printed.
 */
final class ProcCampaign {
    /** A run, heal and quiet wait included, that takes longer than this is abandoned (and fails). */
    static final long RUN_TIMEOUT_MS = 240_000;

    final CampaignTable table = new CampaignTable();
    final List<String> failures = new ArrayList<>();
    private final Path dir;
    /** Run {@code k} draws its faults from {@code mixes.get((k - 1) % mixes.size())}. */
    private final List<Set<ProcFaultKind>> mixes;
    private final ExecutorService worker = Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "proc-fault-run");
        t.setDaemon(true);
        return t;
    });
    /** Per proxy, the sources it saw, over every cluster of the campaign (filled as each closes). */
    final java.util.Map<String, java.util.Set<String>> sourcesSeen = new java.util.TreeMap<>();
    private ProcCluster cluster;
    private int clusters;

    ProcCampaign(Path dir, Set<ProcFaultKind> kinds) {
        this(dir, List.of(kinds));
    }

    ProcCampaign(Path dir, List<Set<ProcFaultKind>> mixes) {
        this.dir = dir;
        this.mixes = List.copyOf(mixes);
    }

    /** {@code -Dprocs.kinds=KILL_NODE,ONE_WAY}: a fault mix; all kinds when absent. */
    static Set<ProcFaultKind> kindsFromProperty() {
        String kinds = System.getProperty("procs.kinds", "");
        if (kinds.isBlank()) {
            return EnumSet.allOf(ProcFaultKind.class);
        }
        Set<ProcFaultKind> mix = EnumSet.noneOf(ProcFaultKind.class);
        for (String k : kinds.split(",")) {
            mix.add(ProcFaultKind.valueOf(k.trim().toUpperCase(Locale.ROOT).replace('-', '_')));
        }
        return mix;
    }

    /** Runs {@code runs} schedules of {@code campaignSeed} (or the one of {@code runSeed}, if not null); returns the table. */
    String run(int runs, long campaignSeed, Long runSeed, String title) throws Exception {
        long started = System.nanoTime();
        Random seeds = new Random(campaignSeed);
        CapturedLog log = CapturedLog.capture();
        try {
            for (int k = 1; k <= (runSeed == null ? runs : 1); k++) {
                long seed = runSeed == null ? seeds.nextLong() : runSeed;
                String runId = String.format("%04d", k);
                ProcSchedule schedule = ProcSchedule.of(seed, mixes.get((k - 1) % mixes.size()));
                System.out.printf("process fault run %s: seed %d (replay: -Dprocs.runSeed=%d)%n", runId, seed, seed);
                runOne(schedule, runId, log);
            }
        } finally {
            log.stop();
            closeCluster();
            worker.shutdownNow();
        }
        String rendered = table.render(title, TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started));
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("campaign.txt"), rendered, StandardCharsets.UTF_8);
        return rendered;
    }

    private void runOne(ProcSchedule schedule, String runId, CapturedLog log) throws Exception {
        if (cluster == null) {
            cluster = ProcCluster.start(dir.resolve("cluster-" + (++clusters)));
        }
        ProcCluster c = cluster;
        Future<ProcRunner.Outcome> future = worker.submit(() -> new ProcRunner(c, log, dir).run(schedule, runId));
        ProcRunner.Outcome outcome;
        try {
            outcome = future.get(RUN_TIMEOUT_MS, TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            future.cancel(true);
            String failure = "process fault run " + runId + " did not finish within " + RUN_TIMEOUT_MS + " ms (replay: -Dprocs.runSeed="
                    + schedule.seed() + ")\n" + schedule + "\nprocesses:\n" + c.report();
            fail(failure);
            return;
        } catch (java.util.concurrent.ExecutionException e) {
            String failure = "process fault run " + runId + " broke (replay: -Dprocs.runSeed=" + schedule.seed() + ")\n" + schedule
                    + "\n" + stack(e.getCause()) + "processes:\n" + c.report();
            fail(failure);
            return;
        }
        RunResult r = outcome.result();
        table.add(r);
        System.out.printf("process fault run %s: %s, %d operations, heal to quiet %d ms, %d ms%n", runId,
                r.passed() ? "passed" : "FAILED", r.operations(), r.healMs(), r.runMs());
        if (!r.passed()) {
            failures.add(outcome.failure());
            System.out.println(outcome.failure());
            cluster.keep();
            System.out.println("the cluster's processes' logs and data directories are kept in " + cluster.root.toAbsolutePath());
            if (r.healMs() < 0) {
                closeCluster(); // not quiet: the next run starts on a fresh cluster
            }
        }
    }

    private void fail(String failure) {
        failures.add(failure);
        System.out.println(failure);
        cluster.keep();
        System.out.println("the cluster's processes' logs and data directories are kept in " + cluster.root.toAbsolutePath());
        closeCluster();
    }

    private static String stack(Throwable t) {
        java.io.StringWriter w = new java.io.StringWriter();
        t.printStackTrace(new java.io.PrintWriter(w));
        return w.toString();
    }

    private void closeCluster() {
        if (cluster != null) {
            cluster.network.sourcesSeen().forEach((proxy, sources) ->
                    sourcesSeen.computeIfAbsent(proxy, p -> new java.util.TreeSet<>()).addAll(sources));
            try {
                cluster.close();
            } catch (Exception e) {
                System.out.println("closing the process cluster failed: " + e);
            }
            cluster = null;
        }
    }
}
