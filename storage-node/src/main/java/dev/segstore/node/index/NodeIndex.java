package dev.segstore.node.index;

import org.rocksdb.ColumnFamilyDescriptor;
import org.rocksdb.ColumnFamilyHandle;
import org.rocksdb.ColumnFamilyOptions;
import org.rocksdb.DBOptions;
import org.rocksdb.ReadOptions;
import org.rocksdb.RocksDB;
import org.rocksdb.RocksDBException;
import org.rocksdb.RocksIterator;
import org.rocksdb.WriteBatch;
import org.rocksdb.WriteOptions;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The node's key and tag index over every segment replica it hosts (one RocksDB in {@code <data.dir>/index}).
 * Every replica, follower or leader, indexes the records it appends, so a new leader answers key and tag
 * reads at once. Rows (big-endian, so byte order is numeric order):
 * <pre>
 *   key_index:  i64 shardId, i64 sequence, i32 length, key UTF-8, i64 offset  -> empty
 *   tag_index:  i64 shardId, i64 sequence, i32 length, tag UTF-8, i64 offset  -> empty
 *   tombstones: i64 shardId, i64 sequence, i64 position                       -> i64 deleted offset
 *   default:    "indexed/" i64 shardId, i64 sequence                          -> i64 next offset to index
 *               "producers/" i64 shardId, i64 sequence                        -> producer state at a clean stop
 * </pre>
 * The producer state (see {@link dev.segstore.node.replica.Partition#producerSnapshot()}) is written when the node
 * stops cleanly and taken (read and deleted, with fsync) when the replica opens again, so it is never read twice.
 * Tombstones (the replica's deletes, see {@link dev.segstore.node.replica.Tombstones}) are the one part that is
 * not a hint: they are written with fsync when the shard's durability is fsync, before the delete is counted.
 * The index is a hint: a row may outlive a truncation of its replica, so readers check each offset against
 * the log. Rows are written without fsync together with the replica's "indexed up to" mark, and a replica
 * re-indexes from that mark when it opens, so a crash can delay but never lose an index entry.
 */
public final class NodeIndex implements AutoCloseable {
    static {
        RocksDB.loadLibrary();
    }

    private final RocksDB db;
    private final ColumnFamilyHandle meta;
    private final ColumnFamilyHandle keys;
    private final ColumnFamilyHandle tags;
    private final ColumnFamilyHandle tombstones;
    private final WriteOptions syncWrite = new WriteOptions().setSync(true);
    private final List<ColumnFamilyHandle> handles = new ArrayList<>();
    private final DBOptions options;
    private final WriteOptions write = new WriteOptions().setSync(false);
    /**
     * Held shared by every call into RocksDB and exclusively by {@link #close}: a RocksDB call after close reads freed
     * native memory and crashes the JVM (a thread of a closing node still at work, as a replica fetcher left waiting on
     * a call was in CI), so a late call fails with CLOSED instead, and close waits for the calls under way.
     */
    private final java.util.concurrent.locks.ReentrantReadWriteLock use = new java.util.concurrent.locks.ReentrantReadWriteLock();
    private boolean closed; // under use's write lock (read under its read lock)

    /** One record to index. */
    public record Entry(long offset, String key, List<String> tags) {
    }

    public NodeIndex(Path dir) throws RocksDBException, java.io.IOException {
        Files.createDirectories(dir);
        options = new DBOptions().setCreateIfMissing(true).setCreateMissingColumnFamilies(true);
        List<ColumnFamilyDescriptor> cfs = List.of(
                new ColumnFamilyDescriptor(RocksDB.DEFAULT_COLUMN_FAMILY, new ColumnFamilyOptions()),
                new ColumnFamilyDescriptor("key_index".getBytes(StandardCharsets.UTF_8), new ColumnFamilyOptions()),
                new ColumnFamilyDescriptor("tag_index".getBytes(StandardCharsets.UTF_8), new ColumnFamilyOptions()),
                new ColumnFamilyDescriptor("tombstones".getBytes(StandardCharsets.UTF_8), new ColumnFamilyOptions()));
        db = RocksDB.open(options, dir.toString(), cfs, handles);
        meta = handles.get(0);
        keys = handles.get(1);
        tags = handles.get(2);
        tombstones = handles.get(3);
    }

    /** Takes the shared hold for one call into RocksDB; fails if the index is closed. Release with {@link #done}. */
    private void enter() {
        use.readLock().lock();
        if (closed) {
            use.readLock().unlock();
            throw new dev.segstore.node.replica.ReplicaException(dev.segstore.adapter.ErrorCode.CLOSED, "the node's index is closed");
        }
    }

    private void done() {
        use.readLock().unlock();
    }

    private static byte[] tombstoneKey(long shardId, long sequence, long position) {
        return ByteBuffer.allocate(24).putLong(shardId).putLong(sequence).putLong(position).array();
    }

    /** Where one replica keeps its tombstones; {@code sync} writes them with fsync. */
    public dev.segstore.node.replica.Tombstones.Store tombstoneStore(long shardId, long sequence, boolean sync) {
        return new dev.segstore.node.replica.Tombstones.Store() {
            @Override
            public void save(long fromSeq, List<Long> offsets, long end) {
                enter();
                try (WriteBatch batch = new WriteBatch()) {
                    for (int i = 0; i < offsets.size(); i++) {
                        batch.put(tombstones, tombstoneKey(shardId, sequence, fromSeq + i), ByteBuffer.allocate(8).putLong(offsets.get(i)).array());
                    }
                    batch.deleteRange(tombstones, tombstoneKey(shardId, sequence, end), tombstoneKey(shardId, sequence, Long.MAX_VALUE));
                    db.write(sync ? syncWrite : write, batch);
                } catch (RocksDBException e) {
                    throw new dev.segstore.node.replica.ReplicaException(dev.segstore.adapter.ErrorCode.STORAGE_ERROR,
                            "writing tombstones of " + shardId + "-" + sequence + " failed: " + e);
                } finally {
                    done();
                }
            }

            @Override
            public List<Long> load() {
                List<Long> out = new ArrayList<>();
                byte[] p = ByteBuffer.allocate(16).putLong(shardId).putLong(sequence).array();
                enter();
                try (ReadOptions ro = new ReadOptions(); RocksIterator it = db.newIterator(tombstones, ro)) {
                    for (it.seek(tombstoneKey(shardId, sequence, 0)); it.isValid(); it.next()) {
                        byte[] k = it.key();
                        if (k.length != 24 || !ByteBuffer.wrap(k, 0, 16).equals(ByteBuffer.wrap(p))) {
                            break;
                        }
                        long position = ByteBuffer.wrap(k, 16, 8).getLong();
                        if (position != out.size()) {
                            throw new dev.segstore.node.replica.ReplicaException(dev.segstore.adapter.ErrorCode.CORRUPT_DATA,
                                    "tombstones of " + shardId + "-" + sequence + " skip from " + out.size() + " to " + position);
                        }
                        out.add(ByteBuffer.wrap(it.value()).getLong());
                    }
                } finally {
                    done();
                }
                return out;
            }
        };
    }

    private static byte[] prefix(long shardId, long sequence, String term) {
        byte[] t = term.getBytes(StandardCharsets.UTF_8);
        return ByteBuffer.allocate(20 + t.length).putLong(shardId).putLong(sequence).putInt(t.length).put(t).array();
    }

    private static byte[] row(byte[] prefix, long offset) {
        return ByteBuffer.allocate(prefix.length + 8).put(prefix).putLong(offset).array();
    }

    private static byte[] markKey(long shardId, long sequence) {
        return ByteBuffer.allocate(24).put("indexed/".getBytes(StandardCharsets.US_ASCII)).putLong(shardId).putLong(sequence).array();
    }

    /** Indexes {@code entries} (offsets ascending) and records that everything below {@code nextOffset} is indexed. */
    public void index(long shardId, long sequence, List<Entry> entries, long nextOffset) throws RocksDBException {
        enter();
        try (WriteBatch batch = new WriteBatch()) {
            for (Entry e : entries) {
                if (e.key() != null) {
                    batch.put(keys, row(prefix(shardId, sequence, e.key()), e.offset()), new byte[0]);
                }
                for (String t : e.tags()) {
                    batch.put(tags, row(prefix(shardId, sequence, t), e.offset()), new byte[0]);
                }
            }
            batch.put(meta, markKey(shardId, sequence), ByteBuffer.allocate(8).putLong(nextOffset).array());
            db.write(write, batch);
        } finally {
            done();
        }
    }

    /** The next offset of the replica still to be indexed (-1 when none was). */
    public long indexedUpTo(long shardId, long sequence) throws RocksDBException {
        byte[] v;
        enter();
        try {
            v = db.get(meta, markKey(shardId, sequence));
        } finally {
            done();
        }
        return v == null ? -1 : ByteBuffer.wrap(v).getLong();
    }

    public List<Long> offsetsByKey(long shardId, long sequence, String key, long fromOffset, int limit) {
        return scan(keys, shardId, sequence, key, fromOffset, limit);
    }

    public List<Long> offsetsByTag(long shardId, long sequence, String tag, long fromOffset, int limit) {
        return scan(tags, shardId, sequence, tag, fromOffset, limit);
    }

    private List<Long> scan(ColumnFamilyHandle cf, long shardId, long sequence, String term, long fromOffset, int limit) {
        byte[] p = prefix(shardId, sequence, term);
        List<Long> out = new ArrayList<>();
        enter();
        try (ReadOptions ro = new ReadOptions(); RocksIterator it = db.newIterator(cf, ro)) {
            for (it.seek(row(p, Math.max(0, fromOffset))); it.isValid() && out.size() < limit; it.next()) {
                byte[] k = it.key();
                if (k.length != p.length + 8 || !ByteBuffer.wrap(k, 0, p.length).equals(ByteBuffer.wrap(p))) {
                    break;
                }
                out.add(ByteBuffer.wrap(k, p.length, 8).getLong());
            }
        } finally {
            done();
        }
        return out;
    }

    private static byte[] producersKey(long shardId, long sequence) {
        return ByteBuffer.allocate(26).put("producers/".getBytes(StandardCharsets.US_ASCII)).putLong(shardId).putLong(sequence).array();
    }

    /**
     * Keeps a replica's producer state from a clean stop until it opens again ({@link #takeProducerState}). Without
     * fsync: a state lost in a crash after the stop only costs a read of the log.
     */
    public void saveProducerState(long shardId, long sequence, byte[] state) throws RocksDBException {
        enter();
        try {
            db.put(meta, write, producersKey(shardId, sequence), state);
        } finally {
            done();
        }
    }

    /**
     * The producer state saved for a replica, deleted (with fsync) before it is returned, or null if none was saved.
     * Read once: the log changes after the replica opens, and a state read again later would not match it.
     */
    public byte[] takeProducerState(long shardId, long sequence) throws RocksDBException {
        byte[] key = producersKey(shardId, sequence);
        enter();
        try {
            byte[] state = db.get(meta, key);
            if (state != null) {
                db.delete(meta, syncWrite, key);
            }
            return state;
        } finally {
            done();
        }
    }

    /** Drops every row of a replica (it was deleted here). */
    public void dropSegment(long shardId, long sequence) throws RocksDBException {
        byte[] from = ByteBuffer.allocate(16).putLong(shardId).putLong(sequence).array();
        byte[] to = ByteBuffer.allocate(16).putLong(shardId).putLong(sequence + 1).array();
        enter();
        try {
            db.deleteRange(keys, from, to);
            db.deleteRange(tags, from, to);
            db.deleteRange(tombstones, from, to);
            db.delete(meta, markKey(shardId, sequence));
            db.delete(meta, producersKey(shardId, sequence));
        } finally {
            done();
        }
    }

    @Override
    public void close() {
        use.writeLock().lock(); // waits for the calls under way
        try {
            if (closed) {
                return;
            }
            closed = true;
            handles.forEach(ColumnFamilyHandle::close);
            db.close();
            options.close();
            write.close();
            syncWrite.close();
        } finally {
            use.writeLock().unlock();
        }
    }
}
