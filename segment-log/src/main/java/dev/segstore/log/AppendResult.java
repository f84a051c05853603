package dev.segstore.log;

/**
 * The outcome of an append. Back-pressure is a result, not an exception: with {@link Status#QUEUE_FULL}
 * nothing was appended and the caller may retry later; the offsets are then -1.
 *
 * @param baseOffset offset of the first appended record
 * @param lastOffset offset of the last appended record
 */
public record AppendResult(Status status, long baseOffset, long lastOffset) {
    public enum Status {
        APPENDED,
        /** The data directory's queue is full (by bytes or by count); nothing was appended. */
        QUEUE_FULL
    }

    static final AppendResult QUEUE_FULL = new AppendResult(Status.QUEUE_FULL, -1, -1);

    public boolean appended() {
        return status == Status.APPENDED;
    }
}
