package dev.segstore.it.faults;

import dev.segstore.node.replica.InjectedBug;
import dev.segstore.protocol.meta.DurabilityMode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.LongFunction;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The fault harness can fail: with a safety bug put back (system property {@code segstore.testonly.bug}, read by
 * {@link InjectedBug} on the storage nodes and {@code InjectedMetaBug} on the meta-service), a schedule made to
 * meet the bug makes a run fail: the checker finds anomalies (acknowledged writes lost, payloads at other offsets
 * than acknowledged, reads that disagree), or replicas differ byte for byte, or the shard never heals. Each test
 * runs its schedule with other client choices (the seed printed, plus the attempt) until a run fails, and fails
 * if none of its attempts did. The same schedules pass with the bug off (the fault schedules property draws these
 * faults among the others; the bug-off check of each is in its commit message).
 */
class InjectedBugIsFoundTest {

    /**
     * {@code skip-epoch-truncation}: a follower keeps a deposed leader's unreplicated records instead of
     * truncating them by leader epoch. Three writers and a reader; the open segment's leader cut off from its
     * peers for 600 ms and fenced by the controller 250 ms in (it takes writes meanwhile that nobody else gets).
     */
    @Test
    @Timeout(value = 5, unit = TimeUnit.MINUTES)
    void aFollowerThatSkipsEpochTruncationFailsAFaultRun() throws Exception {
        harnessFinds("skip-epoch-truncation", 30, seed -> new Schedule(
                new Workload(3, 1, false, false, new Workload.Mix(50, 0, 0, 0, 0), seed),
                DurabilityMode.FSYNC, List.of(new FaultAction(FaultKind.ISOLATE_NODE, 50, 600, 0, 0, 5))));
    }

    /**
     * {@code keep-epoch-after-unclean-restart} (safety item 3): a storage node that registers again while the
     * meta-service still takes it for alive keeps its leaderships in the epochs it led before. Page-cache mode,
     * three writers and a reader; the open segment's leader crashes at 250 ms losing its page cache
     * ({@link FaultKind#CRASH_LOSE_UNSYNCED}) and starts again 100 ms later, well within the 600 ms session, so
     * the controller learns of the restart only from its registration. With the bug it leads on in the same
     * epoch from its shortened log; its followers, ahead of it, are answered OFFSET_OUT_OF_RANGE, truncate to its
     * end for that epoch and drop what was acknowledged (LOST_WRITE, then WRONG_OFFSET as the offsets are
     * written again). Without it the node is fenced inside the registration and a follower that holds
     * everything leads in a new epoch.
     */
    @Test
    @Timeout(value = 3, unit = TimeUnit.MINUTES)
    void aLeaderThatKeepsItsEpochAfterAnUncleanRestartFailsAFaultRun() throws Exception {
        harnessFinds("keep-epoch-after-unclean-restart", 20, seed -> new Schedule(
                new Workload(3, 1, false, false, new Workload.Mix(50, 0, 0, 0, 0), seed),
                DurabilityMode.PAGE_CACHE, List.of(new FaultAction(FaultKind.CRASH_LOSE_UNSYNCED, 250, 100, 0, 0, 5))));
    }

    /**
     * Runs {@code schedule.apply(seed + attempt)} with {@code bug} on, up to {@code attempts} times, until a run
     * fails; fails if none did. The seed is printed ({@code -Dfaults.seed} replays it).
     */
    private static void harnessFinds(String bug, int attempts, LongFunction<Schedule> schedule) throws Exception {
        long seed = Long.getLong("faults.seed", System.nanoTime());
        boolean control = Boolean.getBoolean("faults.bugOff");
        System.out.printf("InjectedBugIsFoundTest %s: seed %d (replay: -Dfaults.seed=%d)%s%n", bug, seed, seed,
                control ? "; control run: the bug OFF, every attempt must pass" : "");
        if (control) {
            runsWithoutTheBug(bug, seed, attempts, schedule);
            return;
        }
        System.setProperty(InjectedBug.PROPERTY, bug);
        CapturedLog log = CapturedLog.capture();
        RunResult failed = null;
        int attempt = 0;
        try (FaultCluster cluster = new FaultCluster()) {
            ScheduleRunner runner = new ScheduleRunner(cluster, log, Path.of("target", "fault-runs", bug + "-" + seed));
            for (; attempt < attempts && failed == null; attempt++) {
                RunResult r = runner.run(schedule.apply(seed + attempt), String.format("bug-%02d", attempt));
                if (!r.passed()) {
                    failed = r;
                }
            }
        } finally {
            System.clearProperty(InjectedBug.PROPERTY);
            log.stop();
        }
        assertNotNull(failed, "no run of " + attempts + " failed with " + bug + " on: the harness did not see it");
        System.out.printf("InjectedBugIsFoundTest %s: run %d of %d failed, as it must with the bug on:%n%s", bug, attempt, attempts,
                failed.failure());
    }

    /** {@code -Dfaults.bugOff=true}: the control, the same attempts with the bug off, each of which must pass. */
    private static void runsWithoutTheBug(String bug, long seed, int attempts, LongFunction<Schedule> schedule) throws Exception {
        CapturedLog log = CapturedLog.capture();
        try (FaultCluster cluster = new FaultCluster()) {
            ScheduleRunner runner = new ScheduleRunner(cluster, log, Path.of("target", "fault-runs", bug + "-off-" + seed));
            for (int attempt = 0; attempt < attempts; attempt++) {
                RunResult r = runner.run(schedule.apply(seed + attempt), String.format("off-%02d", attempt));
                assertTrue(r.passed(), () -> "with " + bug + " OFF:\n" + r.failure());
            }
        } finally {
            log.stop();
        }
        System.out.printf("InjectedBugIsFoundTest %s: all %d runs passed with the bug off%n", bug, attempts);
    }
}
