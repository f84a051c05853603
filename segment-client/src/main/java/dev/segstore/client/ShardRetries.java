package dev.segstore.client;

import dev.segstore.adapter.ErrorCode;
import dev.segstore.adapter.StorageException;
import dev.segstore.protocol.meta.ShardRoute;
import dev.segstore.protocol.rpc.RpcException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.Function;

import static dev.segstore.client.SegmentStorageAdapter.storageError;
import static dev.segstore.client.SegmentStorageAdapter.unwrap;

/**
 * The segment engine's retries (docs/architecture.md, "The segment engine"): runs an operation's attempt against the
 * shard's cached route ({@link RouteCache}); on a retriable error drops the route and tries again with a fresh one,
 * after a growing pause, after a short one when a segment roll refused the attempt, or through the shard's
 * {@link RollingRetryGate}. A refusal that names the next segment keeps the route, takes the segment into it
 * ({@link RouteCache#adoptNext}) and retries at once; UNAVAILABLE and TIMEOUT also forget the nodes' addresses; a
 * SHARD_NOT_FOUND from a node after the route was read is retried with a fresh route (the shard was deleted: final
 * only if the meta-service says its name is gone too, else the operation goes on in the new shard of that name). It
 * stops at the request deadline, or once the adapter is closed, and then completes the operation's tracked result.
 * Retries wait on the adapter's {@link RetryScheduler}, and results are tracked in its {@link InFlightOperations}: the
 * ones its close runs and waits for. Its log lines (the retries, at DEBUG) are under this class's name. Thread-safe.
 */
final class ShardRetries {
    private static final Logger LOG = LoggerFactory.getLogger(ShardRetries.class);

    /**
     * How many refusals that come from a segment roll (rpc.proto, {@code Error.rolling}) or a moving leadership
     * ({@link #leadershipMoving}) an operation retries after {@link #ROLLING_RETRY_PAUSE_MS} rather than after the
     * growing pause; after that many (a roll takes tens of ms, so something else is wrong) they count as other
     * retriable failures.
     */
    static final int MAX_ROLLING_RETRIES = 40;
    /** The pause before retrying a refusal that comes from a segment roll (plus up to as much again of jitter). */
    static final long ROLLING_RETRY_PAUSE_MS = 5;
    /** How long an operation refused by a roll waits for the shard's probe at most ({@link RollingRetryGate}). */
    static final long ROLLING_RETRY_MAX_HOLD_MS = 100;

    /** Per shard name, the pacing of retries refused by a roll: one probe, the others wait for it. */
    private final Map<String, RollingRetryGate> rollingRetries = new ConcurrentHashMap<>();

    private final RouteCache routes;
    private final RetryScheduler retries;
    private final InFlightOperations operations;
    private final long requestTimeoutMs;
    /** Whether the adapter is closed: its closed flag, set before its close runs the retries waiting. */
    private final BooleanSupplier closed;
    /** Forgets the storage nodes' addresses: the next call asks the meta-service for them again. */
    private final Runnable forgetAddresses;

    ShardRetries(RouteCache routes, RetryScheduler retries, InFlightOperations operations, long requestTimeoutMs,
                 BooleanSupplier closed, Runnable forgetAddresses) {
        this.routes = routes;
        this.retries = retries;
        this.operations = operations;
        this.requestTimeoutMs = requestTimeoutMs;
        this.closed = closed;
        this.forgetAddresses = forgetAddresses;
    }

    /** As below, for operation {@code what} (named in its error if the adapter closes first: CLOSED). */
    <T> CompletableFuture<T> withRoute(String what, String shard, Function<ShardRoute, CompletableFuture<T>> attempt) {
        return withRoute(shard, attempt, last -> closedBefore(what + " on shard '" + shard + "'", last));
    }

    /**
     * Runs {@code attempt} against the shard's route, retrying retriable failures with a fresh route until the
     * request deadline. Every attempt of a write sends the same producer id and sequence. Once the adapter is
     * closed nothing is retried: the operation fails with {@code closing} (given its last error, or null), as it
     * does if it is still pending when the close grace ends.
     */
    <T> CompletableFuture<T> withRoute(String shard, Function<ShardRoute, CompletableFuture<T>> attempt,
                                       Function<StorageException, StorageException> closing) {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(requestTimeoutMs);
        CompletableFuture<T> result = operations.track(new CompletableFuture<>(), () -> closing.apply(null));
        attempt(shard, attempt, closing, deadline, 0, 0, false, result);
        return result;
    }

    /** The error of an operation that the adapter's close ended ({@code last}: its last failure, or null). */
    static StorageException closedBefore(String what, StorageException last) {
        return new StorageException(ErrorCode.CLOSED, "the segment engine was closed before " + what + " completed"
                + (last == null ? "" : " (last error: " + last.getMessage() + ")"), last);
    }

    private RollingRetryGate rollingRetries(String shard) {
        return rollingRetries.computeIfAbsent(shard, s -> new RollingRetryGate(retries, ROLLING_RETRY_MAX_HOLD_MS));
    }

    /**
     * The pause before the next attempt: none for a shard found deleted on the first try (read the route again);
     * a short one for a refusal from a segment roll (the next segment takes writes within milliseconds: a growing
     * pause would stall writes after it, by up to 80-160 ms at each roll); else growing with {@code tries}, the
     * retries so far that were not for a roll (20, 40, 80, ... ms, at most 500), plus up to 10 ms of jitter.
     */
    static long retryPauseMs(boolean shardGone, boolean rolling, int tries, int rollingTries) {
        if (shardGone && tries + rollingTries == 0) {
            return 0;
        }
        if (rolling && rollingTries < MAX_ROLLING_RETRIES) {
            return ROLLING_RETRY_PAUSE_MS + ThreadLocalRandom.current().nextLong(ROLLING_RETRY_PAUSE_MS + 1);
        }
        return Math.min(500, 20L << Math.min(tries, 5)) + ThreadLocalRandom.current().nextLong(10);
    }

