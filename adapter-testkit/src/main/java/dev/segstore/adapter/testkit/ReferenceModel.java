package dev.segstore.adapter.testkit;

import dev.segstore.adapter.ErrorCode;
import dev.segstore.adapter.NewRecord;
import dev.segstore.adapter.StoredRecord;
import dev.segstore.adapter.ShardConfig;
import dev.segstore.adapter.StorageException;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.TreeMap;

/**
 * The adapter contract in its plainest form, for model-based tests: a list per shard with {@code null}
 * for deleted records, and linear scans. Slow and obviously right. Arguments are assumed valid (the
 * property tests send only valid ones to both sides, or check validation separately).
 */
final class ReferenceModel {
    private static final class Shard {
        final ShardConfig config;
        final List<StoredRecord> log = new ArrayList<>(); // index = offset, null = deleted
        final List<Long> timestamps = new ArrayList<>(); // index = offset, deleted ones too
        final Map<String, Long> groups = new HashMap<>();

        Shard(ShardConfig config) {
            this.config = config;
        }
    }

    private final TreeMap<String, Shard> shards = new TreeMap<>();

    void createShard(ShardConfig config) {
        if (shards.containsKey(config.name())) {
            throw new StorageException(ErrorCode.SHARD_EXISTS, config.name());
        }
        shards.put(config.name(), new Shard(config));
    }

    void deleteShard(String name) {
        if (shards.remove(name) == null) {
            throw new StorageException(ErrorCode.SHARD_NOT_FOUND, name);
        }
    }

    /** "name=logEndOffset" of the shards starting with the prefix, sorted by name. */
    List<String> listShards(String prefix) {
        List<String> out = new ArrayList<>();
        shards.forEach((n, s) -> {
            if (n.startsWith(prefix)) {
                out.add(n + "=" + s.log.size());
            }
        });
        return out;
    }

    List<Long> batchWrite(String name, List<NewRecord> records) {
        Shard s = shard(name);
        List<Long> offsets = new ArrayList<>();
        for (NewRecord r : records) {
            long offset = s.log.size();
            s.log.add(StoredRecord.of(offset, r));
            s.timestamps.add(r.timestamp());
            offsets.add(offset);
        }
        return offsets;
    }

    List<StoredRecord> readByOffset(String name, long offset, int limit) {
        List<StoredRecord> out = new ArrayList<>();
        for (StoredRecord r : shard(name).log) {
            if (r != null && r.offset() >= offset && out.size() < limit) {
                out.add(r);
            }
        }
        return out;
    }

    List<StoredRecord> readByTag(String name, String tag, long offset, int limit) {
        List<StoredRecord> out = new ArrayList<>();
        for (StoredRecord r : shard(name).log) {
            if (r != null && r.offset() >= offset && r.tags().contains(tag) && out.size() < limit) {
                out.add(r);
            }
        }
        return out;
    }

    Optional<StoredRecord> readByKey(String name, String key) {
        StoredRecord newest = null;
        for (StoredRecord r : shard(name).log) {
            if (r != null && key.equals(r.key())) {
                newest = r;
            }
        }
        return Optional.ofNullable(newest);
    }

    boolean deleteByOffset(String name, long offset) {
        Shard s = shard(name);
        if (offset >= s.log.size()) {
            throw new StorageException(ErrorCode.OFFSET_OUT_OF_RANGE, String.valueOf(offset));
        }
        boolean live = s.log.get((int) offset) != null;
        s.log.set((int) offset, null);
        return live;
    }

    long deleteByKey(String name, String key) {
        Shard s = shard(name);
        long count = 0;
        for (int i = 0; i < s.log.size(); i++) {
            StoredRecord r = s.log.get(i);
            if (r != null && key.equals(r.key())) {
                s.log.set(i, null);
                count++;
            }
        }
        return count;
    }

    /** Every offset ever written counts, deleted or not. */
    OptionalLong getOffsetByTimestamp(String name, long timestamp) {
        List<Long> timestamps = shard(name).timestamps;
        for (int i = 0; i < timestamps.size(); i++) {
            if (timestamps.get(i) >= timestamp) {
                return OptionalLong.of(i);
            }
        }
        return OptionalLong.empty();
    }

    OptionalLong getOffsetByGroup(String group, String name) {
        Long o = shard(name).groups.get(group);
        return o == null ? OptionalLong.empty() : OptionalLong.of(o);
    }

    void commitOffset(String group, String name, long offset) {
        shard(name).groups.put(group, offset);
    }

    private Shard shard(String name) {
        Shard s = shards.get(name);
        if (s == null) {
            throw new StorageException(ErrorCode.SHARD_NOT_FOUND, name);
        }
        return s;
    }
}
