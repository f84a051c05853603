package dev.segstore.client;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Function;

/**
 * Paces the retries of one shard's operations that a segment roll refused ({@code Error.rolling}): one operation, the
 * probe, retries every few milliseconds; the others wait until the probe's retry comes back with anything but another
 * such refusal, then all go at once. Before, each of a writer's calls in flight retried on its own every 5-10 ms: with
 * 64 calls in flight a roll drew thousands of refused requests a second, on the cores the roll itself needs (with 8
 * calls in flight a roll took 49-74 ms, with 64 96-220 ms; docs/benchmarks.md, "Rolls without a stall"). A waiting
 * operation goes on its own after {@link #maxHoldMs} at most, and never past its deadline, so a probe that is slow to
 * come back holds nobody for long. What is retried, and how, does not change: only when.
 */
final class RollingRetryGate {
    private final RetryScheduler scheduler;
    private final long maxHoldMs;
    private boolean probing;
    private List<Runnable> held = new ArrayList<>();

    RollingRetryGate(RetryScheduler scheduler, long maxHoldMs) {
        this.scheduler = scheduler;
        this.maxHoldMs = maxHoldMs;
    }

    /**
     * An operation was refused by a roll ({@code wasProbe}: it was the probe) and retries {@code retryAs(probe)}. The
     * probe retries after {@code pauseMs}, and must report how its retry came back ({@link #probeDone}); any other
     * waits for the probe: {@link #maxHoldMs} at most, and not past {@code deadlineNanos} ({@link System#nanoTime()}).
     */
    void retry(boolean wasProbe, Function<Boolean, Runnable> retryAs, long pauseMs, long deadlineNanos) {
        boolean probe;
        Runnable once = null;
        synchronized (this) {
            probe = wasProbe || !probing;
            if (probe) {
                probing = true;
            } else {
                Runnable retry = retryAs.apply(false);
                AtomicBoolean ran = new AtomicBoolean();
                once = () -> {
                    if (ran.compareAndSet(false, true)) {
                        retry.run();
                    }
                };
                held.add(once);
            }
        }
        // Scheduled outside the lock: a closed scheduler runs the task at once, on this thread.
        if (probe) {
            scheduler.schedule(retryAs.apply(true), pauseMs);
        } else {
            long leftMs = TimeUnit.NANOSECONDS.toMillis(deadlineNanos - System.nanoTime());
            scheduler.schedule(once, Math.max(0, Math.min(maxHoldMs, leftMs)));
        }
    }

    /** The probe's retry came back with anything but a refusal from a roll (or the probe gave up): the others go now. */
    void probeDone() {
        List<Runnable> released;
        synchronized (this) {
            probing = false;
            released = held;
            held = new ArrayList<>();
        }
        released.forEach(r -> scheduler.schedule(r, 0));
    }
}
