package dev.segstore.it.faults;

import dev.segstore.node.replica.InjectedBug;
import dev.segstore.protocol.meta.DurabilityMode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertNotNull;

/**
 * The fault harness can fail: with a safety bug put back ({@link InjectedBug#SKIP_EPOCH_TRUNCATION}, a follower
 * that keeps a deposed leader's unreplicated records instead of truncating them by leader epoch), a schedule that
 * deposes a leader holding such records makes a run fail: the checker finds anomalies (payloads at other
 * offsets than acknowledged, reads that disagree), or sealed or open replicas differ byte for byte, or the
 * stuck follower never rejoins the ISR. The schedule: three writers and a reader, the open segment's leader
 * cut off from its peers for 600 ms and fenced by the controller 250 ms in (it takes writes meanwhile that
 * nobody else gets). Each attempt draws other client choices; the test stops at the first failed run, and
 * fails if none of {@value #ATTEMPTS} did. The same schedules pass with the bug off (the fault schedules
 * property runs this fault among the others).
 */
class InjectedBugIsFoundTest {
    static final int ATTEMPTS = 30;

    @Test
    @Timeout(value = 5, unit = TimeUnit.MINUTES)
    void aFollowerThatSkipsEpochTruncationFailsAFaultRun() throws Exception {
        long seed = Long.getLong("faults.seed", System.nanoTime());
        System.out.printf("InjectedBugIsFoundTest: seed %d (replay: -Dfaults.seed=%d)%n", seed, seed);
        System.setProperty(InjectedBug.PROPERTY, "skip-epoch-truncation");
        CapturedLog log = CapturedLog.capture();
        RunResult failed = null;
        int attempts = 0;
        try (FaultCluster cluster = new FaultCluster()) {
            ScheduleRunner runner = new ScheduleRunner(cluster, log, Path.of("target", "fault-runs", "injected-bug-" + seed));
            for (; attempts < ATTEMPTS && failed == null; attempts++) {
                Schedule schedule = new Schedule(new Workload(3, 1, false, false, new Workload.Mix(50, 0, 0, 0, 0), seed + attempts),
                        DurabilityMode.FSYNC, List.of(new FaultAction(FaultKind.ISOLATE_NODE, 50, 600, 0, 0, 5)));
                RunResult r = runner.run(schedule, String.format("bug-%02d", attempts));
                if (!r.passed()) {
                    failed = r;
                }
            }
        } finally {
            System.clearProperty(InjectedBug.PROPERTY);
            log.stop();
        }
        assertNotNull(failed, "no run of " + ATTEMPTS + " failed with the bug on: the harness did not see it");
        System.out.printf("InjectedBugIsFoundTest: run %d of %d failed, as it must with the bug on:%n%s", attempts, ATTEMPTS, failed.failure());
    }
}
