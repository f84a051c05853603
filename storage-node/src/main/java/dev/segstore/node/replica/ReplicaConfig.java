package dev.segstore.node.replica;

import dev.segstore.log.Durability;

/**
 * Replication settings of one segment replica.
 *
 * @param minInSyncReplicas writes are refused (NOT_ENOUGH_REPLICAS) while the ISR is smaller
 * @param maxLagMs          a follower not caught up for this long is proposed for removal from the ISR
 * @param durability        FSYNC: every replica forces before it counts towards the high watermark;
 *                          PAGE_CACHE: a write to the page cache counts
 */
public record ReplicaConfig(int minInSyncReplicas, long maxLagMs, Durability durability) {
    public ReplicaConfig {
        if (minInSyncReplicas < 1 || maxLagMs < 1 || durability == null) {
            throw new IllegalArgumentException("minInSyncReplicas >= 1, maxLagMs >= 1 and a durability are required");
        }
    }
}
