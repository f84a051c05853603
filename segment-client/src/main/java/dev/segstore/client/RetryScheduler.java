package dev.segstore.client;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * Runs retries after their pause, on one daemon thread. {@link #close()} does not drop the retries still waiting:
 * it runs each of them at once, on the closing thread, and runs any retry scheduled later at once too. A retry
 * must therefore check whether its owner is closed before it sends anything, and then complete its operation
 * with a closing error: so no operation is left waiting for a retry that never comes (before, a timer's
 * {@code shutdownNow()} dropped them and their futures never completed).
 *
 * <p>Thread-safe. Each retry runs at most once.
 */
final class RetryScheduler implements AutoCloseable {
    private final ScheduledExecutorService timer;
    private final Set<Retry> waiting = ConcurrentHashMap.newKeySet();
    private volatile boolean closed;

    RetryScheduler(String threadName) {
        timer = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, threadName);
            t.setDaemon(true);
            return t;
        });
    }

    /** Runs {@code retry} after {@code pauseMs}; at once, on this thread, once closed. */
    void schedule(Runnable retry, long pauseMs) {
        Retry r = new Retry(retry);
        waiting.add(r);
        if (closed) {
            r.runOnce(); // close() may have run its sweep before the add
            return;
        }
        try {
            timer.schedule(r::runOnce, pauseMs, TimeUnit.MILLISECONDS);
        } catch (RejectedExecutionException closing) {
            r.runOnce();
        }
    }

    /** Stops the timer and runs every retry still waiting for its pause, now. Idempotent. */
    @Override
    public void close() {
        closed = true;
        timer.shutdownNow();
        for (Retry r : waiting) {
            r.runOnce();
        }
    }

    private final class Retry {
        private final Runnable task;

        Retry(Runnable task) {
            this.task = task;
        }

        void runOnce() {
            if (waiting.remove(this)) {
                task.run();
            }
        }
    }
}
