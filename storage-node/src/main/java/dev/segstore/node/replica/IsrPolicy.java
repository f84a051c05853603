package dev.segstore.node.replica;

import java.util.Collection;
import java.util.Map;
import java.util.function.ToLongFunction;

/**
 * The ISR rules as pure functions of state and time (so that they are tested alone, as Kafka's
 * {@code Partition}/{@code Replica} keep them): who is caught up, and where the high watermark is.
 */
public final class IsrPolicy {
    private IsrPolicy() {
    }

    /**
     * A follower stays in (or may join) the ISR while it has been caught up with the leader within the last
     * {@code maxLagMs}. Joining additionally needs its log to reach the high watermark and its tombstones the
     * tombstone watermark, so a new member never lowers either (nor lacks an acknowledged delete).
     */
    public static boolean isCaughtUp(FollowerProgress p, long nowMs, long maxLagMs) {
        return nowMs - p.lastCaughtUpMs() <= maxLagMs;
    }

    public static boolean mayJoin(FollowerProgress p, long highWatermark, long tombstoneWatermark, long nowMs, long maxLagMs) {
        return p.logEndOffset() >= highWatermark && p.tombstoneEnd() >= tombstoneWatermark && isCaughtUp(p, nowMs, maxLagMs);
    }

    /**
     * The high watermark: the smallest log end over the leader and every member of {@code isr} (pass the
     * larger of the committed and the proposed ISR while a change is pending). A member never heard from
     * counts as having nothing beyond {@code current}, so the watermark never moves back.
     */
    public static long highWatermark(long leaderLogEnd, Collection<Integer> isr, int leaderId,
                                     Map<Integer, FollowerProgress> followers, long current) {
        return watermark(leaderLogEnd, isr, leaderId, followers, current, FollowerProgress::logEndOffset);
    }

    /** The tombstone watermark: the same rule over tombstone ends (a delete is acknowledged below it). */
    public static long tombstoneWatermark(long leaderEnd, Collection<Integer> isr, int leaderId,
                                          Map<Integer, FollowerProgress> followers, long current) {
        return watermark(leaderEnd, isr, leaderId, followers, current, FollowerProgress::tombstoneEnd);
    }

    private static long watermark(long leaderEnd, Collection<Integer> isr, int leaderId, Map<Integer, FollowerProgress> followers,
                                  long current, ToLongFunction<FollowerProgress> end) {
        long hw = leaderEnd;
        for (int id : isr) {
            if (id == leaderId) {
                continue;
            }
            FollowerProgress p = followers.get(id);
            long e = p == null || end.applyAsLong(p) < 0 ? current : end.applyAsLong(p);
            hw = Math.min(hw, e);
        }
        return Math.max(hw, current);
    }
}
