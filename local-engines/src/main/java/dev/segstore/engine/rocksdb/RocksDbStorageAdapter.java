package dev.segstore.engine.rocksdb;

import dev.segstore.adapter.AbstractStorageAdapter;
import dev.segstore.adapter.ErrorCode;
import dev.segstore.adapter.NewRecord;
import dev.segstore.adapter.StoredRecord;
import dev.segstore.adapter.ShardConfig;
import dev.segstore.adapter.ShardFilter;
import dev.segstore.adapter.ShardInfo;
import dev.segstore.adapter.StorageException;
import dev.segstore.engine.rocksdb.ShardMetaCodec.ShardMeta;
import org.rocksdb.ColumnFamilyDescriptor;
import org.rocksdb.ColumnFamilyHandle;
import org.rocksdb.ColumnFamilyOptions;
import org.rocksdb.DBOptions;
import org.rocksdb.RocksDB;
import org.rocksdb.RocksDBException;
import org.rocksdb.RocksIterator;
import org.rocksdb.WriteBatch;
import org.rocksdb.WriteOptions;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.time.Clock;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;

/**
 * The {@code rocksdb} engine: all shards of one engine in one local RocksDB, one column family per kind
 * of row (layout in {@link Keys}). Survives restarts; one copy only.
 *
 * <p>Thread contract: every operation on a shard runs on that shard's owner thread (an
 * {@link OrderedExecutor} keyed by shard name), so a shard's state needs no lock and its operations take
 * effect in call order. Futures complete on the owner thread: callers should not block in callbacks.
 * Each write is one atomic {@link WriteBatch} (records, index rows and the new log end together), so the
 * indexes can never disagree with the records after a crash.
 */
public final class RocksDbStorageAdapter extends AbstractStorageAdapter {
    public static final String STORAGE_TYPE = "rocksdb";
    private static final Logger LOG = LoggerFactory.getLogger(RocksDbStorageAdapter.class);
    private static final int FORMAT_MAGIC = 0x53475244; // "SGRD"
    private static final int FORMAT_VERSION = 1;
    private static final List<String> COLUMN_FAMILIES = List.of("meta", "records", "key_index", "tag_index",
            "time_index", "group_offsets");

    /** One shard's state; touched only on its owner thread, except {@code logEndOffset} (read by listShards). */
    private static final class ShardState {
        final ShardMeta meta;
        volatile long logEndOffset;
        long maxTimestamp;

        ShardState(ShardMeta meta, long logEndOffset, long maxTimestamp) {
            this.meta = meta;
            this.logEndOffset = logEndOffset;
            this.maxTimestamp = maxTimestamp;
        }

        long id() {
            return meta.id();
        }
    }

    @FunctionalInterface
    private interface ShardWork<T> {
        T run() throws RocksDBException;
    }

    private final RocksDbSettings settings;
    private final DBOptions dbOptions;
    private final ColumnFamilyOptions cfOptions;
    private final List<ColumnFamilyHandle> handles;
    private final RocksDB db;
    private final ColumnFamilyHandle meta;
    private final ColumnFamilyHandle records;
    private final ColumnFamilyHandle keyIndex;
    private final ColumnFamilyHandle tagIndex;
    private final ColumnFamilyHandle timeIndex;
    private final ColumnFamilyHandle groupOffsets;
    private final WriteOptions writeOptions;
    private final OrderedExecutor executor;
    private final ConcurrentHashMap<String, ShardState> shards = new ConcurrentHashMap<>();
    private final Object createLock = new Object();
    private final Clock clock = Clock.systemUTC();
    private long nextShardId; // guarded by createLock

    private RocksDbStorageAdapter(RocksDbSettings settings, DBOptions dbOptions, ColumnFamilyOptions cfOptions,
                                  RocksDB db, List<ColumnFamilyHandle> handles) {
        super(STORAGE_TYPE);
        this.settings = settings;
        this.dbOptions = dbOptions;
        this.cfOptions = cfOptions;
        this.db = db;
        this.handles = handles;
        this.meta = handles.get(1);
        this.records = handles.get(2);
        this.keyIndex = handles.get(3);
        this.tagIndex = handles.get(4);
        this.timeIndex = handles.get(5);
        this.groupOffsets = handles.get(6);
        this.writeOptions = new WriteOptions().setSync(settings.syncWrites());
        this.executor = new OrderedExecutor("rocksdb-shard", settings.threads());
    }

