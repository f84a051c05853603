package dev.segstore.node.replica;

import dev.segstore.adapter.ErrorCode;

/**
 * A refused replica operation with its adapter error code: NOT_LEADER (with the leader's node id and epoch
 * when known), FENCED_EPOCH, NOT_ENOUGH_REPLICAS, OFFSET_OUT_OF_RANGE, INVALID_ARGUMENT, ...
 */
public final class ReplicaException extends RuntimeException {
    private final ErrorCode code;
    private final int leaderHint;
    private final int leaderEpoch;
    private final boolean notApplied;
    private final boolean rolling;

    public ReplicaException(ErrorCode code, String message, int leaderHint, int leaderEpoch) {
        this(code, message, leaderHint, leaderEpoch, false, false);
    }

    private ReplicaException(ErrorCode code, String message, int leaderHint, int leaderEpoch, boolean notApplied, boolean rolling) {
        super(message);
        this.code = code;
        this.leaderHint = leaderHint;
        this.leaderEpoch = leaderEpoch;
        this.notApplied = notApplied;
        this.rolling = rolling;
    }

    /** The same refusal, marked as made before the request took effect (a client may resend it as new). */
    public ReplicaException notApplied() {
        return new ReplicaException(code, getMessage(), leaderHint, leaderEpoch, true, rolling);
    }

    /**
     * The same refusal, marked as coming from a segment roll (the segment is full and being sealed, or sealed):
     * the write belongs in the next segment, and the client retries it soon (rpc.proto, Error.rolling).
     */
    public ReplicaException rolling() {
        return new ReplicaException(code, getMessage(), leaderHint, leaderEpoch, notApplied, true);
    }

    public boolean isRolling() {
        return rolling;
    }

    public boolean isNotApplied() {
        return notApplied;
    }

    public ReplicaException(ErrorCode code, String message) {
        this(code, message, -1, -1);
    }

    public ErrorCode code() {
        return code;
    }

    public int leaderHint() {
        return leaderHint;
    }

    public int leaderEpoch() {
        return leaderEpoch;
    }

    @Override
    public String toString() {
        return "ReplicaException[" + code + "]: " + getMessage();
    }

    /** The error code of a failure if it is (or wraps) a ReplicaException, else null (nothing known of it). */
    public static ErrorCode codeOf(Throwable failure) {
        Throwable e = failure;
        while (e != null && !(e instanceof ReplicaException)) {
            e = e.getCause();
        }
        return e == null ? null : ((ReplicaException) e).code();
    }
}
