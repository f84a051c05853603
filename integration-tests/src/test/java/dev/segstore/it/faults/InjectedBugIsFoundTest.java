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
    /** Segments that never roll in a run: the roles of a schedule stay on the same nodes throughout. */
    static final long NO_ROLL = 64L << 20;

    /**
     * {@code skip-epoch-truncation}: a follower keeps a deposed leader's unreplicated records instead of
     * truncating them by leader epoch. Three writers and a reader; the open segment's leader cut off from its
     * peers for 600 ms and fenced by the controller 250 ms in (it takes writes meanwhile that nobody else gets).
     */
    @Test
    @Timeout(value = 5, unit = TimeUnit.MINUTES)
    void aFollowerThatSkipsEpochTruncationFailsAFaultRun() throws Exception {
        harnessFinds("skip-epoch-truncation", Integer.getInteger("faults.attempts", 30), ScheduleRunner.SEGMENT_BYTES, seed -> new Schedule(
                new Workload(3, 1, false, false, new Workload.Mix(50, 0, 0, 0, 0), seed),
                DurabilityMode.FSYNC, List.of(new FaultAction(FaultKind.ISOLATE_NODE, 50, 600, 0, 0, 5))));
    }

    /**
     * {@code keep-epoch-after-unclean-restart} (safety item 3): a storage node that registers again while the
     * meta-service still takes it for alive keeps its leaderships in the epochs it led before. Page-cache mode,
     * three writers and a reader, a segment that does not roll; the open segment's leader crashes at 700 ms
     * losing its page cache ({@link FaultKind#CRASH_LOSE_UNSYNCED}: the first background force comes 1 s after
     * the first write) and starts again at once, so that it registers within the 600 ms session (on a loaded
     * machine a start can take longer, and that attempt passes), and the controller learns of the restart only
     * from its registration. With the bug it leads on in the same
     * epoch from its shortened log; its followers, ahead of it, are answered OFFSET_OUT_OF_RANGE, truncate to its
     * end for that epoch and drop what was acknowledged (LOST_WRITE, then WRONG_OFFSET as the offsets are
     * written again). Without it the node is fenced inside the registration and a follower that holds
     * everything leads in a new epoch.
     */
    @Test
    @Timeout(value = 3, unit = TimeUnit.MINUTES)
    void aLeaderThatKeepsItsEpochAfterAnUncleanRestartFailsAFaultRun() throws Exception {
        harnessFinds("keep-epoch-after-unclean-restart", Integer.getInteger("faults.attempts", 20), NO_ROLL, seed -> new Schedule(
                new Workload(3, 1, false, false, new Workload.Mix(50, 0, 0, 0, 0), seed),
                DurabilityMode.PAGE_CACHE, List.of(new FaultAction(FaultKind.CRASH_LOSE_UNSYNCED, 700, 20, 0, 0, 5))));
    }

    /**
     * {@code forget-isr-expansion} (safety item 1): a leader whose ISR proposal fails or loses its answer drops it
     * and computes the high watermark over its old ISR alone, though the controller may have committed it. Fsync
     * mode, three writers. The nodes go down as machines crash (CRASH_LOSE_UNSYNCED: in fsync mode only unforced,
     * unacknowledged bytes are lost), so the controller fences them at the session timeout, as this schedule needs:
     * a process kill is found at once from its refused port (Controller.connectionClosed), and with that the
     * schedule met the bug in 0 of 30 runs. Follower 2 is killed at 0 ms for 1.5 s (the leader drops it from the ISR: {leader,
     * follower 1}); from 1 s on the meta-service's answers to the leader are lost, so the expansion it proposes
     * once follower 2 has caught up commits but the leader never hears of it; from 2.5 s follower 2 is cut off
     * from its peers (it stops fetching) until 3.7 s; at 3.5 s the leader and follower 1 are killed for 1.5 s. With the bug
     * the leader acknowledged writes follower 1 held and follower 2 did not, and the controller, whose ISR has
     * follower 2, makes it the leader once the other two are fenced: LOST_WRITE. Without it the leader counts
     * follower 2 until it learns the outcome, so no write is acknowledged after follower 2 stopped fetching.
     */
    @Test
    @Timeout(value = 3, unit = TimeUnit.MINUTES)
    void aLeaderThatForgetsAnIsrExpansionFailsAFaultRun() throws Exception {
        harnessFinds("forget-isr-expansion", Integer.getInteger("faults.attempts", 10), NO_ROLL, seed -> new Schedule(
                new Workload(3, 0, false, false, new Workload.Mix(50, 0, 0, 0, 0), seed),
                DurabilityMode.FSYNC, List.of(
                new FaultAction(FaultKind.CRASH_LOSE_UNSYNCED, 0, 1500, 2, 0, 5),
                new FaultAction(FaultKind.META_ANSWERS_LOST, 1000, 2700, 0, 0, 5),
                new FaultAction(FaultKind.PARTITION, 2500, 1200, 2, 0, 5),
                new FaultAction(FaultKind.CRASH_LOSE_UNSYNCED, 3500, 1500, 0, 0, 5),
                new FaultAction(FaultKind.CRASH_LOSE_UNSYNCED, 3500, 1500, 1, 0, 5))));
    }

    /**
     * Runs {@code schedule.apply(seed + attempt)} on shards of {@code segmentBytes} segments with {@code bug} on, up to {@code attempts} times, until a run
     * fails; fails if none did. The seed is printed ({@code -Dfaults.seed} replays it).
     */
    private static void harnessFinds(String bug, int attempts, long segmentBytes, LongFunction<Schedule> schedule) throws Exception {
        long seed = Long.getLong("faults.seed", System.nanoTime());
        boolean control = Boolean.getBoolean("faults.bugOff");
        System.out.printf("InjectedBugIsFoundTest %s: seed %d (replay: -Dfaults.seed=%d)%s%n", bug, seed, seed,
                control ? "; control run: the bug OFF, every attempt must pass" : "");
        if (control) {
            runsWithoutTheBug(bug, seed, attempts, segmentBytes, schedule);
            return;
        }
        System.setProperty(InjectedBug.PROPERTY, bug);
        CapturedLog log = CapturedLog.capture();
        RunResult failed = null;
        int attempt = 0;
        try (FaultCluster cluster = new FaultCluster()) {
            ScheduleRunner runner = new ScheduleRunner(cluster, log, Path.of("target", "fault-runs", bug + "-" + seed), segmentBytes);
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
    private static void runsWithoutTheBug(String bug, long seed, int attempts, long segmentBytes, LongFunction<Schedule> schedule)
            throws Exception {
        CapturedLog log = CapturedLog.capture();
        try (FaultCluster cluster = new FaultCluster()) {
            ScheduleRunner runner = new ScheduleRunner(cluster, log, Path.of("target", "fault-runs", bug + "-off-" + seed), segmentBytes);
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
