package dev.segstore.adapter.testkit;

import dev.segstore.adapter.ErrorCode;
import dev.segstore.adapter.StorageException;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.fail;

/** Waiting on adapter futures in tests: always with a deadline, and failures as {@link StorageException}s. */
public final class Futures {
    /** How long one adapter call may take in a test before the test fails. */
    public static final long CALL_TIMEOUT_SECONDS = 30;

    private Futures() {
    }

    /** The value of a future that must succeed. */
    public static <T> T await(CompletableFuture<T> future) {
        try {
            return future.get(CALL_TIMEOUT_SECONDS, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            throw new AssertionError("operation failed: " + e.getCause(), e.getCause());
        } catch (TimeoutException e) {
            throw new AssertionError("operation did not complete within " + CALL_TIMEOUT_SECONDS + " s", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted", e);
        }
    }

    /** The exception of a future that must fail with a {@link StorageException}. */
    public static StorageException failure(CompletableFuture<?> future) {
        try {
            Object value = future.get(CALL_TIMEOUT_SECONDS, TimeUnit.SECONDS);
            return fail("expected a failure, got " + value);
        } catch (ExecutionException e) {
            return assertInstanceOf(StorageException.class, e.getCause(), "failure type");
        } catch (TimeoutException e) {
            throw new AssertionError("operation did not complete within " + CALL_TIMEOUT_SECONDS + " s", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted", e);
        }
    }

    /** Asserts the future fails with {@code code}; returns the exception for checks of its message. */
    public static StorageException assertFails(ErrorCode code, CompletableFuture<?> future) {
        StorageException e = failure(future);
        assertEquals(code, e.code(), () -> "error code of: " + e.getMessage());
        return e;
    }
}
