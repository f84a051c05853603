package dev.segstore.it.faults;

import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.ShrinkingMode;
import net.jqwik.api.lifecycle.AddLifecycleHook;
import net.jqwik.api.lifecycle.AfterContainer;
import net.jqwik.api.lifecycle.AroundPropertyHook;
import net.jqwik.api.lifecycle.PropertyExecutionResult;
import net.jqwik.api.lifecycle.PropertyExecutor;
import net.jqwik.api.lifecycle.PropertyLifecycleContext;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumSet;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Fault schedules against an in-JVM cluster (issue 12): jqwik generates {@link Schedule}s (a workload and timed
 * faults: storage nodes killed, partitioned, slowed, their disks failing writes or fsyncs, the meta leader
 * killed, meta nodes' Raft links cut), {@link ScheduleRunner} runs each on a fresh shard of one cluster shared by all tries (made on the
 * first try, closed after the last), and a try passes if the checker finds no anomaly in its history, the shard
 * is quiet again (full ISRs, seals taken) within {@link Quiet#DEADLINE_MS} of the heal, and sealed replicas are
 * byte-identical. A failing schedule is shrunk and printed, and its files are saved under
 * {@code target/fault-runs/<seed>/<run>/} ({@link RunFiles}).
 *
 * <p>System properties: {@code faults.tries} (default {@value #DEFAULT_TRIES}, about 2 minutes on 2 cores),
 * {@code faults.seed} (replays the schedules of a seed printed before; the clients' timing still varies from
 * run to run), {@code faults.kinds=KILL_NODE,PARTITION} (a fault mix: only these {@link FaultKind}s),
 * {@code faults.campaign=true} (a campaign: every schedule runs, failures are saved and counted,
 * nothing is shrunk, and the property fails at the end if any run failed; {@code scripts/fault-campaign.sh}).
 * The table of runs, anomalies and stalls is printed at the end and written to
 * {@code target/fault-runs/<seed>/campaign.txt}. jqwik ignores JUnit's {@code @Timeout}: each try runs on a
 * worker thread and fails after {@link #TRY_TIMEOUT_MS}.
 */
class FaultScheduleProperties {
    static final int DEFAULT_TRIES = 200;
    static final long TRY_TIMEOUT_MS = 120_000;
    /** A run that passes but takes longer than this has its schedule and nemesis log printed. */
    static final long SLOW_RUN_MS = 15_000;

    private static String seed = "";
    private static boolean campaign;
    private static final CampaignTable TABLE = new CampaignTable();
    private static final ExecutorService WORKER = Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "fault-run");
        t.setDaemon(true);
        return t;
    });
    private static CapturedLog log;
    private static FaultCluster cluster;
    private static int runs;

    /** Sets tries, seed and shrinking from the system properties, prints them, and prints the table at the end. */
    public static final class Settings implements AroundPropertyHook {
        @Override
        public PropertyExecutionResult aroundProperty(PropertyLifecycleContext context, PropertyExecutor property) throws IOException {
            int tries = Integer.getInteger("faults.tries", DEFAULT_TRIES);
            seed = System.getProperty("faults.seed", Long.toString(ThreadLocalRandom.current().nextLong()));
            campaign = Boolean.getBoolean("faults.campaign");
            context.attributes().setTries(tries);
            context.attributes().setSeed(seed);
            if (campaign) {
                context.attributes().setShrinking(ShrinkingMode.OFF);
            }
            System.out.printf("FaultScheduleProperties: seed %s, %d tries%s (replay: -Dfaults.seed=%s -Dfaults.tries=%d)%n",
                    seed, tries, campaign ? ", campaign" : "", seed, tries);
            long started = System.nanoTime();
            PropertyExecutionResult result = property.execute();
            String table = TABLE.render("FaultScheduleProperties: seed " + seed + (campaign ? ", campaign" : ", shrinking tries included"),
                    TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started));
            System.out.println(table);
            Files.createDirectories(runsDir());
            Files.writeString(runsDir().resolve("campaign.txt"), table, StandardCharsets.UTF_8);
            if (campaign && TABLE.failed() > 0 && result.status() == PropertyExecutionResult.Status.SUCCESSFUL) {
                return result.mapToFailed(TABLE.failed() + " of " + TABLE.runs() + " fault runs failed:\n" + table);
            }
            return result;
        }
    }

    @Provide
    Arbitrary<Schedule> schedules() {
        String kinds = System.getProperty("faults.kinds", "");
        if (kinds.isBlank()) {
            return Schedule.arbitrary();
        }
        Set<FaultKind> mix = EnumSet.noneOf(FaultKind.class);
        for (String k : kinds.split(",")) {
            mix.add(FaultKind.valueOf(k.trim().toUpperCase(Locale.ROOT).replace('-', '_')));
        }
        return Schedule.arbitrary(mix);
    }

    @Property(tries = DEFAULT_TRIES, shrinking = ShrinkingMode.BOUNDED)
    @AddLifecycleHook(Settings.class)
    void faultSchedulesLoseNothingAndHeal(@ForAll("schedules") Schedule schedule) throws Exception {
        String runId = String.format("%04d", ++runs);
        Future<RunResult> run = WORKER.submit(() -> runner().run(schedule, runId));
        RunResult result;
        try {
            result = run.get(TRY_TIMEOUT_MS, TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            String stuck = stackOf("fault-run");
            run.cancel(true);
            dropCluster();
            fail("fault run " + runId + " did not finish within " + TRY_TIMEOUT_MS + " ms\n" + schedule + "\nthe run's thread:\n" + stuck);
            return;
        }
        TABLE.add(result);
        if (result.healMs() < 0) {
            dropCluster(); // not quiet: the next try starts on a fresh cluster
        }
        if (!result.passed()) {
            System.out.println(result.failure());
        } else if (result.runMs() > SLOW_RUN_MS) {
            System.out.println("fault run " + runId + " passed but took " + result.runMs() + " ms\n" + schedule + "\nnemesis:\n  "
                    + String.join("\n  ", result.nemesisLog()));
        }
        assertTrue(campaign || result.passed(), result::failure);
    }

    private static ScheduleRunner runner() throws Exception {
        if (log == null) {
            log = CapturedLog.capture();
        }
        if (cluster == null) {
            cluster = new FaultCluster();
        }
        return new ScheduleRunner(cluster, log, runsDir());
    }

    static Path runsDir() {
        return Path.of(System.getProperty("faults.dir", "target/fault-runs")).resolve(seed);
    }

    /**
     * Closes the cluster, or abandons it if it does not close within 30 s (a node hung, as the meta leader once
     * did in a jraft deadlock): the next try starts on a fresh cluster either way.
     */
    private static void dropCluster() {
        FaultCluster c = cluster;
        cluster = null;
        if (c == null) {
            return;
        }
        Thread closing = new Thread(() -> {
            try {
                c.close();
            } catch (Exception e) {
                System.out.println("closing the fault cluster failed: " + e);
            }
        }, "fault-cluster-close");
        closing.setDaemon(true);
        closing.start();
        try {
            closing.join(30_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (closing.isAlive()) {
            System.out.println("the fault cluster did not close within 30 s: abandoned (its threads stay)\n" + stackOf("fault-cluster-close"));
        }
    }

    /** The stack of the live thread named {@code name}, for a failure message. */
    private static String stackOf(String name) {
        StringBuilder b = new StringBuilder();
        Thread.getAllStackTraces().forEach((t, stack) -> {
            if (t.getName().equals(name)) {
                for (StackTraceElement e : stack) {
                    b.append("  at ").append(e).append('\n');
                }
            }
        });
        return b.toString();
    }

    @AfterContainer
    static void closeCluster() {
        dropCluster();
        if (log != null) {
            log.stop();
            log = null;
        }
    }
}