    /**
     * Opens (or creates) the engine's database in {@code settings.dataDir()}.
     *
     * @throws StorageException {@link ErrorCode#STORAGE_ERROR} if the directory cannot be used (for example
     *                          another engine holds it), {@link ErrorCode#CORRUPT_DATA} if it holds data of
     *                          an unknown format
     */
    public static RocksDbStorageAdapter open(RocksDbSettings settings) {
        RocksDB.loadLibrary();
        try {
            Files.createDirectories(settings.dataDir());
        } catch (IOException e) {
            throw new StorageException(ErrorCode.STORAGE_ERROR, "cannot create rocksdb data-dir "
                    + settings.dataDir() + ": " + e, e);
        }
        DBOptions dbOptions = new DBOptions().setCreateIfMissing(true).setCreateMissingColumnFamilies(true)
                .setMaxBackgroundJobs(2);
        ColumnFamilyOptions cfOptions = new ColumnFamilyOptions();
        List<ColumnFamilyDescriptor> descriptors = new ArrayList<>();
        descriptors.add(new ColumnFamilyDescriptor(RocksDB.DEFAULT_COLUMN_FAMILY, cfOptions));
        for (String cf : COLUMN_FAMILIES) {
            descriptors.add(new ColumnFamilyDescriptor(cf.getBytes(StandardCharsets.UTF_8), cfOptions));
        }
        List<ColumnFamilyHandle> handles = new ArrayList<>();
        RocksDB db;
        try {
            db = RocksDB.open(dbOptions, settings.dataDir().toString(), descriptors, handles);
        } catch (RocksDBException e) {
            cfOptions.close();
            dbOptions.close();
            throw new StorageException(ErrorCode.STORAGE_ERROR, "cannot open rocksdb data-dir "
                    + settings.dataDir() + " (is another engine using it?): " + e.getMessage(), e);
        }
        RocksDbStorageAdapter adapter = new RocksDbStorageAdapter(settings, dbOptions, cfOptions, db, handles);
        try {
            adapter.load();
        } catch (RuntimeException e) {
            adapter.close();
            throw e;
        }
        return adapter;
    }

    private void load() {
        try {
            byte[] format = db.get(meta, Keys.FORMAT);
            if (format == null) {
                try (RocksIterator it = db.newIterator(meta)) {
                    it.seekToFirst();
                    if (it.isValid()) {
                        throw new StorageException(ErrorCode.CORRUPT_DATA, settings.dataDir()
                                + " holds rocksdb engine rows but no format marker");
                    }
                }
                db.put(meta, writeOptions, Keys.FORMAT, ByteBuffer.allocate(8).putInt(FORMAT_MAGIC).putInt(FORMAT_VERSION).array());
            } else {
                ByteBuffer f = ByteBuffer.wrap(format);
                if (format.length != 8 || f.getInt() != FORMAT_MAGIC || f.getInt() != FORMAT_VERSION) {
                    throw new StorageException(ErrorCode.CORRUPT_DATA, settings.dataDir()
                            + " is not a rocksdb engine directory of format version " + FORMAT_VERSION);
                }
            }
            byte[] next = db.get(meta, Keys.NEXT_SHARD_ID);
            long nextId = next == null ? 1 : Keys.readLong(next, 0);
            try (RocksIterator it = db.newIterator(meta)) {
                for (it.seek(Keys.SHARD_META_PREFIX); it.isValid() && Keys.startsWith(it.key(), Keys.SHARD_META_PREFIX);
                     it.next()) {
                    String name = new String(it.key(), Keys.SHARD_META_PREFIX.length,
                            it.key().length - Keys.SHARD_META_PREFIX.length, StandardCharsets.UTF_8);
                    ShardMeta m = ShardMetaCodec.decode(name, it.value());
                    byte[] end = db.get(meta, Keys.end(m.id()));
                    long logEnd = end == null ? 0 : Keys.readLong(end, 0);
                    long maxTs = end == null ? -1 : Keys.readLong(end, 8);
                    shards.put(name, new ShardState(m, logEnd, maxTs));
                    nextId = Math.max(nextId, m.id() + 1);
                }
            }
            synchronized (createLock) {
                nextShardId = nextId;
            }
            LOG.info("rocksdb engine opened {} with {} shards (sync-writes={})", settings.dataDir(), shards.size(),
                    settings.syncWrites());
        } catch (RocksDBException e) {
            throw storageError("open", e);
        }
    }

