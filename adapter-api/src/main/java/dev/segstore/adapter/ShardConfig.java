package dev.segstore.adapter;

/**
 * A shard's configuration, fixed at creation.
 *
 * @param name              the shard name, see {@link Limits#NAME_PATTERN}
 * @param replicaCount      copies of each segment in the replicated engine, 1..{@link Limits#MAX_REPLICA_COUNT}
 * @param minInSyncReplicas in-sync copies a write needs to be acknowledged, 1..replicaCount
 * @param segmentBytes      size at which the active segment rolls, in
 *                          [{@link Limits#MIN_SEGMENT_BYTES}, {@link Limits#MAX_SEGMENT_BYTES}]
 * @param retentionMs       how long records are kept, in ms, or {@link #RETAIN_FOREVER}
 * @param storageType       the engine type the shard was created for (informational: the
 *                          {@code StorageDriverManager} routes by the topic's configuration)
 *
 * <p>The local engines (memory, rocksdb) keep one copy and store records until they are deleted: they
 * record but do not apply the replica, segment and retention settings.
 */
public record ShardConfig(String name, int replicaCount, int minInSyncReplicas, long segmentBytes,
                          long retentionMs, String storageType) {
    public static final long RETAIN_FOREVER = -1;
    public static final int DEFAULT_REPLICA_COUNT = 3;
    public static final int DEFAULT_MIN_IN_SYNC_REPLICAS = 2;
    public static final long DEFAULT_SEGMENT_BYTES = 256L * 1024 * 1024;

    /** A shard with the defaults: 3 replicas, min ISR 2, 256 MiB segments, kept forever. */
    public static ShardConfig of(String name, String storageType) {
        return new ShardConfig(name, DEFAULT_REPLICA_COUNT, DEFAULT_MIN_IN_SYNC_REPLICAS, DEFAULT_SEGMENT_BYTES,
                RETAIN_FOREVER, storageType);
    }

    public ShardConfig withReplication(int replicas, int minIsr) {
        return new ShardConfig(name, replicas, minIsr, segmentBytes, retentionMs, storageType);
    }

    public ShardConfig withSegmentBytes(long bytes) {
        return new ShardConfig(name, replicaCount, minInSyncReplicas, bytes, retentionMs, storageType);
    }

    public ShardConfig withRetentionMs(long ms) {
        return new ShardConfig(name, replicaCount, minInSyncReplicas, segmentBytes, ms, storageType);
    }
}
