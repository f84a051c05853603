package dev.segstore.node.server;

import java.util.ArrayDeque;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;
import java.util.function.Predicate;
import java.util.function.Supplier;

/**
 * Requests for a replica this node was told it is about to host (a roll's next segment: the meta leader's
 * {@code upcoming} answer, or the leader that rolled naming it in a fetch answer) that come before the node hosts
 * it. The writers that a roll refused are told the next segment by the leader that rolled as soon as it has the
 * controller's answer (ReplicaRequests' {@code refusedByRoll}), which is when this node learns of it too: without a
 * wait, their writes (and the followers' first fetches) often came a few milliseconds before the node took the
 * replica, were refused as "hosts no replica", and were retried after 5-10 ms with the route read again.
 *
 * <p>Such a request waits, at most {@link #MAX_WAIT_MS} (unless built with another limit), and then runs as any other (served, or refused as before).
 * The waits of a replica run in the order their requests came, on the shard's owner thread, before any request
 * that comes after them: a writer's batches reach the partition in the order it sent them, as they would have
 * without a wait. Waiting changes no answer, only when it is given.
 *
 * <p>Thread-safety: {@link #expect}, {@link #hosted} and {@link #close} are called from any thread; {@link #waitFor}
 * and the queue of each replica only on its shard's owner thread (the wait's end is a task queued there too, after
 * the wait: {@code CompletableFuture.delayedExecutor}, not a thread of the node that may be busy).
 */
final class ReplicaWaits {
    /** The longest a request waits for its replica. */
    static final long MAX_WAIT_MS = 100;
    /** How long a replica told of stays expected (a roll that committed elsewhere, a hint that was not taken). */
    static final long EXPECTED_FOR_MS = 10_000;

    private final ShardOwners owners;
    private final Predicate<Hosted.Key> isHosted;
    private final LongSupplier monotonicMs;
    private final long maxWaitMs;
    /** Replicas told of and not hosted yet, with the time they were told of. */
    private final Map<Hosted.Key, Long> expected = new ConcurrentHashMap<>();
    /** Per replica, the requests waiting for it (touched only on the shard's owner thread). */
    private final Map<Hosted.Key, ArrayDeque<Runnable>> waiting = new ConcurrentHashMap<>();

    /** @param isHosted whether the node hosts a replica now (an expected one that is hosted already is not waited for) */
    ReplicaWaits(ShardOwners owners, Predicate<Hosted.Key> isHosted, LongSupplier monotonicMs) {
        this(owners, isHosted, monotonicMs, MAX_WAIT_MS);
    }

    ReplicaWaits(ShardOwners owners, Predicate<Hosted.Key> isHosted, LongSupplier monotonicMs, long maxWaitMs) {
        this.owners = owners;
        this.isHosted = isHosted;
        this.monotonicMs = monotonicMs;
        this.maxWaitMs = maxWaitMs;
    }

    /**
     * This node was told it will host replica {@code key} soon. Not when it hosts it already: a hint that comes
     * after the replica was taken (checked again after the mark, as the replica may be taken meanwhile; then a
     * request may meet the replica before it took its role, as without this class).
     */
    void expect(Hosted.Key key) {
        if (isHosted.test(key)) {
            return;
        }
        long now = monotonicMs.getAsLong();
        expected.put(key, now);
        if (isHosted.test(key)) {
            expected.remove(key);
        }
        if (expected.size() > 64) {
            expected.values().removeIf(told -> now - told > EXPECTED_FOR_MS);
        }
    }

    /**
     * Replica {@code key} is hosted now, its role taken: the requests waiting for it run, in the order they came,
     * on its shard's owner thread (after any request already queued there, which may be waiting too).
     */
    void hosted(Hosted.Key key) {
        if (expected.remove(key) != null) {
            runOnOwner(key);
        }
    }

    /**
     * On the shard's owner thread, for a request naming replica {@code key}: null when it runs now (nothing waits for
     * the replica and it is not expected), else the answer of {@code request}, run once the replica is hosted or
     * after the longest wait, after the requests that came before it.
     */
    <T> CompletableFuture<T> waitFor(Hosted.Key key, Supplier<CompletableFuture<T>> request) {
        ArrayDeque<Runnable> queue = waiting.get(key);
        if (queue == null) {
            Long told = expected.get(key);
            if (told == null || monotonicMs.getAsLong() - told > EXPECTED_FOR_MS) {
                return null;
            }
            queue = new ArrayDeque<>();
            waiting.put(key, queue);
            // The wait's end, queued on the owner once it is over (a closing node's owners refuse it in the JDK's
            // timer thread, silently: close() has run the waiting requests before the owners stop).
            CompletableFuture.delayedExecutor(maxWaitMs, TimeUnit.MILLISECONDS, owners.of(key.shardId())).execute(() -> runNow(key));
        }
        CompletableFuture<T> answer = new CompletableFuture<>();
        queue.add(() -> {
            try {
                request.get().whenComplete((v, e) -> {
                    if (e != null) {
                        answer.completeExceptionally(e);
                    } else {
                        answer.complete(v);
                    }
                });
            } catch (RuntimeException e) {
                answer.completeExceptionally(e);
            }
        });
        return answer;
    }

    /** Runs the waiting requests of {@code key} on its shard's owner thread. */
    private void runOnOwner(Hosted.Key key) {
        try {
            owners.of(key.shardId()).execute(() -> runNow(key));
        } catch (RejectedExecutionException stopping) {
            // the node is stopping: the waiting calls end with their connections
        }
    }

    /** On the shard's owner thread: the waiting requests of {@code key} run, in the order they came. */
    private void runNow(Hosted.Key key) {
        ArrayDeque<Runnable> queue = waiting.remove(key);
        if (queue != null) {
            expected.remove(key); // hosted, or waited its time: later requests run at once
            queue.forEach(Runnable::run);
        }
    }

    /**
     * The node is closing and hosts nothing more: every waiting request runs now (on its owner thread), and is
     * answered as the node answers it then, instead of waiting out its limit.
     */
    void close() {
        expected.clear();
        for (Hosted.Key key : java.util.List.copyOf(waiting.keySet())) {
            runOnOwner(key);
        }
    }
}