    @Override
    protected CompletableFuture<Void> doCreateShard(ShardConfig config) {
        return onShardThread(config.name(), () -> {
            if (shards.containsKey(config.name())) {
                throw StorageException.shardExists(config.name());
            }
            ShardMeta m;
            synchronized (createLock) {
                m = new ShardMeta(nextShardId, clock.millis(), config);
                try (WriteBatch batch = new WriteBatch()) {
                    batch.put(meta, Keys.shardMeta(config.name()), ShardMetaCodec.encode(m));
                    batch.put(meta, Keys.NEXT_SHARD_ID, Keys.longValue(m.id() + 1));
                    db.write(writeOptions, batch);
                }
                nextShardId++;
            }
            shards.put(config.name(), new ShardState(m, 0, -1));
            return null;
        });
    }

    @Override
    protected CompletableFuture<Void> doDeleteShard(String shard) {
        return onShardThread(shard, () -> {
            ShardState s = shard(shard);
            long id = s.id();
            try (WriteBatch batch = new WriteBatch()) {
                batch.delete(meta, Keys.shardMeta(shard));
                batch.delete(meta, Keys.end(id));
                for (ColumnFamilyHandle cf : List.of(records, keyIndex, tagIndex, timeIndex, groupOffsets)) {
                    batch.deleteRange(cf, Keys.shardStart(id), Keys.shardEnd(id));
                }
                db.write(writeOptions, batch);
            }
            shards.remove(shard);
            return null;
        });
    }

    @Override
    protected CompletableFuture<List<ShardInfo>> doListShards(ShardFilter filter) {
        return CompletableFuture.completedFuture(shards.entrySet().stream()
                .filter(e -> filter.matches(e.getKey()))
                .map(e -> new ShardInfo(e.getValue().meta.config(), e.getValue().meta.createdAtMs(),
                        e.getValue().logEndOffset))
                .sorted(Comparator.comparing(ShardInfo::name))
                .toList());
    }

    @Override
    protected CompletableFuture<List<Long>> doBatchWrite(String shard, List<NewRecord> batch) {
        return onShardThread(shard, () -> {
            ShardState s = shard(shard);
            long offset = s.logEndOffset;
            long maxTs = s.maxTimestamp;
            List<Long> offsets = new ArrayList<>(batch.size());
            try (WriteBatch wb = new WriteBatch()) {
                for (NewRecord r : batch) {
                    wb.put(records, Keys.record(s.id(), offset), RecordCodec.encode(r));
                    if (r.key() != null) {
                        wb.put(keyIndex, Keys.termRow(Keys.termPrefix(s.id(), r.key()), offset), new byte[0]);
                    }
                    for (String tag : r.tags()) {
                        wb.put(tagIndex, Keys.termRow(Keys.termPrefix(s.id(), tag), offset), new byte[0]);
                    }
                    if (r.timestamp() > maxTs) {
                        maxTs = r.timestamp();
                        wb.put(timeIndex, Keys.time(s.id(), maxTs), Keys.longValue(offset));
                    }
                    offsets.add(offset++);
                }
                wb.put(meta, Keys.end(s.id()), ByteBuffer.allocate(16).putLong(offset).putLong(maxTs).array());
                db.write(writeOptions, wb);
            }
            s.maxTimestamp = maxTs;
            s.logEndOffset = offset;
            return offsets;
        });
    }

