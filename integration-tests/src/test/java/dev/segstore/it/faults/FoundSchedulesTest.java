package dev.segstore.it.faults;

import dev.segstore.protocol.meta.DurabilityMode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.LongFunction;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Schedules that campaigns found failing, replayed after their fix: each runs a few times with other client
 * choices (the seed printed, plus the attempt; {@code -Dfaults.seed} replays, {@code -Dfaults.attempts} sets how
 * many), and every attempt must pass. Each test names the campaign run it comes from; the fix's own unit test,
 * which fails deterministically without it, is named there too.
 */
class FoundSchedulesTest {

    /**
     * Campaign 6747654017441015232, run 0044 (page-cache shard): follower 2 killed at 159 ms for 46 ms (a process
     * kill: its page cache keeps everything), the leader crashed losing its page cache at 160 ms for 582 ms,
     * follower 1 crashed losing its page cache at 190 ms for 171 ms. Before the fix node 2's registration was taken
     * for a possible loss and dropped it from the ISR, the crashed leader came back as the only ISR member and led
     * from its shortened log: 15 LOST_WRITE, 10 OFFSET_REUSED, 3 WRITER_ORDER. Now a node registers with its page
     * cache's id (the kernel's boot id; simulated per node in-JVM, new at each crash), and a restart on the same
     * boot keeps its ISR place ({@code MetaStateTest.aPageCacheNodeRestartedOnTheSameBootKeepsItsIsrPlaceAndTakes
     * OverFromOnesThatLostTheirs}).
     */
    @Test
    @Timeout(value = 4, unit = TimeUnit.MINUTES)
    void aFollowerKilledWhileTheOthersLoseTheirPageCacheKeepsTheAcknowledgedWrites() throws Exception {
        passes("page-cache-kept-0044", Integer.getInteger("faults.attempts", 4), seed -> new Schedule(
                new Workload(3, 0, true, true, new Workload.Mix(31, 0, 0, 11, 43), seed),
                DurabilityMode.PAGE_CACHE, List.of(
                new FaultAction(FaultKind.KILL_NODE, 159, 46, 2, 0, 5),
                new FaultAction(FaultKind.CRASH_LOSE_UNSYNCED, 160, 582, 0, 0, 5),
                new FaultAction(FaultKind.CRASH_LOSE_UNSYNCED, 190, 171, 1, 0, 5))));
    }

    /** Runs {@code schedule.apply(seed + attempt)} {@code attempts} times; each run must pass. */
    private static void passes(String name, int attempts, LongFunction<Schedule> schedule) throws Exception {
        long seed = Long.getLong("faults.seed", 246988L);
        System.out.printf("FoundSchedulesTest %s: seed %d (replay: -Dfaults.seed=%d)%n", name, seed, seed);
        CapturedLog log = CapturedLog.capture();
        try (FaultCluster cluster = new FaultCluster()) {
            ScheduleRunner runner = new ScheduleRunner(cluster, log, Path.of("target", "fault-runs", name + "-" + seed),
                    ScheduleRunner.SEGMENT_BYTES);
            for (int attempt = 0; attempt < attempts; attempt++) {
                long workloadSeed = seed + attempt;
                RunResult r = runner.run(schedule.apply(workloadSeed), String.format("%s-%02d", name, attempt));
                assertTrue(r.passed(), () -> name + ", workload seed " + workloadSeed + ":\n" + r.failure());
            }
        } finally {
            log.stop();
        }
    }
}
