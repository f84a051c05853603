package dev.segstore.client;

import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Supplier;

/**
 * The operations of a client not completed yet, each with the error it completes with if the client closes
 * first. Closing waits a bounded grace for them ({@link #awaitAll}), then completes those left
 * ({@link #completeAll}): no operation's future outlives its client's close.
 *
 * <p>Thread-safe.
 */
final class InFlightOperations {
    private final Map<CompletableFuture<?>, Supplier<? extends RuntimeException>> pending = new ConcurrentHashMap<>();

    /**
     * Tracks {@code operation} until it completes; {@code closingError} is what it fails with if it is still
     * pending when the client closes (asked then, so it can say how far the operation got). Returns it.
     */
    <T> CompletableFuture<T> track(CompletableFuture<T> operation, Supplier<? extends RuntimeException> closingError) {
        pending.put(operation, closingError);
        operation.whenComplete((v, e) -> pending.remove(operation));
        return operation;
    }

    /** Waits until every operation tracked now has completed, or {@code timeoutMs} passed. */
    void awaitAll(long timeoutMs) {
        CompletableFuture<?>[] now = pending.keySet().toArray(CompletableFuture[]::new);
        try {
            CompletableFuture.allOf(now).get(timeoutMs, TimeUnit.MILLISECONDS);
        } catch (ExecutionException | TimeoutException e) {
            // failed operations count as completed (allOf waits for all); a timeout ends the grace
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Completes every operation still pending with its closing error. */
    void completeAll() {
        pending.forEach((operation, closingError) -> operation.completeExceptionally(closingError.get()));
    }
}