    @Override
    protected CompletableFuture<List<StoredRecord>> doReadByOffset(String shard, long offset, int limit) {
        return onShardThread(shard, () -> {
            ShardState s = shard(shard);
            List<StoredRecord> out = new ArrayList<>();
            try (RocksIterator it = db.newIterator(records)) {
                for (it.seek(Keys.record(s.id(), offset)); it.isValid() && out.size() < limit; it.next()) {
                    byte[] key = it.key();
                    if (Keys.readLong(key, 0) != s.id()) {
                        break;
                    }
                    long at = Keys.recordOffset(key);
                    if (at >= s.logEndOffset) {
                        break;
                    }
                    out.add(RecordCodec.decode(shard, at, it.value()));
                }
                it.status();
            }
            return out;
        });
    }

    @Override
    protected CompletableFuture<List<StoredRecord>> doReadByTag(String shard, String tag, long offset, int limit) {
        return onShardThread(shard, () -> {
            ShardState s = shard(shard);
            byte[] prefix = Keys.termPrefix(s.id(), tag);
            List<StoredRecord> out = new ArrayList<>();
            try (RocksIterator it = db.newIterator(tagIndex)) {
                for (it.seek(Keys.termRow(prefix, offset)); it.isValid() && out.size() < limit
                        && Keys.startsWith(it.key(), prefix); it.next()) {
                    long at = Keys.termRowOffset(it.key());
                    if (at >= s.logEndOffset) {
                        break;
                    }
                    byte[] value = db.get(records, Keys.record(s.id(), at));
                    if (value == null) {
                        throw indexMismatch(shard, "tag", at);
                    }
                    out.add(RecordCodec.decode(shard, at, value));
                }
                it.status();
            }
            return out;
        });
    }

    @Override
    protected CompletableFuture<Optional<StoredRecord>> doReadByKey(String shard, String key) {
        return onShardThread(shard, () -> {
            ShardState s = shard(shard);
            if (s.logEndOffset == 0) {
                return Optional.empty();
            }
            byte[] prefix = Keys.termPrefix(s.id(), key);
            try (RocksIterator it = db.newIterator(keyIndex)) {
                it.seekForPrev(Keys.termRow(prefix, s.logEndOffset - 1));
                if (it.isValid() && Keys.startsWith(it.key(), prefix)) {
                    long at = Keys.termRowOffset(it.key());
                    byte[] value = db.get(records, Keys.record(s.id(), at));
                    if (value == null) {
                        throw indexMismatch(shard, "key", at);
                    }
                    return Optional.of(RecordCodec.decode(shard, at, value));
                }
                it.status();
            }
            return Optional.empty();
        });
    }

    @Override
    protected CompletableFuture<Boolean> doDeleteByOffset(String shard, long offset) {
        return onShardThread(shard, () -> {
            ShardState s = shard(shard);
            if (offset >= s.logEndOffset) {
                throw StorageException.offsetOutOfRange(shard, offset, s.logEndOffset);
            }
            try (WriteBatch wb = new WriteBatch()) {
                boolean deleted = deleteRecord(wb, s, shard, offset);
                if (deleted) {
                    db.write(writeOptions, wb);
                }
                return deleted;
            }
        });
    }

    @Override
    protected CompletableFuture<Long> doDeleteByKey(String shard, String key) {
        return onShardThread(shard, () -> {
            ShardState s = shard(shard);
            byte[] prefix = Keys.termPrefix(s.id(), key);
            List<Long> offsets = new ArrayList<>();
            try (RocksIterator it = db.newIterator(keyIndex)) {
                for (it.seek(prefix); it.isValid() && Keys.startsWith(it.key(), prefix); it.next()) {
                    offsets.add(Keys.termRowOffset(it.key()));
                }
                it.status();
            }
            long count = 0;
            try (WriteBatch wb = new WriteBatch()) {
                for (long at : offsets) {
                    if (deleteRecord(wb, s, shard, at)) {
                        count++;
                    }
                }
                if (count > 0) {
                    db.write(writeOptions, wb);
                }
            }
            return count;
        });
    }

