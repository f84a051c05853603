package dev.segstore.node.server;

import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.BooleanSupplier;

/**
 * At most one loop per replica (its fetch loop), and never none while one is wanted. A loop that finds itself
 * unwanted (the replica is no longer a follower) lets go and then looks again: a role change that happened in
 * between saw the loop still running and started none, so the ending loop carries on instead. Clearing a flag
 * without that second look left a follower that turned leader and back quickly with no fetch loop at all.
 *
 * <p>Thread-safe: claimed by the control thread (assignments), released by fetcher threads.
 */
final class LoopGuard {
    private final AtomicBoolean running = new AtomicBoolean();

    /** True if no loop ran and the caller now owns it (it must start one). */
    boolean claim() {
        return running.compareAndSet(false, true);
    }

    /**
     * The owning loop ends: lets go, then asks {@code wanted} again. True if the loop is wanted after all and
     * the caller owns it again (it must go on); false once it has let go for good.
     */
    boolean release(BooleanSupplier wanted) {
        running.set(false);
        return wanted.getAsBoolean() && claim();
    }

    boolean isRunning() {
        return running.get();
    }
}
