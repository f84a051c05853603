package dev.segstore.adapter;

import java.util.Objects;

/**
 * The one exception type that {@link StorageAdapter} futures complete with. It carries a stable
 * {@link ErrorCode}; callers branch on {@link #code()}, never on the message.
 */
public class StorageException extends RuntimeException {
    private final ErrorCode code;

    public StorageException(ErrorCode code, String message) {
        super(message);
        this.code = Objects.requireNonNull(code, "code");
    }

    public StorageException(ErrorCode code, String message, Throwable cause) {
        super(message, cause);
        this.code = Objects.requireNonNull(code, "code");
    }

    public ErrorCode code() {
        return code;
    }

    public boolean retriable() {
        return code.retriable();
    }

    public static StorageException invalidArgument(String argument, String rule, Object value) {
        return new StorageException(ErrorCode.INVALID_ARGUMENT,
                "invalid " + argument + " " + Validation.describe(value) + ": " + rule);
    }

    public static StorageException shardNotFound(String shard) {
        return new StorageException(ErrorCode.SHARD_NOT_FOUND, "shard '" + shard + "' does not exist");
    }

    public static StorageException shardExists(String shard) {
        return new StorageException(ErrorCode.SHARD_EXISTS, "shard '" + shard + "' already exists");
    }

    public static StorageException offsetOutOfRange(String shard, long offset, long logEndOffset) {
        return new StorageException(ErrorCode.OFFSET_OUT_OF_RANGE, "offset " + offset + " of shard '" + shard
                + "' was never written; log end offset is " + logEndOffset);
    }

    @Override
    public String toString() {
        return "StorageException[" + code + "(" + code.code() + ")]: " + getMessage();
    }
}
