package dev.segstore.node.server;

import dev.segstore.adapter.ErrorCode;
import dev.segstore.log.LogRecord;
import dev.segstore.log.SegmentLog;
import dev.segstore.log.format.BatchView;
import dev.segstore.node.index.NodeIndex;
import dev.segstore.node.replica.Partition;
import dev.segstore.node.replica.ReplicaException;
import dev.segstore.protocol.node.FetchResponse;
import dev.segstore.protocol.node.IndexReadRequest;
import org.rocksdb.RocksDBException;

import java.util.ArrayList;
import java.util.List;
import java.util.function.ToLongFunction;

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
 *
 * <p>Appended batches are not read back from the log: this object observes the replica's log
 * ({@link SegmentLog.AppendObserver}) and queues the keys and tags of each batch as it is appended ({@link AppendedKeys});
 * a catch-up indexes what it finds queued for the records written since the mark, and reads back from the log only what
 * it does not find there: batches appended before a truncation began (the log's {@link SegmentLog#truncations()} count
 * moved since: the cut may have replaced them; all of them while a truncation runs or began during the catch-up's
 * first look), batches left out of a full queue (a replica's bound, or the node's {@code index.queue.max.bytes}), and any appended before this object observed the log. Reading every
 * record back cost a storage node 6-9 % of its CPU samples at saturation (docs/benchmarks.md, "The key and tag index takes
 * batches as they are appended"). As before, a truncation must be followed by {@link #resetTo} (or leave the written
 * end below the mark): a catch-up that ran across it may have indexed up to offsets the cut then replaced.
 */
final class ReplicaIndex implements SegmentLog.AppendObserver {
    private static final int CATCH_UP_RECORDS = 5_000;
    private static final int CATCH_UP_BYTES = 8 << 20;
    private static final int KEY_PAGE = 10_000;
    /** Records waiting that make a background catch-up due at once. */
    static final long BACKGROUND_RECORDS = 2_000;
    /** How long the oldest waiting record may wait for a background catch-up. */
    static final long BACKGROUND_DELAY_NANOS = java.util.concurrent.TimeUnit.SECONDS.toNanos(1);
    /** The mark not read yet from RocksDB. */
    private static final long UNREAD = Long.MIN_VALUE;
    /** Estimated heap bytes of keys and tags queued for one replica ({@link AppendedKeys}), at most. */
    static final long MAX_QUEUED_BYTES = 8 << 20;

    private final NodeIndex index;
    private final long shardId;
    private final long sequence;
    private final Partition partition;
    private final AppendedKeys appended;
    /** Reads a log's truncation count ({@link SegmentLog#truncations}). */
    private final ToLongFunction<SegmentLog> truncations;
    /** The next offset still to index, as RocksDB holds it ({@link #UNREAD} until read); under the monitor. */
    private long mark = UNREAD;
    /** When a background tick first saw records waiting (0: none waiting then); under the monitor. */
    private long waitingSinceNanos;
    /** The replica was deleted here: its rows are dropped, and nothing is written for it any more. Written under the monitor. */
    private volatile boolean closed;
    /** Records catch-ups read back from the log, and took as appended (tests); under the monitor. */
    private long recordsReadBack;
    private long recordsTaken;

    /** An index of replica {@code shardId}-{@code sequence}, its queue counted in the node's {@code budget}. */
    ReplicaIndex(NodeIndex index, long shardId, long sequence, Partition partition, AppendedKeys.Budget budget) {
        this(index, shardId, sequence, partition, new AppendedKeys(MAX_QUEUED_BYTES, budget));
    }

    /** As above, with its queue (tests). */
    ReplicaIndex(NodeIndex index, long shardId, long sequence, Partition partition, AppendedKeys appended) {
        this(index, shardId, sequence, partition, appended, SegmentLog::truncations);
    }

    /** As above, reading the log's truncation count through {@code truncations} (tests: a cut between a catch-up's two looks). */
    ReplicaIndex(NodeIndex index, long shardId, long sequence, Partition partition, AppendedKeys appended,
                 ToLongFunction<SegmentLog> truncations) {
        this.truncations = truncations;
        this.index = index;
        this.shardId = shardId;
        this.sequence = sequence;
        this.partition = partition;
        this.appended = appended;
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
        appended.close();
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

    /** The log appended {@code batch}: its keys and tags are queued for the next catch-up ({@link AppendedKeys#add}). */
    @Override
    public void appended(BatchView batch, long truncations) {
        appended.add(batch, truncations);
    }

    /** Indexes what the replica wrote since the last time: as queued by {@link #appended}, else read back from the log. */
    synchronized void catchUp() {
        waitingSinceNanos = 0;
        if (closed) {
            return;
        }
        try {
            SegmentLog log = partition.log();
            long truncations = this.truncations.applyAsLong(log);
            long from = Math.max(mark(), log.logStartOffset());
            long to = log.writtenEndOffset();
            // A truncation that ran (or runs) between the two looks may have cut batches queued with the first count
            // below `to` and appended others there since: then nothing queued is taken, all is read back.
            boolean settled = (truncations & 1) == 0 && this.truncations.applyAsLong(log) == truncations;
            List<NodeIndex.Entry> taken = new ArrayList<>();
            while (from < to) {
                AppendedKeys.Appended a = appended.peek();
                if (a != null && (a.truncations() < truncations || a.nextOffset() <= from)) {
                    appended.remove(a); // appended before a truncation began (the cut may have replaced it), or indexed already
                    continue;
                }
                boolean current = settled && a != null && a.truncations() == truncations;
                if (current && a.baseOffset() <= from && a.nextOffset() <= to) {
                    for (NodeIndex.Entry e : a.entries()) {
                        if (e.offset() >= from) {
                            taken.add(e);
                        }
                    }
                    recordsTaken += a.nextOffset() - from;
                    from = a.nextOffset();
                    appended.remove(a);
                    if (taken.size() >= CATCH_UP_RECORDS) {
                        indexTaken(taken, from);
                        taken = new ArrayList<>();
                    }
                    continue;
                }
                if (current && a.baseOffset() <= from) {
                    break; // not written yet (the written end moves by whole batches: not expected)
                }
                // Not queued (a full queue, a truncation, appended before this object observed the log): read back.
                indexTaken(taken, from);
                taken = new ArrayList<>();
                long until = current ? Math.min(a.baseOffset(), to) : to;
                long read = readBack(log, from, until);
                if (read <= from) {
                    break;
                }
                from = read;
            }
            indexTaken(taken, from);
        } catch (RocksDBException e) {
            throw storageError(e);
        }
    }

    /** Writes {@code entries} and the mark {@code next}, unless there is nothing to write. */
    private void indexTaken(List<NodeIndex.Entry> entries, long next) throws RocksDBException {
        if (!entries.isEmpty() || next != mark) {
            index.index(shardId, sequence, entries, next);
            mark = next;
        }
    }

    /** Reads the keys and tags of the records in [from, until) back from the log and indexes them; the next offset. */
    private long readBack(SegmentLog log, long from, long until) throws RocksDBException {
        while (from < until) {
            List<LogRecord> records = log.readKeysAndTags(from, CATCH_UP_RECORDS, CATCH_UP_BYTES, until); // no payload copied
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
            recordsReadBack += records.size();
        }
        return from;
    }

    /** Records catch-ups read back from the log (tests). */
    synchronized long recordsReadBack() {
        return recordsReadBack;
    }

    /** Records catch-ups took from the appended batches' queue (tests). */
    synchronized long recordsTaken() {
        return recordsTaken;
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
