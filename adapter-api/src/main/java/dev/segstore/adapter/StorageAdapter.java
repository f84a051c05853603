package dev.segstore.adapter;

import java.util.List;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.concurrent.CompletableFuture;

/**
 * The one interface a broker uses to store records. Every engine (memory, rocksdb, the replicated
 * segment cluster, plug-ins) implements it with the same semantics, proven by the conformance suite
 * in {@code adapter-testkit}. docs/adapter-contract.md is the full contract; in short:
 *
 * <ul>
 *   <li>No method blocks its caller or throws: each returns a future, and every failure, bad arguments
 *       included, completes it exceptionally with a {@link StorageException} carrying an {@link ErrorCode}.
 *   <li>Offsets are dense per shard and start at 0; a batch gets consecutive offsets, all or none.
 *   <li>A read past the end is empty, not an error; {@code limit} counts records, 1..{@link Limits#MAX_READ_LIMIT}.
 *   <li>A deleted record is never returned again by any read. Deleting leaves a hole: offsets are not reused.
 *   <li>Operations on a missing shard fail with {@link ErrorCode#SHARD_NOT_FOUND}.
 * </ul>
 */
public interface StorageAdapter extends AutoCloseable {

    /** Creates a shard. Fails with {@link ErrorCode#SHARD_EXISTS} if the name is taken. */
    CompletableFuture<Void> createShard(ShardConfig config);

    /** Deletes a shard with all its records, indexes and consumer-group offsets. */
    CompletableFuture<Void> deleteShard(String shard);

    /** The shards matching the filter, sorted by name. */
    CompletableFuture<List<ShardInfo>> listShards(ShardFilter filter);

    /** Appends one record; completes with its offset. */
    CompletableFuture<Long> write(String shard, NewRecord record);

    /** Appends records atomically at consecutive offsets; completes with the offsets in order. */
    CompletableFuture<List<Long>> batchWrite(String shard, List<NewRecord> records);

    /** Up to {@code limit} live records with offset {@code >= offset}, in offset order. */
    CompletableFuture<List<StoredRecord>> readByOffset(String shard, long offset, int limit);

    /** Up to {@code limit} live records carrying {@code tag} with offset {@code >= offset}, in offset order. */
    CompletableFuture<List<StoredRecord>> readByTag(String shard, String tag, long offset, int limit);

    /** The newest live record with this key, if any. */
    CompletableFuture<Optional<StoredRecord>> readByKey(String shard, String key);

    /**
     * Deletes the record at {@code offset}. Completes with {@code true} if a live record was deleted,
     * {@code false} if it was deleted already. An offset the shard never held (at or past its log end)
     * fails with {@link ErrorCode#OFFSET_OUT_OF_RANGE}.
     */
    CompletableFuture<Boolean> deleteByOffset(String shard, long offset);

    /** Deletes every live record with this key; completes with how many were deleted (0 if none). */
    CompletableFuture<Long> deleteByKey(String shard, String key);

    /**
     * The first offset whose record's timestamp is {@code >= timestamp}, or empty if there is none.
     * Every offset ever written counts, deleted ones too: the answer is a position to read from, and a
     * read from it skips deleted records.
     */
    CompletableFuture<OptionalLong> getOffsetByTimestamp(String shard, long timestamp);

    /** The offset this group last committed for the shard, or empty if it never committed one. */
    CompletableFuture<OptionalLong> getOffsetByGroup(String group, String shard);

    /**
     * Records {@code offset} as the group's position in the shard. The last commit wins, smaller or not
     * (a group's offset moves backwards only when a client commits a smaller one).
     */
    CompletableFuture<Void> commitOffset(String group, String shard, long offset);

    /**
     * Closes the adapter: waits for operations in flight, then releases its resources. Later calls fail
     * with {@link ErrorCode#CLOSED}. Closing twice is harmless.
     */
    @Override
    void close();
}
