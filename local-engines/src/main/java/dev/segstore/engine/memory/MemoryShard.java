package dev.segstore.engine.memory;

import dev.segstore.adapter.NewRecord;
import dev.segstore.adapter.StoredRecord;
import dev.segstore.adapter.ShardConfig;
import dev.segstore.adapter.ShardInfo;
import dev.segstore.adapter.StorageException;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.NavigableSet;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.ConcurrentSkipListSet;

/**
 * One shard held in the heap.
 *
 * <p>Thread contract: mutations ({@link #append}, deletes, {@link #markDeleted}) are serialized on the
 * shard's monitor, which keeps offsets dense and unique under concurrent writers. Reads take no lock:
 * a mutation fills the record map and the indexes first and publishes the new {@link #logEndOffset}
 * last (a volatile write), and a read looks only below the log end offset it saw, so it sees a prefix.
 *
 * <p>The time index maps each new maximum timestamp to the first offset that reached it. The first
 * offset whose timestamp is {@code >= t} is exactly the first offset at which the running maximum is
 * {@code >= t}, so one ceiling look-up answers {@code getOffsetByTimestamp} even when timestamps are not
 * in order.
 */
final class MemoryShard {
    private final ShardConfig config;
    private final long createdAtMs;
    private final ConcurrentSkipListMap<Long, StoredRecord> records = new ConcurrentSkipListMap<>();
    private final Map<String, NavigableSet<Long>> keyIndex = new ConcurrentHashMap<>();
    private final Map<String, NavigableSet<Long>> tagIndex = new ConcurrentHashMap<>();
    private final ConcurrentSkipListMap<Long, Long> timeIndex = new ConcurrentSkipListMap<>();
    private final Map<String, Long> groupOffsets = new ConcurrentHashMap<>();
    private volatile long logEndOffset;
    private long maxTimestamp = -1; // guarded by this
    private volatile boolean deleted; // written under the monitor

    MemoryShard(ShardConfig config, long createdAtMs) {
        this.config = config;
        this.createdAtMs = createdAtMs;
    }

    synchronized List<Long> append(List<NewRecord> batch) {
        ensureLive();
        long offset = logEndOffset;
        List<Long> offsets = new ArrayList<>(batch.size());
        for (NewRecord r : batch) {
            StoredRecord stored = new StoredRecord(offset, r.key(), r.tags(), r.timestamp(), r.headers(), r.payload().clone());
            records.put(offset, stored);
            if (r.key() != null) {
                keyIndex.computeIfAbsent(r.key(), k -> new ConcurrentSkipListSet<>()).add(offset);
            }
            for (String tag : r.tags()) {
                tagIndex.computeIfAbsent(tag, k -> new ConcurrentSkipListSet<>()).add(offset);
            }
            if (r.timestamp() > maxTimestamp) {
                maxTimestamp = r.timestamp();
                timeIndex.put(maxTimestamp, offset);
            }
            offsets.add(offset);
            offset++;
        }
        logEndOffset = offset; // publish
        return offsets;
    }

    synchronized boolean deleteOffset(long offset) {
        ensureLive();
        if (offset >= logEndOffset) {
            throw StorageException.offsetOutOfRange(config.name(), offset, logEndOffset);
        }
        StoredRecord removed = records.remove(offset);
        if (removed == null) {
            return false;
        }
        if (removed.key() != null) {
            unindex(keyIndex, removed.key(), offset);
        }
        for (String tag : removed.tags()) {
            unindex(tagIndex, tag, offset);
        }
        return true;
    }

    synchronized long deleteKey(String key) {
        ensureLive();
        NavigableSet<Long> offsets = keyIndex.get(key);
        if (offsets == null) {
            return 0;
        }
        long count = 0;
        for (Long offset : List.copyOf(offsets)) {
            if (deleteOffset(offset)) {
                count++;
            }
        }
        return count;
    }

    private static void unindex(Map<String, NavigableSet<Long>> index, String term, long offset) {
        NavigableSet<Long> set = index.get(term);
        if (set != null) {
            set.remove(offset);
            if (set.isEmpty()) {
                index.remove(term, set);
            }
        }
    }

    List<StoredRecord> read(long from, int limit) {
        long end = liveLogEnd();
        List<StoredRecord> out = new ArrayList<>(Math.min(limit, 64));
        if (from >= end) {
            return out;
        }
        for (StoredRecord r : records.subMap(from, true, end, false).values()) {
            out.add(copy(r));
            if (out.size() == limit) {
                break;
            }
        }
        return out;
    }

    List<StoredRecord> readTag(String tag, long from, int limit) {
        long end = liveLogEnd();
        NavigableSet<Long> offsets = tagIndex.get(tag);
        List<StoredRecord> out = new ArrayList<>();
        if (offsets == null || from >= end) {
            return out;
        }
        for (Long offset : offsets.subSet(from, true, end, false)) {
            StoredRecord r = records.get(offset);
            if (r != null) { // deleted since the index was read
                out.add(copy(r));
                if (out.size() == limit) {
                    break;
                }
            }
        }
        return out;
    }

    Optional<StoredRecord> readKey(String key) {
        long end = liveLogEnd();
        NavigableSet<Long> offsets = keyIndex.get(key);
        if (offsets == null) {
            return Optional.empty();
        }
        Iterator<Long> newestFirst = offsets.headSet(end, false).descendingIterator();
        while (newestFirst.hasNext()) {
            StoredRecord r = records.get(newestFirst.next());
            if (r != null) {
                return Optional.of(copy(r));
            }
        }
        return Optional.empty();
    }

    OptionalLong offsetForTimestamp(long timestamp) {
        long end = liveLogEnd();
        Map.Entry<Long, Long> e = timeIndex.ceilingEntry(timestamp);
        // An entry at or past 'end' belongs to a write not yet published: no visible record reaches 'timestamp'.
        return e == null || e.getValue() >= end ? OptionalLong.empty() : OptionalLong.of(e.getValue());
    }

    void commitGroup(String group, long offset) {
        ensureLive();
        groupOffsets.put(group, offset);
    }

    OptionalLong groupOffset(String group) {
        ensureLive();
        Long offset = groupOffsets.get(group);
        return offset == null ? OptionalLong.empty() : OptionalLong.of(offset);
    }

    ShardInfo info() {
        return new ShardInfo(config, createdAtMs, logEndOffset);
    }

    synchronized void markDeleted() {
        deleted = true;
        records.clear();
        keyIndex.clear();
        tagIndex.clear();
        timeIndex.clear();
        groupOffsets.clear();
    }

    private long liveLogEnd() {
        ensureLive();
        return logEndOffset;
    }

    private void ensureLive() {
        if (deleted) {
            throw StorageException.shardNotFound(config.name());
        }
    }

    private static StoredRecord copy(StoredRecord r) {
        return new StoredRecord(r.offset(), r.key(), r.tags(), r.timestamp(), r.headers(), r.payload().clone());
    }
}
