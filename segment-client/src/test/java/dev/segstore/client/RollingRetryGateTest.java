package dev.segstore.client;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The pacing of retries refused by a roll: one probe, the others held until it reports, their deadline, or the hold limit. */
@Timeout(30)
class RollingRetryGateTest {
    private static final long LONG_HOLD_MS = 60_000;
    private final RetryScheduler scheduler = new RetryScheduler("gate-test");
    private final List<String> ran = new CopyOnWriteArrayList<>();

    @AfterEach
    void close() {
        scheduler.close();
    }

    private java.util.function.Function<Boolean, Runnable> task(String name, CountDownLatch done) {
        return asProbe -> () -> {
            ran.add(name + (asProbe ? " as probe" : ""));
            done.countDown();
        };
    }

    private static long inMs(long ms) {
        return System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(ms);
    }

    @Test
    void theOthersGoOnceTheProbeReportsNotAtTheirHoldLimit() throws Exception {
        RollingRetryGate gate = new RollingRetryGate(scheduler, LONG_HOLD_MS);
        CountDownLatch probe = new CountDownLatch(1);
        CountDownLatch others = new CountDownLatch(2);
        gate.retry(false, task("a", probe), 0, inMs(LONG_HOLD_MS));
        gate.retry(false, task("b", others), 0, inMs(LONG_HOLD_MS));
        gate.retry(false, task("c", others), 0, inMs(LONG_HOLD_MS));
        assertTrue(probe.await(10, TimeUnit.SECONDS), "the first refused operation retries, as the probe");
        assertEquals(List.of("a as probe"), ran, "the others wait for the probe");
        gate.probeDone();
        assertTrue(others.await(10, TimeUnit.SECONDS), "released by the probe's report, long before their hold limit: " + ran);
        assertTrue(ran.containsAll(List.of("b", "c")), ran.toString());
    }

    @Test
    void aProbeRefusedAgainStaysTheProbeAndANewOneComesOnlyAfterItReports() throws Exception {
        RollingRetryGate gate = new RollingRetryGate(scheduler, LONG_HOLD_MS);
        CountDownLatch first = new CountDownLatch(2);
        gate.retry(false, task("a", first), 0, inMs(LONG_HOLD_MS));
        gate.retry(true, task("a again", first), 0, inMs(LONG_HOLD_MS)); // the probe's retry was refused again
        assertTrue(first.await(10, TimeUnit.SECONDS), ran.toString());
        gate.probeDone();
        CountDownLatch next = new CountDownLatch(1);
        gate.retry(false, task("b", next), 0, inMs(LONG_HOLD_MS));
        assertTrue(next.await(10, TimeUnit.SECONDS), "with no probe, the next refused operation becomes one: " + ran);
        assertEquals(List.of("a as probe", "a again as probe", "b as probe"), ran);
    }

    @Test
    void aHeldOperationDoesNotWaitPastItsDeadline() throws Exception {
        RollingRetryGate gate = new RollingRetryGate(scheduler, LONG_HOLD_MS);
        CountDownLatch probe = new CountDownLatch(1);
        CountDownLatch held = new CountDownLatch(1);
        gate.retry(false, task("probe", probe), 0, inMs(LONG_HOLD_MS));
        assertTrue(probe.await(10, TimeUnit.SECONDS));
        gate.retry(false, task("held", held), 0, inMs(50)); // the probe never reports
        assertTrue(held.await(10, TimeUnit.SECONDS), "went at its deadline (50 ms), not at the hold limit: " + ran);
    }

    @Test
    void closingRunsTheHeldOperations() throws Exception {
        RollingRetryGate gate = new RollingRetryGate(scheduler, LONG_HOLD_MS);
        CountDownLatch held = new CountDownLatch(1);
        gate.retry(false, task("probe", new CountDownLatch(1)), LONG_HOLD_MS, inMs(LONG_HOLD_MS));
        gate.retry(false, task("held", held), 0, inMs(LONG_HOLD_MS));
        scheduler.close();
        assertTrue(held.await(10, TimeUnit.SECONDS), "a close runs what waits, so its operation can fail CLOSED: " + ran);
    }
}
