package dev.segstore.node.replica;

import java.util.Collection;
import java.util.Map;

/**
 * The ISR rules as pure functions of state and time (so that they are tested alone, as Kafka's
 * {@code Partition}/{@code Replica} keep them): who is caught up, and where the high watermark is.
 */
public final class IsrPolicy {
    private IsrPolicy() {
    }

    /**
     * A follower stays in (or may join) the ISR while it has been caught up with the leader within the last
     * {@code maxLagMs}. Joining additionally needs its log to reach the high watermark, so a new member never
     * lowers it.
     */
    public static boolean isCaughtUp(FollowerProgress p, long nowMs, long maxLagMs) {
        return nowMs - p.lastCaughtUpMs() <= maxLagMs;
    }

    public static boolean mayJoin(FollowerProgress p, long highWatermark, long nowMs, long maxLagMs) {
        return p.logEndOffset() >= highWatermark && isCaughtUp(p, nowMs, maxLagMs);
    }

    /**
     * The high watermark: the smallest log end over the leader and every member of {@code isr} (pass the
     * larger of the committed and the proposed ISR while a change is pending). A member never heard from
     * counts as having nothing beyond {@code current}, so the watermark never moves back.
     */
    public static long highWatermark(long leaderLogEnd, Collection<Integer> isr, int leaderId,
                                     Map<Integer, FollowerProgress> followers, long current) {
        long hw = leaderLogEnd;
        for (int id : isr) {
            if (id == leaderId) {
                continue;
            }
            FollowerProgress p = followers.get(id);
            long end = p == null || p.logEndOffset() < 0 ? current : p.logEndOffset();
            hw = Math.min(hw, end);
        }
        return Math.max(hw, current);
    }
}
