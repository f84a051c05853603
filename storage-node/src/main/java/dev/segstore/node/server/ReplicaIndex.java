package dev.segstore.node.server;

import dev.segstore.adapter.ErrorCode;
import dev.segstore.log.LogRecord;
import dev.segstore.log.SegmentLog;
import dev.segstore.node.index.NodeIndex;
import dev.segstore.node.replica.Partition;
import dev.segstore.node.replica.ReplicaException;
import dev.segstore.protocol.node.FetchResponse;
import dev.segstore.protocol.node.IndexReadRequest;
import org.rocksdb.RocksDBException;

import java.util.ArrayList;
import java.util.List;

/**
 * One replica's key and tag index: the node's RocksDB ({@link NodeIndex}) seen for one segment, kept up with
 * what the replica wrote (in the background and before each indexed read), and read through a check against
 * the log, since the index is a hint (a truncation may have replaced an indexed record). Catch-ups of a
 * replica never run at once; they take this object's monitor, not the partition's, which writes must not
 * wait on.
 *
 * <p>In the background ({@link #catchUpIfDue}) a replica is indexed once {@link #BACKGROUND_RECORDS} records wait,
 * or once the oldest waiting record was first seen {@link #BACKGROUND_DELAY_NANOS} ago, not at every tick: a node
 * hosting many shards that each take a few records a tick otherwise read each log (and wrote the index) hundreds of
 * times a second for a handful of records each (docs/benchmarks.md, "Many shards: the node's own work per shard").
 * An indexed read catches up first, as before, so it never misses a record for this. The "indexed up to" mark is
 * kept here as well as in RocksDB, so a tick that finds nothing new reads nothing; it is pulled back by a truncation
 * ({@link #resetTo}) and by any catch-up that finds it past the log's written end (a cut nobody reported).
 */
final class ReplicaIndex {
    private static final int CATCH_UP_RECORDS = 5_000;
    private static final int CATCH_UP_BYTES = 8 << 20;
    private static final int KEY_PAGE = 10_000;
    /** Records waiting that make a background catch-up due at once. */
    static final long BACKGROUND_RECORDS = 2_000;
    /** How long the oldest waiting record may wait for a background catch-up. */
    static final long BACKGROUND_DELAY_NANOS = java.util.concurrent.TimeUnit.SECONDS.toNanos(1);
    /** The mark not read yet from RocksDB. */
    private static final long UNREAD = Long.MIN_VALUE;

    private final NodeIndex index;
    private final long shardId;
    private final long sequence;
    private final Partition partition;
    /** The next offset still to index, as RocksDB holds it ({@link #UNREAD} until read); under the monitor. */
    private long mark = UNREAD;
    /** When a background tick first saw records waiting (0: none waiting then); under the monitor. */
    private long waitingSinceNanos;
    /** The replica was deleted here: its rows are dropped, and nothing is written for it any more. */
    private boolean closed;

    ReplicaIndex(NodeIndex index, long shardId, long sequence, Partition partition) {
        this.index = index;
        this.shardId = shardId;
        this.sequence = sequence;
        this.partition = partition;
    }

    /** The log was cut at {@code end} (recovery or truncation): offsets from there must be indexed again. */
    synchronized void resetTo(long end) {
        if (closed) {
            return;
        }
        try {
            if (mark() > end) {
                pullBack(end);
            }
        } catch (RocksDBException e) {
            throw storageError(e);
        }
    }

    /** The replica was deleted: a read still running on this index writes nothing for it from now on. */
    synchronized void close() {
        closed = true;
    }

    /**
     * The next offset to index. A mark past the log's written end means the log was cut since it was set (the written
     * end moves back for nothing else): it is pulled back to that end, as {@link #resetTo} does.
     */
    private long mark() throws RocksDBException {
        if (mark == UNREAD) {
            mark = index.indexedUpTo(shardId, sequence);
        }
        long written = partition.log().writtenEndOffset();
        if (mark > written) {
            pullBack(written);
        }
        return mark;
    }

    /** Records that everything from {@code end} is to be indexed again. */
    private void pullBack(long end) throws RocksDBException {
        index.index(shardId, sequence, List.of(), end);
        mark = end;
    }

