package dev.segstore.engine.memory;

import dev.segstore.adapter.AbstractStorageAdapter;
import dev.segstore.adapter.NewRecord;
import dev.segstore.adapter.StoredRecord;
import dev.segstore.adapter.ShardConfig;
import dev.segstore.adapter.ShardFilter;
import dev.segstore.adapter.ShardInfo;
import dev.segstore.adapter.StorageException;

import java.time.Clock;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Function;

/**
 * The {@code memory} engine: every shard in the heap, lost on restart. The reference engine for tests
 * and for topics that need no durability. Operations complete before they return (nothing here blocks).
 * Payloads are copied in and out, so callers can never change stored data through an array.
 */
public final class MemoryStorageAdapter extends AbstractStorageAdapter {
    public static final String STORAGE_TYPE = "memory";

    private final ConcurrentHashMap<String, MemoryShard> shards = new ConcurrentHashMap<>();
    private final Clock clock;

    public MemoryStorageAdapter() {
        this(Clock.systemUTC());
    }

    public MemoryStorageAdapter(Clock clock) {
        super(STORAGE_TYPE);
        this.clock = clock;
    }

    @Override
    protected CompletableFuture<Void> doCreateShard(ShardConfig config) {
        MemoryShard fresh = new MemoryShard(config, clock.millis());
        if (shards.putIfAbsent(config.name(), fresh) != null) {
            throw StorageException.shardExists(config.name());
        }
        return CompletableFuture.completedFuture(null);
    }

    @Override
    protected CompletableFuture<Void> doDeleteShard(String shard) {
        MemoryShard removed = shards.remove(shard);
        if (removed == null) {
            throw StorageException.shardNotFound(shard);
        }
        removed.markDeleted();
        return CompletableFuture.completedFuture(null);
    }

    @Override
    protected CompletableFuture<List<ShardInfo>> doListShards(ShardFilter filter) {
        return CompletableFuture.completedFuture(shards.entrySet().stream()
                .filter(e -> filter.matches(e.getKey()))
                .map(e -> e.getValue().info())
                .sorted(Comparator.comparing(ShardInfo::name))
                .toList());
    }

    @Override
    protected CompletableFuture<List<Long>> doBatchWrite(String shard, List<NewRecord> records) {
        return on(shard, s -> s.append(records));
    }

    @Override
    protected CompletableFuture<List<StoredRecord>> doReadByOffset(String shard, long offset, int limit) {
        return on(shard, s -> s.read(offset, limit));
    }

    @Override
    protected CompletableFuture<List<StoredRecord>> doReadByTag(String shard, String tag, long offset, int limit) {
        return on(shard, s -> s.readTag(tag, offset, limit));
    }

    @Override
    protected CompletableFuture<Optional<StoredRecord>> doReadByKey(String shard, String key) {
        return on(shard, s -> s.readKey(key));
    }

    @Override
    protected CompletableFuture<Boolean> doDeleteByOffset(String shard, long offset) {
        return on(shard, s -> s.deleteOffset(offset));
    }

    @Override
    protected CompletableFuture<Long> doDeleteByKey(String shard, String key) {
        return on(shard, s -> s.deleteKey(key));
    }

    @Override
    protected CompletableFuture<OptionalLong> doGetOffsetByTimestamp(String shard, long timestamp) {
        return on(shard, s -> s.offsetForTimestamp(timestamp));
    }

    @Override
    protected CompletableFuture<OptionalLong> doGetOffsetByGroup(String group, String shard) {
        return on(shard, s -> s.groupOffset(group));
    }

    @Override
    protected CompletableFuture<Void> doCommitOffset(String group, String shard, long offset) {
        return on(shard, s -> {
            s.commitGroup(group, offset);
            return null;
        });
    }

    @Override
    protected void doClose() {
        shards.clear();
    }

    private <T> CompletableFuture<T> on(String shard, Function<MemoryShard, T> op) {
        MemoryShard s = shards.get(shard);
        if (s == null) {
            throw StorageException.shardNotFound(shard);
        }
        return CompletableFuture.completedFuture(op.apply(s));
    }
}
