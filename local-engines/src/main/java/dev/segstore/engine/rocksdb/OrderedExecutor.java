package dev.segstore.engine.rocksdb;

import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A fixed set of single-thread executors; work for one key always runs on the same thread, in the order
 * it was submitted. Gives each shard one owner thread, so shard state needs no lock and a shard's
 * operations apply in call order (the idea of BookKeeper's OrderedExecutor).
 */
final class OrderedExecutor {
    private final ExecutorService[] threads;

    OrderedExecutor(String name, int threadCount) {
        threads = new ExecutorService[threadCount];
        AtomicInteger n = new AtomicInteger();
        for (int i = 0; i < threadCount; i++) {
            threads[i] = Executors.newSingleThreadExecutor(r -> {
                Thread t = new Thread(r, name + "-" + n.getAndIncrement());
                t.setDaemon(true);
                return t;
            });
        }
    }

    /**
     * Runs {@code work} on the key's thread.
     *
     * @throws RejectedExecutionException after {@link #shutdown()}
     */
    void execute(String key, Runnable work) {
        threads[Math.floorMod(key.hashCode(), threads.length)].execute(work);
    }

    /** Stops taking work and waits for work already taken; false if it did not finish in time. */
    boolean shutdown(long timeout, TimeUnit unit) throws InterruptedException {
        for (ExecutorService t : threads) {
            t.shutdown();
        }
        long deadline = System.nanoTime() + unit.toNanos(timeout);
        boolean done = true;
        for (ExecutorService t : threads) {
            done &= t.awaitTermination(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
        }
        return done;
    }
}