    /**
     * The background's catch-up ({@code nowNanos} from {@link System#nanoTime}): indexes what the replica wrote if
     * {@link #BACKGROUND_RECORDS} records wait, or if records have waited since a tick at least
     * {@link #BACKGROUND_DELAY_NANOS} ago; otherwise only notes that records wait. Whether it indexed.
     */
    synchronized boolean catchUpIfDue(long nowNanos) {
        if (closed) {
            return false;
        }
        long waiting;
        try {
            SegmentLog log = partition.log();
            waiting = log.writtenEndOffset() - Math.max(mark(), log.logStartOffset());
        } catch (RocksDBException e) {
            throw storageError(e);
        }
        if (waiting <= 0) {
            waitingSinceNanos = 0;
            return false;
        }
        if (waitingSinceNanos == 0) {
            waitingSinceNanos = nowNanos == 0 ? 1 : nowNanos;
        }
        if (waiting < BACKGROUND_RECORDS && nowNanos - waitingSinceNanos < BACKGROUND_DELAY_NANOS) {
            return false;
        }
        catchUp();
        return true;
    }

    /** Indexes what the replica wrote since the last time. */
    synchronized void catchUp() {
        waitingSinceNanos = 0;
        if (closed) {
            return;
        }
        try {
            SegmentLog log = partition.log();
            long from = Math.max(mark(), log.logStartOffset());
            long to = log.writtenEndOffset();
            while (from < to) {
                List<LogRecord> records = log.readKeysAndTags(from, CATCH_UP_RECORDS, CATCH_UP_BYTES, to); // no payload copied
                if (records.isEmpty()) {
                    break;
                }
                List<NodeIndex.Entry> entries = new ArrayList<>(records.size());
                for (LogRecord r : records) {
                    entries.add(new NodeIndex.Entry(r.offset(), r.key(), r.tags()));
                }
                from = records.get(records.size() - 1).offset() + 1;
                index.index(shardId, sequence, entries, from);
                mark = from;
            }
        } catch (RocksDBException e) {
            throw storageError(e);
        }
    }

    /**
     * Live records below the high watermark with the key or tag {@code r.term}, from {@code r.from_offset}, at
     * most {@code r.limit} (100 when unset, 10,000 at most); with {@code newest_only}, the newest record with
     * the key.
     */
    FetchResponse read(IndexReadRequest r, boolean byKey) {
        catchUp();
        int limit = r.getLimit() <= 0 ? 100 : Math.min(r.getLimit(), 10_000);
        long hw = partition.readableHighWatermark(Hosted.Key.routeEpoch(r.getSegment()));
        FetchResponse.Builder b = FetchResponse.newBuilder().setHighWatermark(hw);
        if (byKey && r.getNewestOnly()) {
            List<Long> all = liveOffsetsByKey(r.getTerm());
            if (!all.isEmpty()) {
                b.addRecords(Records.toWire(recordHolding(all.get(all.size() - 1), r.getTerm(), true, hw)));
            }
            return b.build();
        }
        long from = Math.max(r.getFromOffset(), partition.log().logStartOffset());
        while (b.getRecordsCount() < limit) {
            List<Long> offsets = byKey ? index.offsetsByKey(shardId, sequence, r.getTerm(), from, limit)
                    : index.offsetsByTag(shardId, sequence, r.getTerm(), from, limit);
            if (offsets.isEmpty()) {
                break;
            }
            for (long o : offsets) {
                if (o >= hw || b.getRecordsCount() >= limit) {
                    break;
                }
                LogRecord rec = partition.isDeleted(o) ? null : recordHolding(o, r.getTerm(), byKey, hw);
                if (rec != null) {
                    b.addRecords(Records.toWire(rec));
                }
            }
            long last = offsets.get(offsets.size() - 1);
            if (last >= hw || offsets.size() < limit) {
                break;
            }
            from = last + 1;
        }
        return b.build();
    }

    /** The offsets below the high watermark whose record has {@code key} and is not deleted. */
    List<Long> liveOffsetsByKey(String key) {
        catchUp();
        long hw = partition.readableHighWatermark();
        List<Long> out = new ArrayList<>();
        long from = partition.log().logStartOffset();
        while (true) {
            List<Long> offsets = index.offsetsByKey(shardId, sequence, key, from, KEY_PAGE);
            for (long o : offsets) {
                if (o < hw && !partition.isDeleted(o) && recordHolding(o, key, true, hw) != null) {
                    out.add(o);
                }
            }
            if (offsets.size() < KEY_PAGE) {
                return out;
            }
            from = offsets.get(offsets.size() - 1) + 1;
        }
    }

    /** The record at {@code o} if it still holds the term, else null (the index is a hint). */
    private LogRecord recordHolding(long o, String term, boolean byKey, long hw) {
        List<LogRecord> rec = partition.log().read(o, 1, 1, hw);
        if (!rec.isEmpty() && rec.get(0).offset() == o
                && (byKey ? term.equals(rec.get(0).key()) : rec.get(0).tags().contains(term))) {
            return rec.get(0);
        }
        return null;
    }

    private ReplicaException storageError(RocksDBException e) {
        return new ReplicaException(ErrorCode.STORAGE_ERROR, "index of " + shardId + "-" + sequence + ": " + e);
    }
}
