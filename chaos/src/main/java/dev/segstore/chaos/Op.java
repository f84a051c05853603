package dev.segstore.chaos;

/**
 * An operation of a history: its invocation paired with its completion.
 *
 * @param result        the answer if {@link Outcome#OK}, else null
 * @param error         the error if {@link Outcome#FAIL} or {@link Outcome#INFO}, else null
 * @param completeNanos when the completion was recorded; {@link #NEVER} for an operation the history ended
 *                      before (it counts as {@link Outcome#INFO} with error {@value #PENDING})
 */
public record Op(long id, String process, Invocation invocation, long invokeNanos, Outcome outcome,
                 Result result, String error, long completeNanos) {
    /** The completion time of an operation that never completed. */
    public static final long NEVER = Long.MAX_VALUE;
    /** The error of an operation that never completed. */
    public static final String PENDING = "PENDING";

    public OpType type() {
        return invocation.type();
    }

    public String shard() {
        return invocation.shard();
    }

    public boolean isOk() {
        return outcome == Outcome.OK;
    }

    /** Whether the operation may have taken effect: it completed ok or its outcome is unknown. */
    public boolean mayHaveApplied() {
        return outcome != Outcome.FAIL;
    }

    /** Latency in nanoseconds, or -1 if it never completed. */
    public long latencyNanos() {
        return completeNanos == NEVER ? -1 : completeNanos - invokeNanos;
    }
}
