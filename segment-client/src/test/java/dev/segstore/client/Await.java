package dev.segstore.client;

import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;

/** Waiting in tests for a condition, with a deadline (never a fixed sleep). */
final class Await {
    private Await() {
    }

    /** Returns once {@code condition} holds; fails "timed out waiting for {@code what}" after {@code timeoutMs}. */
    static void until(String what, long timeoutMs, BooleanSupplier condition) {
        long end = System.nanoTime() + timeoutMs * 1_000_000L;
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > end) {
                throw new AssertionError("timed out waiting for " + what);
            }
            LockSupport.parkNanos(1_000_000L); // poll, not spin: the test shares 2 cores with what it waits for
        }
    }
}
