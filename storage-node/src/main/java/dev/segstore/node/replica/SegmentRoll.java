package dev.segstore.node.replica;

import java.util.function.BiConsumer;

/**
 * The part of a {@link Partition} that decides when its segment rolls, and holds the seal that ends it. Not
 * thread-safe: the partition calls it under its monitor.
 *
 * <p>Open → <i>sealing</i>, once the segment is full ({@code segmentBytes}) or old ({@code segmentMs} after its
 * first write): the leader takes no more writes, and once the high watermark reaches the log end it asks the
 * controller (the {@link Partition.Roller}) to seal there, again on the next tick if asking fails →
 * <i>sealed</i> at the end the controller committed. A follower learns that end from its assignment and seals
 * once its log holds everything below it.
 */
final class SegmentRoll {
    private long segmentBytes = Long.MAX_VALUE;
    private long segmentMs = Long.MAX_VALUE;
    private Partition.Roller roller;
    /** Monotonic time of the first write this leader took into the segment, -1 before one. */
    private long firstWriteMs = -1;
    /**
     * The rate this leader writes the segment at ({@link #fillsSoon}), measured over windows of at least
     * {@link #RATE_WINDOW_MS} that end at appends: the current window's start (monotonic time, -1 before this leader's
     * first append; and the size then), and the rates of the last two windows, in bytes a millisecond (-1: none yet).
     */
    private long windowMs = -1;
    private long windowSize;
    private double lastRate = -1;
    private double rateBefore = -1;
    /** The size after this leader's last append, and what that append added. */
    private long lastSize = -1;
    private long lastAppendBytes;
    private boolean sealing;
    private boolean requested;
    private long sealedEnd = -1;
    private long pendingSealAt = -1;
    /** Close ahead (meta.proto, {@code Segment.closing_version}): the size at which the leader asks to close; MAX: never. */
    private long closeAtBytes = Long.MAX_VALUE;
    /** The leader epoch this replica asked to close in (a request out, or committed), -1 while it has not. */
    private int closeEpoch = -1;
    /** Monotonic time the close was committed as this replica learnt it, while closing. */
    private long closingSinceMs;
    /**
     * How long a closing leader goes on writing before it ends the segment anyway: a shard whose writes slowed or
     * stopped after the close would otherwise keep a closing segment (no reassignment, no unclean election) until it
     * fills or {@code segment.ms} passes.
     */
    static final long CLOSING_MAX_MS = 10_000;
    /** Monotonic time before which a failed close is not asked again. */
    private long closeRetryAtMs = Long.MIN_VALUE;
    /** The controller committed the close (its answer, or an assignment said so). */
    private boolean closing;
    /** This leader handed the shard over to the next segment in {@link #handedOverIn} (its epoch), -1: not. */
    private int handedOverIn = -1;

    void configure(long segmentBytes, long segmentMs, Partition.Roller roller) {
        this.segmentBytes = segmentBytes;
        this.segmentMs = segmentMs;
        this.roller = roller;
    }

    Partition.Roller roller() {
        return roller;
    }

    /** Asks to close ahead once the segment holds {@code closeAtBytes} (docs/architecture.md, "Close ahead"). */
    void configureCloseAhead(long closeAtBytes) {
        this.closeAtBytes = closeAtBytes;
    }

    /**
     * After a leader's append in {@code epoch} (or on a tick): true once, when the segment has grown to the close-ahead
     * size, fills soon at the rate it is written at ({@link #fillsSoon}), and the leader is to ask the controller to close
     * it ({@link #closeFailed} lets it ask again).
     */
    boolean dueToClose(long sizeInBytes, int epoch, long nowMs) {
        if (closing || closeEpoch >= 0 || roller == null || sizeInBytes < closeAtBytes || refusesWrites() || nowMs < closeRetryAtMs
                || !fillsSoon(sizeInBytes, nowMs)) {
            return false;
        }
        closeEpoch = epoch;
        return true;
    }

