package dev.segstore.adapter;

import java.util.List;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Supplier;

/**
 * The part of every engine that must not differ between engines: argument validation, the closed
 * check, and turning anything thrown into a failed future. An engine implements the {@code do*} methods
 * and may assume their arguments are valid.
 *
 * <p>Thread contract: the public methods may be called from any thread at once; {@code do*} methods
 * are called on the caller's thread and must not block it (hand blocking work to the engine's own
 * executor).
 */
public abstract class AbstractStorageAdapter implements StorageAdapter {
    private final AtomicBoolean closed = new AtomicBoolean();
    private final String engineName;

    protected AbstractStorageAdapter(String engineName) {
        this.engineName = engineName;
    }

    protected abstract CompletableFuture<Void> doCreateShard(ShardConfig config);

    protected abstract CompletableFuture<Void> doDeleteShard(String shard);

    protected abstract CompletableFuture<List<ShardInfo>> doListShards(ShardFilter filter);

    protected abstract CompletableFuture<List<Long>> doBatchWrite(String shard, List<NewRecord> records);

    protected abstract CompletableFuture<List<StoredRecord>> doReadByOffset(String shard, long offset, int limit);

    protected abstract CompletableFuture<List<StoredRecord>> doReadByTag(String shard, String tag, long offset, int limit);

    protected abstract CompletableFuture<Optional<StoredRecord>> doReadByKey(String shard, String key);

    protected abstract CompletableFuture<Boolean> doDeleteByOffset(String shard, long offset);

    protected abstract CompletableFuture<Long> doDeleteByKey(String shard, String key);

    protected abstract CompletableFuture<OptionalLong> doGetOffsetByTimestamp(String shard, long timestamp);

    protected abstract CompletableFuture<OptionalLong> doGetOffsetByGroup(String group, String shard);

    protected abstract CompletableFuture<Void> doCommitOffset(String group, String shard, long offset);

    /** Releases the engine's resources after waiting for operations in flight. Called once. */
    protected abstract void doClose();

    /** The engine's single-record write; by default a batch of one. */
    protected CompletableFuture<Long> doWrite(String shard, NewRecord record) {
        return doBatchWrite(shard, List.of(record)).thenApply(offsets -> offsets.get(0));
    }

    @Override
    public final CompletableFuture<Void> createShard(ShardConfig config) {
        return call(() -> {
            Validation.shardConfig(config);
            return doCreateShard(config);
        });
    }

    @Override
    public final CompletableFuture<Void> deleteShard(String shard) {
        return call(() -> {
            Validation.shardName(shard);
            return doDeleteShard(shard);
        });
    }

    @Override
    public final CompletableFuture<List<ShardInfo>> listShards(ShardFilter filter) {
        return call(() -> {
            Validation.filter(filter);
            return doListShards(filter);
        });
    }

    @Override
    public final CompletableFuture<Long> write(String shard, NewRecord record) {
        return call(() -> {
            Validation.shardName(shard);
            Validation.record("record", record);
            return doWrite(shard, record);
        });
    }

    @Override
    public final CompletableFuture<List<Long>> batchWrite(String shard, List<NewRecord> records) {
        return call(() -> {
            Validation.shardName(shard);
            Validation.batch(records);
            return doBatchWrite(shard, List.copyOf(records));
        });
    }

    @Override
    public final CompletableFuture<List<StoredRecord>> readByOffset(String shard, long offset, int limit) {
        return call(() -> {
            Validation.shardName(shard);
            Validation.offset("offset", offset);
            Validation.limit(limit);
            return doReadByOffset(shard, offset, limit);
        });
    }

    @Override
    public final CompletableFuture<List<StoredRecord>> readByTag(String shard, String tag, long offset, int limit) {
        return call(() -> {
            Validation.shardName(shard);
            Validation.tag("tag", tag);
            Validation.offset("offset", offset);
            Validation.limit(limit);
            return doReadByTag(shard, tag, offset, limit);
        });
    }

    @Override
    public final CompletableFuture<Optional<StoredRecord>> readByKey(String shard, String key) {
        return call(() -> {
            Validation.shardName(shard);
            Validation.key("key", key);
            return doReadByKey(shard, key);
        });
    }

    @Override
    public final CompletableFuture<Boolean> deleteByOffset(String shard, long offset) {
        return call(() -> {
            Validation.shardName(shard);
            Validation.offset("offset", offset);
            return doDeleteByOffset(shard, offset);
        });
    }

    @Override
    public final CompletableFuture<Long> deleteByKey(String shard, String key) {
        return call(() -> {
            Validation.shardName(shard);
            Validation.key("key", key);
            return doDeleteByKey(shard, key);
        });
    }

    @Override
    public final CompletableFuture<OptionalLong> getOffsetByTimestamp(String shard, long timestamp) {
        return call(() -> {
            Validation.shardName(shard);
            Validation.timestamp("timestamp", timestamp);
            return doGetOffsetByTimestamp(shard, timestamp);
        });
    }

    @Override
    public final CompletableFuture<OptionalLong> getOffsetByGroup(String group, String shard) {
        return call(() -> {
            Validation.groupName(group);
            Validation.shardName(shard);
            return doGetOffsetByGroup(group, shard);
        });
    }

    @Override
    public final CompletableFuture<Void> commitOffset(String group, String shard, long offset) {
        return call(() -> {
            Validation.groupName(group);
            Validation.shardName(shard);
            Validation.offset("offset", offset);
            return doCommitOffset(group, shard, offset);
        });
    }

    @Override
    public final void close() {
        if (closed.compareAndSet(false, true)) {
            doClose();
        }
    }

    protected final boolean isClosed() {
        return closed.get();
    }

    /** The error for a call made after {@link #close()}. */
    protected final StorageException closedError() {
        return new StorageException(ErrorCode.CLOSED, engineName + " engine is closed");
    }

    private <T> CompletableFuture<T> call(Supplier<CompletableFuture<T>> body) {
        if (closed.get()) {
            return CompletableFuture.failedFuture(closedError());
        }
        try {
            return body.get();
        } catch (StorageException e) {
            return CompletableFuture.failedFuture(e);
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(new StorageException(ErrorCode.INTERNAL,
                    engineName + " engine failed: " + e, e));
        }
    }
}
