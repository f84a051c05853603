package dev.segstore.adapter;

import java.util.HashMap;
import java.util.Map;

/**
 * The one error model of the store, shared by every engine and (later) by the wire protocol.
 *
 * <p>Each code has a number that never changes once released: numbers are written on the wire and in
 * logs, so a code may be added but never renumbered or reused. {@link #retriable()} says whether the same
 * request may succeed if sent again later (possibly to another node) without the caller changing it.
 * Number 0 is reserved for "no error" on the wire and is not a code.
 */
public enum ErrorCode {
    /** A number received from a newer peer that this version does not know. */
    UNKNOWN(-1, false),
    /** The shard does not exist (never created, or deleted). */
    SHARD_NOT_FOUND(1, false),
    /** {@code createShard} named a shard that already exists. */
    SHARD_EXISTS(2, false),
    /** An argument broke a documented rule; the message names the argument and the rule. */
    INVALID_ARGUMENT(3, false),
    /** A record is larger than {@link Limits#MAX_RECORD_BYTES}, or a batch larger than its limit. */
    RECORD_TOO_LARGE(4, false),
    /** An offset that names no record the shard ever held (at or above its log end offset). */
    OFFSET_OUT_OF_RANGE(5, false),
    /** The request reached a replica that does not lead the segment; refresh the route and retry. */
    NOT_LEADER(6, true),
    /** The request carried a leader epoch older than the replica's; refresh the route and retry. */
    FENCED_EPOCH(7, true),
    /** Fewer in-sync replicas than {@code minInSyncReplicas}: the write was not acknowledged. */
    NOT_ENOUGH_REPLICAS(8, true),
    /** The operation did not complete within its deadline; its outcome is unknown. */
    TIMEOUT(9, true),
    /** The engine or a node it needs cannot serve now (starting, electing, unreachable). */
    UNAVAILABLE(10, true),
    /** A queue is full; slow down and retry. Back-pressure, not a failure of the data. */
    OVERLOADED(11, true),
    /** Stored data failed its checksum or could not be decoded. Never retried silently. */
    CORRUPT_DATA(12, false),
    /** A disk or storage-library I/O error; the data directory is offline. */
    STORAGE_ERROR(13, false),
    /** The adapter or engine was closed. */
    CLOSED(14, false),
    /** A topic asked for a {@code storage_type} that no engine on the class path provides. */
    UNKNOWN_STORAGE_TYPE(15, false),
    /** A bug: an invariant was broken. The message says which. */
    INTERNAL(16, false),
    /**
     * A write may or may not have been stored, and sending it again could store it twice (an earlier attempt
     * went to a segment that retention has dropped since); or a delete was done, but whether by this call is
     * unknown (a retry after a lost answer found the record deleted already, so "already deleted", or a count,
     * would not be known). Not retried; the caller decides.
     */
    OUTCOME_UNKNOWN(17, false);

    private static final Map<Integer, ErrorCode> BY_CODE = new HashMap<>();

    static {
        for (ErrorCode c : values()) {
            if (BY_CODE.put(c.code, c) != null) {
                throw new ExceptionInInitializerError("duplicate error code number " + c.code);
            }
        }
    }

    private final int code;
    private final boolean retriable;

    ErrorCode(int code, boolean retriable) {
        this.code = code;
        this.retriable = retriable;
    }

    /** The stable number of this code. */
    public int code() {
        return code;
    }

    /** Whether sending the same request again later may succeed. */
    public boolean retriable() {
        return retriable;
    }

    /** The code with this number, or {@link #UNKNOWN} for a number this version does not know. */
    public static ErrorCode fromCode(int code) {
        return BY_CODE.getOrDefault(code, UNKNOWN);
    }
}
