package dev.segstore.node.replica;

import dev.segstore.log.Durability;

/**
 * Replication settings of one segment replica.
 *
 * @param minInSyncReplicas writes are refused (NOT_ENOUGH_REPLICAS) while the ISR is smaller
 * @param maxLagMs          a follower not caught up for this long is proposed for removal from the ISR
 * @param durability        FSYNC: every replica forces before it counts towards the high watermark;
 *                          PAGE_CACHE: a write to the page cache counts
 * @param readLeaseMs       how long the assignment that last listed this replica in a sealed segment's ISR lets it
 *                          serve reads of it (from when the heartbeat that brought it was sent), and how long a leader
 *                          holds deletes' acknowledgements after its ISR lost a member (the node's {@code read.lease.ms})
 */
public record ReplicaConfig(int minInSyncReplicas, long maxLagMs, Durability durability, long readLeaseMs) {
    /** The node's default {@code read.lease.ms}. */
    public static final long DEFAULT_READ_LEASE_MS = 3_000;

    public ReplicaConfig {
        if (minInSyncReplicas < 1 || maxLagMs < 1 || durability == null || readLeaseMs < 1) {
            throw new IllegalArgumentException("minInSyncReplicas >= 1, maxLagMs >= 1, readLeaseMs >= 1 and a durability are required");
        }
    }

    /** With the default read lease. */
    public ReplicaConfig(int minInSyncReplicas, long maxLagMs, Durability durability) {
        this(minInSyncReplicas, maxLagMs, durability, DEFAULT_READ_LEASE_MS);
    }
}