    /** Adds the deletion of a record and its index rows to {@code wb}; false if there is no such record. */
    private boolean deleteRecord(WriteBatch wb, ShardState s, String shard, long offset) throws RocksDBException {
        byte[] rowKey = Keys.record(s.id(), offset);
        byte[] value = db.get(records, rowKey);
        if (value == null) {
            return false;
        }
        StoredRecord r = RecordCodec.decode(shard, offset, value);
        wb.delete(records, rowKey);
        if (r.key() != null) {
            wb.delete(keyIndex, Keys.termRow(Keys.termPrefix(s.id(), r.key()), offset));
        }
        for (String tag : r.tags()) {
            wb.delete(tagIndex, Keys.termRow(Keys.termPrefix(s.id(), tag), offset));
        }
        return true;
    }

    @Override
    protected CompletableFuture<OptionalLong> doGetOffsetByTimestamp(String shard, long timestamp) {
        return onShardThread(shard, () -> {
            ShardState s = shard(shard);
            try (RocksIterator it = db.newIterator(timeIndex)) {
                it.seek(Keys.time(s.id(), timestamp));
                if (it.isValid() && Keys.readLong(it.key(), 0) == s.id()) {
                    return OptionalLong.of(Keys.readLong(it.value(), 0));
                }
                it.status();
            }
            return OptionalLong.empty();
        });
    }

    @Override
    protected CompletableFuture<OptionalLong> doGetOffsetByGroup(String group, String shard) {
        return onShardThread(shard, () -> {
            ShardState s = shard(shard);
            byte[] v = db.get(groupOffsets, Keys.group(s.id(), group));
            return v == null ? OptionalLong.empty() : OptionalLong.of(Keys.readLong(v, 0));
        });
    }

    @Override
    protected CompletableFuture<Void> doCommitOffset(String group, String shard, long offset) {
        return onShardThread(shard, () -> {
            ShardState s = shard(shard);
            db.put(groupOffsets, writeOptions, Keys.group(s.id(), group), Keys.longValue(offset));
            return null;
        });
    }

    @Override
    protected void doClose() {
        try {
            if (!executor.shutdown(30, TimeUnit.SECONDS)) {
                LOG.warn("rocksdb engine {}: operations still running after 30 s; closing anyway",
                        settings.dataDir());
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        writeOptions.close();
        handles.forEach(ColumnFamilyHandle::close);
        db.close();
        cfOptions.close();
        dbOptions.close();
        LOG.info("rocksdb engine closed {}", settings.dataDir());
    }

    private ShardState shard(String name) {
        ShardState s = shards.get(name);
        if (s == null) {
            throw StorageException.shardNotFound(name);
        }
        return s;
    }

    /** Runs {@code work} on the shard's owner thread; the future fails with the StorageException it throws. */
    private <T> CompletableFuture<T> onShardThread(String shard, ShardWork<T> work) {
        CompletableFuture<T> result = new CompletableFuture<>();
        try {
            executor.execute(shard, () -> {
                try {
                    result.complete(work.run());
                } catch (StorageException e) {
                    result.completeExceptionally(e);
                } catch (RocksDBException e) {
                    result.completeExceptionally(storageError("shard '" + shard + "'", e));
                } catch (RuntimeException e) {
                    result.completeExceptionally(new StorageException(ErrorCode.INTERNAL,
                            "rocksdb engine failed on shard '" + shard + "': " + e, e));
                }
            });
        } catch (RejectedExecutionException e) {
            result.completeExceptionally(closedError());
        }
        return result;
    }

    private StorageException storageError(String what, RocksDBException e) {
        return new StorageException(ErrorCode.STORAGE_ERROR, "rocksdb " + what + " in " + settings.dataDir()
                + " failed: " + e.getMessage(), e);
    }

    private static StorageException indexMismatch(String shard, String index, long offset) {
        return new StorageException(ErrorCode.CORRUPT_DATA, "the " + index + " index of shard '" + shard
                + "' names offset " + offset + ", which holds no record");
    }
}
