package dev.segstore.adapter;

import dev.segstore.adapter.spi.EngineSettings;
import dev.segstore.adapter.spi.StorageEngineProvider;

import java.util.List;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A plug-in engine known to the manager only through
 * {@code src/test/resources/META-INF/services/dev.segstore.adapter.spi.StorageEngineProvider}.
 * Its engine keeps shard names only (enough to see that calls reach it) and refuses record operations.
 */
public final class PluginEngineProvider implements StorageEngineProvider {
    static final String TYPE = "test-plugin";
    static final AtomicInteger CREATED = new AtomicInteger();

    @Override
    public String storageType() {
        return TYPE;
    }

    @Override
    public StorageAdapter create(EngineSettings settings) {
        if (settings.getBoolean("fail", false)) {
            throw new StorageException(ErrorCode.UNAVAILABLE, "plug-in told to fail");
        }
        CREATED.incrementAndGet();
        return new ShardNamesEngine();
    }

    static final class ShardNamesEngine extends AbstractStorageAdapter {
        final ConcurrentSkipListMap<String, ShardConfig> shards = new ConcurrentSkipListMap<>();
        volatile boolean closed;

        ShardNamesEngine() {
            super(TYPE);
        }

        @Override
        protected CompletableFuture<Void> doCreateShard(ShardConfig config) {
            if (shards.putIfAbsent(config.name(), config) != null) {
                throw StorageException.shardExists(config.name());
            }
            return CompletableFuture.completedFuture(null);
        }

        @Override
        protected CompletableFuture<Void> doDeleteShard(String shard) {
            if (shards.remove(shard) == null) {
                throw StorageException.shardNotFound(shard);
            }
            return CompletableFuture.completedFuture(null);
        }

        @Override
        protected CompletableFuture<List<ShardInfo>> doListShards(ShardFilter filter) {
            return CompletableFuture.completedFuture(shards.values().stream().filter(c -> filter.matches(c.name()))
                    .map(c -> new ShardInfo(c, 1, 0)).toList());
        }

        private static <T> CompletableFuture<T> unsupported() {
            throw new StorageException(ErrorCode.UNAVAILABLE, "the test plug-in stores no records");
        }

        @Override
        protected CompletableFuture<List<Long>> doBatchWrite(String shard, List<NewRecord> records) {
            return unsupported();
        }

        @Override
        protected CompletableFuture<List<StoredRecord>> doReadByOffset(String shard, long offset, int limit) {
            return unsupported();
        }

        @Override
        protected CompletableFuture<List<StoredRecord>> doReadByTag(String shard, String tag, long offset, int limit) {
            return unsupported();
        }

        @Override
        protected CompletableFuture<Optional<StoredRecord>> doReadByKey(String shard, String key) {
            return unsupported();
        }

        @Override
        protected CompletableFuture<Boolean> doDeleteByOffset(String shard, long offset) {
            return unsupported();
        }

        @Override
        protected CompletableFuture<Long> doDeleteByKey(String shard, String key) {
            return unsupported();
        }

        @Override
        protected CompletableFuture<OptionalLong> doGetOffsetByTimestamp(String shard, long timestamp) {
            return unsupported();
        }

        @Override
        protected CompletableFuture<OptionalLong> doGetOffsetByGroup(String group, String shard) {
            return unsupported();
        }

        @Override
        protected CompletableFuture<Void> doCommitOffset(String group, String shard, long offset) {
            return unsupported();
        }

        @Override
        protected void doClose() {
            closed = true;
        }
    }
}
