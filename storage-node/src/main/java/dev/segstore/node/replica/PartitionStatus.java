package dev.segstore.node.replica;

import java.util.List;

/**
 * What monitoring and admin tools want of one replica ({@link Partition#status()}), read at once under the
 * partition's monitor.
 *
 * @param replicas  the segment's replica count (0 before an assignment)
 * @param isr       the ISR as this replica knows it (the committed one on a leader)
 * @param followers on a leader, what it learnt of each follower from its fetches; empty elsewhere
 * @param nowMs     the (monotonic) clock reading the follower times compare with; only differences mean anything
 */
public record PartitionStatus(Partition.Role role, int leaderEpoch, long logEndOffset, long highWatermark, int replicas,
                              List<Integer> isr, int minIsr, boolean sealed, List<FollowerProgress> followers, long nowMs) {
    /** On a leader: the most records any follower lacks of its log end (-1: one not heard from yet); else 0. */
    public long maxFollowerLag() {
        long lag = 0;
        for (FollowerProgress p : followers) {
            if (p.logEndOffset() < 0) {
                return -1;
            }
            lag = Math.max(lag, logEndOffset - p.logEndOffset());
        }
        return lag;
    }
}