    /**
     * How long before the segment fills, at the rate it is written at, its leader asks to close it: the close's commit
     * and the next segment's log, made on every replica meanwhile, take milliseconds; the rest is a margin for a rate
     * that rises.
     */
    static final long CLOSE_LEAD_MS = 2_000;
    /** The shortest window a rate is measured over ({@link #fillsSoon}); a window still open counts from a fifth of it. */
    static final long RATE_WINDOW_MS = 500;

    /**
     * Whether the segment, past its close-ahead size, fills soon: within {@link #CLOSE_LEAD_MS} at the rate it is
     * written at, or within two appends of the size of the last. The rate is the highest of the last two windows'
     * ({@link #RATE_WINDOW_MS} or more each, so a pause that ends one does not hide the rate before it) and of the
     * window still open once it is a fifth that long (a burst shows within 100 ms; appends in one millisecond count as
     * no rate). A segment a quarter of which takes longer to write asks later than at three quarters: else a shard
     * written slowly would close each segment at three quarters and end it {@link #CLOSING_MAX_MS} later, little
     * bigger (more segments, each closing, so neither reassigned nor electable uncleanly, for those seconds). A leader
     * that has not appended here does not ask; one whose rate is not measured yet asks at three quarters, as before.
     */
    private boolean fillsSoon(long size, long nowMs) {
        if (windowMs < 0) {
            return false;
        }
        double rate = Math.max(lastRate, rateBefore);
        long open = nowMs - windowMs;
        if (open >= RATE_WINDOW_MS / 5) {
            rate = Math.max(rate, (double) (size - windowSize) / open);
        }
        long left = segmentBytes - size;
        return rate < 0 || left <= rate * CLOSE_LEAD_MS || left <= 2 * lastAppendBytes;
    }

    /** After this leader's append, which left the segment at {@code size}: the rate's windows. */
    private void measure(long size, long nowMs) {
        lastAppendBytes = lastSize >= 0 && size > lastSize ? size - lastSize : 0;
        lastSize = size;
        if (windowMs < 0 || size < windowSize) { // the first append, or the log cut back below the window's start
            windowMs = nowMs;
            windowSize = size;
        } else if (nowMs - windowMs >= RATE_WINDOW_MS) {
            rateBefore = lastRate;
            lastRate = (double) (size - windowSize) / (nowMs - windowMs);
            windowMs = nowMs;
            windowSize = size;
        }
    }

    /**
     * The close request failed (a deposed leader, the meta-service unreachable, a segment whose own seal is not recorded
     * yet): asked again after {@link #CLOSE_RETRY_MS}, not after every append.
     */
    void closeFailed(long nowMs) {
        if (!closing) {
            closeEpoch = -1;
            closeRetryAtMs = nowMs == Long.MAX_VALUE ? Long.MAX_VALUE : nowMs + CLOSE_RETRY_MS; // MAX: refused, never again
        }
    }

    /** Whether this replica asked to close in some epoch (a request out, or committed), or learnt of the close. */
    boolean closeAsked() {
        return closing || closeEpoch >= 0;
    }

    /** How long after a failed close request the leader asks again. */
    static final long CLOSE_RETRY_MS = 100;

    /**
     * The controller committed the close. A leader in another epoch than the one it asked in (or that never asked:
     * it learnt of the close from an assignment) takes no more writes: the leader that closed it may have handed the
     * shard over at its log end, and only a leader that never wrote past that end can end the segment there.
     */
    void closing(boolean leader, int epoch, long nowMs) {
        closing = true;
        closingSinceMs = nowMs;
        if (leader && epoch != closeEpoch && sealedEnd < 0) {
            sealing = true;
        }
    }

    /** This replica leads in {@code epoch} now: of a closing segment it takes no writes (see {@link #closing}). */
    void tookLead(int epoch) {
        if (closing && sealedEnd < 0 && epoch != closeEpoch) {
            sealing = true;
        }
    }

    /** Whether this leader has been closing for {@link #CLOSING_MAX_MS} without ending the segment. */
    boolean closingTooLong(long nowMs) {
        return closing && !sealing && sealedEnd < 0 && nowMs - closingSinceMs >= CLOSING_MAX_MS;
    }