    private <T> void attempt(String shard, Function<ShardRoute, CompletableFuture<T>> attempt,
                             Function<StorageException, StorageException> closing, long deadline, int tries, int rollingTries,
                             boolean probe, CompletableFuture<T> result) {
        if (isClosed()) {
            result.completeExceptionally(closing.apply(null)); // a retry the close ran early: nothing is sent
            return;
        }
        CompletableFuture<T> f;
        boolean[] routed = {false};
        try {
            f = routes.getOrRead(shard).thenCompose(r -> {
                routed[0] = true;
                return attempt.apply(r);
            });
        } catch (RuntimeException e) {
            f = CompletableFuture.failedFuture(e);
        }
        f.whenComplete((v, e) -> {
            boolean stillProbing = false;
            try {
                stillProbing = retryOrComplete(shard, attempt, closing, deadline, tries, rollingTries, probe, result, v, e, routed[0]);
            } finally {
                if (probe && !stillProbing) {
                    rollingRetries(shard).probeDone(); // the shard serves again, or the probe ended: the others go
                }
            }
        });
    }

    /**
     * How an attempt came back: completes {@code result}, or schedules a retry. Returns whether the retry goes through
     * the shard's {@link RollingRetryGate} (then an operation that was the probe stays the probe).
     */
    private <T> boolean retryOrComplete(String shard, Function<ShardRoute, CompletableFuture<T>> attempt,
                                        Function<StorageException, StorageException> closing, long deadline, int tries,
                                        int rollingTries, boolean probe, CompletableFuture<T> result, T v, Throwable e,
                                        boolean routed) {
        if (e == null) {
            result.complete(v);
            return false;
        }
        StorageException se = storageError(e);
        // SHARD_NOT_FOUND after the route was read came from a storage node (or a fresher route): the shard the
        // route names was deleted. Final only if the meta-service says the name is gone too; if the name is a
        // new shard now, the operation goes on there (it was made after the delete).
        boolean shardGone = se.code() == ErrorCode.SHARD_NOT_FOUND && routed;
        if (isClosed() && (se.retriable() || shardGone || se.code() == ErrorCode.CLOSED)) {
            result.completeExceptionally(closing.apply(se)); // it would be retried, but the adapter is closed
            return false;
        }
        if (!se.retriable() && !shardGone) {
            result.completeExceptionally(se);
            return false;
        }
        if (unwrap(e) instanceof RpcException re && re.rolling() && re.nextSegment() != null && routes.adoptNext(shard, re.nextSegment())
                && rollingTries < MAX_ROLLING_RETRIES && System.nanoTime() < deadline) {
            // The leader that rolled named the next segment, from the controller's committed answer: write there now.
            LOG.debug("Shard {}: segment {} rolled; retrying in segment {} at once ({})", shard, re.nextSegment().getSequence() - 1,
                    re.nextSegment().getSequence(), se.getMessage());
            retries.schedule(() -> attempt(shard, attempt, closing, deadline, tries, rollingTries + 1, false, result), 0);
            return false;
        }
        routes.drop(shard); // the route may be stale: ask the meta-service again
        if (se.code() == ErrorCode.UNAVAILABLE || se.code() == ErrorCode.TIMEOUT) {
            forgetAddresses.run(); // a node may have come back on another address: ask again too
        }
        boolean rolling = unwrap(e) instanceof RpcException re && (re.rolling() || leadershipMoving(re)) && rollingTries < MAX_ROLLING_RETRIES;
        long pauseMs = retryPauseMs(shardGone, rolling, tries, rollingTries);
        if (System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(pauseMs) > deadline) {
            result.completeExceptionally(se);
            return false;
        }
        LOG.debug("{} on shard {}: retrying in {} ms ({})", se.code(), shard, pauseMs, se.getMessage());
        int nextTries = rolling ? tries : tries + 1;
        int nextRollingTries = rolling ? rollingTries + 1 : rollingTries;
        if (rolling && unwrap(e) instanceof RpcException re && re.rolling()) {
            // A refusal from a roll (not a moving leadership, which any segment's reads and deletes may meet too):
            // paced through the shard's probe.
            rollingRetries(shard).retry(probe, asProbe -> () -> attempt(shard, attempt, closing, deadline, nextTries, nextRollingTries,
                    asProbe, result), pauseMs, deadline);
            return true;
        }
        retries.schedule(() -> attempt(shard, attempt, closing, deadline, nextTries, nextRollingTries, false, result), pauseMs);
        return false;
    }

    /**
     * A NOT_LEADER from a node that names the segment's leader epoch it knows: the leadership is moving (a controlled
     * shutdown or a move hands it over within milliseconds). Either the node was deposed and the cached route is stale
     * (the route is read again), or the route names this node in an epoch it has not learnt yet. Retried as soon as a
     * refusal from a roll is, within the same budget: with the growing pause (20, 40, 80, ... ms) the few refusals of
     * a hand-over cost writes 300-600 ms (a rolling restart's storage-node restarts paused writes 545 ms).
     */
    private static boolean leadershipMoving(RpcException re) {
        return re.code() == ErrorCode.NOT_LEADER.code() && re.leaderEpoch() >= 0;
    }

    private boolean isClosed() {
        return closed.getAsBoolean();
    }
}
