package dev.segstore.chaos;

/** The operations of {@code StorageAdapter} a history records, by the adapter method each stands for. */
public enum OpType {
    /** {@code write(shard, record)}: one record; ok answers its offset. */
    WRITE,
    /** {@code batchWrite(shard, records)}: ok answers one offset per record, in order. */
    BATCH_WRITE,
    /** {@code readByOffset(shard, from, limit)}; a read marked final is part of the state after heal. */
    READ,
    /** {@code readByKey(shard, key)}: ok answers zero or one record. */
    READ_KEY,
    /** {@code readByTag(shard, tag, from, limit)}. */
    READ_TAG,
    /** {@code deleteByOffset(shard, offset)}: ok answers whether a live record was deleted (count 1 or 0). */
    DELETE_OFFSET,
    /** {@code deleteByKey(shard, key)}: ok answers how many live records were deleted. */
    DELETE_KEY,
    /** {@code commitOffset(group, shard, offset)}. */
    COMMIT_OFFSET,
    /** {@code getOffsetByGroup(group, shard)}: ok answers the offset or empty. */
    READ_GROUP_OFFSET;

    /** Whether the operation stores records ({@link #WRITE}, {@link #BATCH_WRITE}). */
    public boolean isWrite() {
        return this == WRITE || this == BATCH_WRITE;
    }

    /** Whether the operation returns records ({@link #READ}, {@link #READ_KEY}, {@link #READ_TAG}). */
    public boolean isRead() {
        return this == READ || this == READ_KEY || this == READ_TAG;
    }
}
