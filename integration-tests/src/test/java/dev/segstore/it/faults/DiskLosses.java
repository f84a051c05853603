package dev.segstore.it.faults;

import dev.segstore.protocol.meta.Segment;
import dev.segstore.protocol.meta.SegmentStatus;
import dev.segstore.protocol.meta.ShardRoute;

import java.util.HashSet;
import java.util.Set;

/**
 * Keeps a run's replaced disks ({@link FaultKind#LOSE_DISK}) within what replication promises: acknowledged records
 * survive the loss of one copy while another in-sync copy lives. A node's disk is replaced only while every open or
 * sealed segment of the shard whose ISR holds it (the route read just before) holds two other members whose disks
 * were not replaced in this run: one more may leave the ISR while the fault starts (a concurrent fault), and one
 * in-sync copy is still left. A node whose disk was replaced counts as lost for the rest of the run (it may have
 * caught up since: counting it out only makes the rule stricter).
 */
final class DiskLosses {
    private final Set<Integer> lost = new HashSet<>();

    /** Why replacing {@code node}'s disk now could lose the only copy of acknowledged records, or null if it may. */
    String refusal(ShardRoute route, int node) {
        if (route == null || route.getSegmentsCount() == 0) {
            return "the shard's route is unknown";
        }
        for (Segment s : route.getSegmentsList()) {
            boolean live = s.getStatus() == SegmentStatus.OPEN || s.getStatus() == SegmentStatus.SEALED;
            if (!live || !s.getIsrList().contains(node)) {
                continue;
            }
            long others = s.getIsrList().stream().filter(m -> m != node && !lost.contains(m)).count();
            if (others < 2) {
                return "segment " + s.getSequence() + "'s ISR " + s.getIsrList() + " holds fewer than two other members with their disk"
                        + " (replaced this run: " + lost + ")";
            }
        }
        return null;
    }

    /** Node {@code node}'s disk was replaced. */
    void lost(int node) {
        lost.add(node);
    }
}