    long closeAtBytes() {
        return closeAtBytes;
    }

    /** Closing: takes no more writes, to hand over at the log end (a replica waits to join the ISR). True if it changed. */
    boolean endClosing() {
        if (!closing || sealing || sealedEnd >= 0) {
            return false;
        }
        sealing = true;
        return true;
    }

    boolean isClosing() {
        return closing;
    }

    /**
     * Whether the leader in {@code epoch} hands the shard over to the next segment now: closing, sealing, not handed
     * over in this epoch, and every ISR member holds the whole log ({@code highWatermark} at {@code logEnd}). Marks
     * it handed over when it answers true.
     */
    boolean handOverDue(int epoch, long highWatermark, long logEnd) {
        if (!closing || !sealing || sealedEnd >= 0 || handedOverIn == epoch || highWatermark < logEnd || roller == null) {
            return false;
        }
        handedOverIn = epoch;
        return true;
    }

    /** Whether writes are refused: the segment is full and being sealed, or sealed. */
    boolean refusesWrites() {
        return sealing || sealedEnd >= 0 || pendingSealAt >= 0;
    }

    /** After a leader's append: true when the segment is full now, and starts sealing. */
    boolean afterAppend(long sizeInBytes, long nowMs) {
        if (firstWriteMs < 0) {
            firstWriteMs = nowMs;
        }
        measure(sizeInBytes, nowMs);
        if (sealing || roller == null || sizeInBytes < segmentBytes) {
            return false;
        }
        sealing = true;
        return true;
    }

    /** Periodic: the age of an open segment that has grown old enough and starts sealing now, else -1. */
    long ageOut(long nowMs) {
        if (refusesWrites() || roller == null || firstWriteMs < 0 || segmentMs == Long.MAX_VALUE || nowMs - firstWriteMs < segmentMs) {
            return -1;
        }
        sealing = true;
        return nowMs - firstWriteMs;
    }

    /**
     * Asks the controller to seal at the high watermark once that is due: sealing, no request in flight, and the
     * high watermark at the log end (the ISR holds everything). {@code onAnswer} gets the end asked for and the
     * failure, if any, on the thread that completes the request; it must call {@link #answered}.
     */
    void maybeRequest(int leaderEpoch, long highWatermark, long logEnd, BiConsumer<Long, Throwable> onAnswer) {
        if (!sealing || requested || sealedEnd >= 0 || highWatermark < logEnd) {
            return;
        }
        requested = true;
        long end = highWatermark;
        roller.roll(leaderEpoch, end).whenComplete((v, e) -> onAnswer.accept(end, e));
    }

    void answered() {
        requested = false;
    }

    /**
     * The controller sealed the segment at {@code end}: true when the log ({@code logEnd}) holds everything below
     * it and the segment is sealed now; false for a follower still fetching, which seals once it has caught up
     * ({@link #pendingSealAt}).
     */
    boolean seal(long end, long logEnd) {
        if (logEnd < end) {
            pendingSealAt = end;
            return false;
        }
        sealedEnd = end;
        sealing = false;
        return true;
    }

    /** The controller sealed the segment at {@code end}; a follower takes the seal later ({@link #seal}). */
    void announce(long end) {
        if (sealedEnd < 0) {
            pendingSealAt = end;
        }
    }

    /**
     * The sealed log was repaired (it held records its leader does not, and was truncated): the seal is pending
     * again, and is taken once the log holds everything below the sealed end once more.
     */
    void unseal() {
        if (sealedEnd >= 0) {
            pendingSealAt = sealedEnd;
            sealedEnd = -1;
        }
    }

    /** The end offset the segment was sealed at, or -1 while it is open. */
    long sealedEnd() {
        return sealedEnd;
    }

    /** A seal the controller announced that the log has not caught up with yet, or -1. */
    long pendingSealAt() {
        return pendingSealAt;
    }
}
