package dev.segstore.protocol.rpc;

/**
 * A failed call, as the wire carries it: a stable error code (the numbers of the adapter API's
 * {@code ErrorCode}), a message, and for NOT_LEADER a hint where the leader is and its epoch.
 */
public final class RpcException extends RuntimeException {
    public static final int UNKNOWN = -1;
    public static final int INVALID_ARGUMENT = 3;
    public static final int NOT_LEADER = 6;
    public static final int TIMEOUT = 9;
    public static final int UNAVAILABLE = 10;
    public static final int INTERNAL = 16;

    private final int code;
    private final String leaderHint;
    private final boolean notApplied;
    private final int leaderEpoch;
    private final boolean rolling;
    /** For a write refused by a roll: the next segment the committed roll made, or null (rpc.proto's Error.next_segment). */
    private final dev.segstore.protocol.meta.Segment nextSegment;

    public RpcException(int code, String message, String leaderHint) {
        this(code, message, leaderHint, -1, false);
    }

    /** @param notApplied the request was refused before it took effect (see rpc.proto's Error) */
    public RpcException(int code, String message, String leaderHint, boolean notApplied) {
        this(code, message, leaderHint, -1, notApplied);
    }

    /**
     * @param leaderEpoch the leader epoch the answering node knows, or -1
     * @param notApplied  the request was refused before it took effect (see rpc.proto's Error)
     */
    public RpcException(int code, String message, String leaderHint, int leaderEpoch, boolean notApplied) {
        this(code, message, leaderHint, leaderEpoch, notApplied, false);
    }

    /**
     * @param rolling the refusal comes from a segment roll: the client retries soon (see rpc.proto's Error)
     */
    public RpcException(int code, String message, String leaderHint, int leaderEpoch, boolean notApplied, boolean rolling) {
        this(code, message, leaderHint, leaderEpoch, notApplied, rolling, null);
    }

    /** @param nextSegment for a write refused by a roll: the next segment the committed roll made, or null */
    public RpcException(int code, String message, String leaderHint, int leaderEpoch, boolean notApplied, boolean rolling,
                        dev.segstore.protocol.meta.Segment nextSegment) {
        super(message);
        this.nextSegment = nextSegment;
        this.rolling = rolling;
        this.code = code;
        this.leaderHint = leaderHint == null ? "" : leaderHint;
        this.leaderEpoch = leaderEpoch;
        this.notApplied = notApplied;
    }

    /** For NOT_LEADER and FENCED_EPOCH answers: the leader epoch the answering node knows, or -1. */
    public int leaderEpoch() {
        return leaderEpoch;
    }

    /** True when the server says the request changed nothing: it may be sent again as a new request. */
    public boolean notApplied() {
        return notApplied;
    }

    /** True when a NOT_LEADER refusal comes from a segment roll (rpc.proto's Error.rolling): retry soon. */
    public boolean rolling() {
        return rolling;
    }

    /**
     * For a write refused by a roll: the segment after the one the write named, as the committed roll made it (its
     * start offset is where the named one was sealed), or null when the answering node did not know it.
     */
    public dev.segstore.protocol.meta.Segment nextSegment() {
        return nextSegment;
    }

    /** This refusal, telling the next segment of the roll that caused it. */
    public RpcException withNextSegment(dev.segstore.protocol.meta.Segment next) {
        return new RpcException(code, getMessage(), leaderHint, leaderEpoch, notApplied, rolling, next);
    }

    public RpcException(int code, String message) {
        this(code, message, "");
    }

    public int code() {
        return code;
    }

    /** "host:port" of the leader for NOT_LEADER answers, or empty. */
    public String leaderHint() {
        return leaderHint;
    }

    public Error toError() {
        Error.Builder b = Error.newBuilder().setCode(code).setMessage(getMessage() == null ? "" : getMessage())
                .setLeaderHint(leaderHint).setNotApplied(notApplied).setRolling(rolling);
        if (leaderEpoch >= 0) {
            b.setLeaderEpoch(leaderEpoch);
        }
        if (nextSegment != null) {
            b.setNextSegment(nextSegment);
        }
        return b.build();
    }

    public static RpcException of(Error e) {
        return new RpcException(e.getCode(), e.getMessage(), e.getLeaderHint(), e.hasLeaderEpoch() ? e.getLeaderEpoch() : -1,
                e.getNotApplied(), e.getRolling(), e.hasNextSegment() ? e.getNextSegment() : null);
    }

    @Override
    public String toString() {
        return "RpcException[" + code + "]: " + getMessage() + (leaderHint.isEmpty() ? "" : " (leader " + leaderHint + ")")
                + (leaderEpoch < 0 ? "" : " (leader epoch " + leaderEpoch + ")") + (rolling ? " (rolling)" : "")
                + (nextSegment == null ? "" : " (next segment " + nextSegment.getSequence() + " from " + nextSegment.getStartOffset()
                + ", leader " + nextSegment.getLeader() + ")");
    }
}
