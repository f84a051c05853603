package dev.segstore.log;

/**
 * The one exception type of the segment log. {@link Kind} says what went wrong in terms a caller can act on;
 * the storage node maps each kind to an error code of the adapter API at its edge.
 *
 * <p>Back-pressure is not an exception (see {@link AppendResult.Status#QUEUE_FULL}): exceptions are for bad
 * input, corrupt data, fatal I/O and misuse.
 */
public final class LogException extends RuntimeException {

    public enum Kind {
        /** A caller passed an argument that breaks a documented rule. */
        INVALID_ARGUMENT,
        /** A batch or record is larger than the configured limit. */
        RECORD_TOO_LARGE,
        /** The offset lies outside [logStartOffset, logEndOffset]. */
        OFFSET_OUT_OF_RANGE,
        /** A follower append would leave a gap or overlap what the log already holds. */
        OFFSET_MISMATCH,
        /** Bytes on disk (or handed in) fail a checksum or framing check. */
        CORRUPT_DATA,
        /** An I/O error took the data directory offline; nothing is retried silently. */
        STORAGE_ERROR,
        /** The log or its directory is closed. */
        CLOSED,
        /** The log is busy with an operation that excludes this one (for example a truncation). */
        ILLEGAL_STATE
    }

    private final Kind kind;

    public LogException(Kind kind, String message) {
        super(message);
        this.kind = kind;
    }

    public LogException(Kind kind, String message, Throwable cause) {
        super(message, cause);
        this.kind = kind;
    }

    public Kind kind() {
        return kind;
    }

    public static LogException corrupt(String message) {
        return new LogException(Kind.CORRUPT_DATA, message);
    }

    public static LogException invalid(String message) {
        return new LogException(Kind.INVALID_ARGUMENT, message);
    }

    @Override
    public String toString() {
        return "LogException[" + kind + "]: " + getMessage();
    }
}
