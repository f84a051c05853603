package dev.segstore.node.replica;

/**
 * What a leader knows of one follower, learned from its fetches: an immutable value, replaced on each fetch.
 * Times are on the partition's monotonic clock.
 *
 * @param nodeId           the follower
 * @param logEndOffset     the offset it asked for last: everything below is in its log (durable there when the
 *                         shard's durability is fsync)
 * @param tombstoneEnd     the tombstone position it asked for last: it holds the leader's deletes below it
 * @param lastCaughtUpMs   last time its log end reached the leader's log end as it was when that fetch arrived
 * @param lastFetchMs      last time it fetched at all
 */
public record FollowerProgress(int nodeId, long logEndOffset, long tombstoneEnd, long lastCaughtUpMs, long lastFetchMs) {

    /** A follower the leader has not heard from yet: given a full lag period from {@code nowMs}. */
    public static FollowerProgress unknown(int nodeId, long nowMs) {
        return new FollowerProgress(nodeId, -1, -1, nowMs, -1);
    }

    /**
     * The progress after a fetch at {@code fetchOffset} and tombstone position {@code tombstoneFrom}, when the
     * leader's log ended at {@code leaderLogEnd}. A fetch that asks for the leader's end means the follower had
     * everything: caught up now.
     */
    public FollowerProgress afterFetch(long fetchOffset, long tombstoneFrom, long leaderLogEnd, long nowMs) {
        long caughtUp = fetchOffset >= leaderLogEnd ? nowMs : lastCaughtUpMs;
        return new FollowerProgress(nodeId, fetchOffset, tombstoneFrom, caughtUp, nowMs);
    }
}
