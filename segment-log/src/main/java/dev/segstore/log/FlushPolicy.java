package dev.segstore.log;

/**
 * When the I/O thread forces written bytes to disk: a pure function of what is unsynced, so that it can be
 * tested on its own (the design's "small, testable flush policy").
 *
 * <ul>
 *   <li>An append waiting for fsync is flushed as soon as the queue is empty (nothing more to batch with it),
 *       or once {@code maxUnsyncedBytes} are waiting, or once the oldest such append has waited
 *       {@code maxWaitNanos}. Appends that arrive during a flush form the next group: that is group commit.</li>
 *   <li>Page-cache appends need no flush for their acknowledgement; their bytes are flushed in the background
 *       every {@code backgroundFlushNanos} or {@code backgroundFlushBytes}, whichever comes first.</li>
 * </ul>
 *
 * @param maxWaitNanos         longest an fsync append waits for more appends to share its flush
 * @param maxUnsyncedBytes     flush once this many bytes wait for an fsync
 * @param backgroundFlushNanos flush page-cache bytes at least this often
 * @param backgroundFlushBytes flush page-cache bytes once this many are unsynced
 */
public record FlushPolicy(long maxWaitNanos, long maxUnsyncedBytes, long backgroundFlushNanos, long backgroundFlushBytes) {

    public static final FlushPolicy DEFAULT = new FlushPolicy(2_000_000L, 8L << 20, 1_000_000_000L, 16L << 20);

    public FlushPolicy {
        if (maxWaitNanos < 0 || maxUnsyncedBytes < 1 || backgroundFlushNanos < 0 || backgroundFlushBytes < 1) {
            throw new IllegalArgumentException("flush policy values must be positive: " + maxWaitNanos + ", "
                    + maxUnsyncedBytes + ", " + backgroundFlushNanos + ", " + backgroundFlushBytes);
        }
    }

    /**
     * What the I/O thread sees after writing what it had.
     *
     * @param unsyncedBytes       bytes written but not yet forced
     * @param oldestFsyncWaitNanos how long the oldest append waiting for fsync has waited, -1 if none waits
     * @param oldestUnsyncedNanos  age of the oldest unsynced byte, -1 if none
     * @param queueEmpty           whether no more work is queued right now
     */
    public record State(long unsyncedBytes, long oldestFsyncWaitNanos, long oldestUnsyncedNanos, boolean queueEmpty) {
    }

    /** Sentinel of {@link #nanosUntilFlush}: nothing to flush. */
    public static final long NEVER = Long.MAX_VALUE;

    /** 0 to flush now, {@link #NEVER} when nothing is unsynced, else how long the thread may wait first. */
    public long nanosUntilFlush(State s) {
        if (s.unsyncedBytes() <= 0) {
            return NEVER;
        }
        if (s.oldestFsyncWaitNanos() >= 0) {
            if (s.queueEmpty() || s.unsyncedBytes() >= maxUnsyncedBytes || s.oldestFsyncWaitNanos() >= maxWaitNanos) {
                return 0;
            }
            return maxWaitNanos - s.oldestFsyncWaitNanos();
        }
        if (s.unsyncedBytes() >= backgroundFlushBytes || s.oldestUnsyncedNanos() >= backgroundFlushNanos) {
            return 0;
        }
        return backgroundFlushNanos - Math.max(0, s.oldestUnsyncedNanos());
    }
}
