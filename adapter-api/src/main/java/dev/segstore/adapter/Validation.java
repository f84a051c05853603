package dev.segstore.adapter;

import java.util.List;
import java.util.regex.Pattern;

/**
 * The argument rules of the adapter contract. Every engine runs exactly these checks (through
 * {@link AbstractStorageAdapter}), so bad input fails the same way everywhere. Each rejection is an
 * {@link ErrorCode#INVALID_ARGUMENT} (or {@link ErrorCode#RECORD_TOO_LARGE}) whose message names the
 * argument, shows the value and states the rule.
 */
public final class Validation {
    private static final Pattern PREFIX_PATTERN = Pattern.compile("[A-Za-z0-9._-]{0,200}");
    private static final String NAME_RULE = "must be 1.." + Limits.MAX_NAME_LENGTH
            + " characters of [A-Za-z0-9._-], start with a letter or digit, and not contain '..'";

    private Validation() {
    }

    public static void shardName(String name) {
        name("shard", name);
    }

    public static void groupName(String name) {
        name("group", name);
    }

    private static void name(String argument, String name) {
        if (name == null) {
            throw StorageException.invalidArgument(argument, "must not be null", null);
        }
        if (!Limits.NAME_PATTERN.matcher(name).matches() || name.contains("..")) {
            throw StorageException.invalidArgument(argument, NAME_RULE, name);
        }
    }

    public static void offset(String argument, long offset) {
        if (offset < 0) {
            throw StorageException.invalidArgument(argument, "must be >= 0", offset);
        }
    }

    public static void timestamp(String argument, long timestamp) {
        if (timestamp < 0) {
            throw StorageException.invalidArgument(argument, "must be >= 0 (ms since the epoch)", timestamp);
        }
    }

    public static void limit(int limit) {
        if (limit < 1 || limit > Limits.MAX_READ_LIMIT) {
            throw StorageException.invalidArgument("limit", "must be in 1.." + Limits.MAX_READ_LIMIT, limit);
        }
    }

    public static void key(String argument, String key) {
        if (key == null) {
            throw StorageException.invalidArgument(argument, "must not be null", null);
        }
        text(argument, key, Limits.MAX_KEY_BYTES);
    }

    public static void tag(String argument, String tag) {
        if (tag == null) {
            throw StorageException.invalidArgument(argument, "must not be null", null);
        }
        text(argument, tag, Limits.MAX_TAG_BYTES);
    }

    private static void text(String argument, String value, int maxBytes) {
        if (value.isEmpty()) {
            throw StorageException.invalidArgument(argument, "must not be empty", value);
        }
        if (!Utf8.isWellFormed(value)) {
            throw StorageException.invalidArgument(argument, "must be well-formed Unicode (no lone surrogates)",
                    value);
        }
        if (Utf8.length(value) > maxBytes) {
            throw StorageException.invalidArgument(argument, "must be at most " + maxBytes + " bytes in UTF-8",
                    value);
        }
    }

    public static void record(String argument, NewRecord record) {
        if (record == null) {
            throw StorageException.invalidArgument(argument, "must not be null", null);
        }
        if (record.key() != null) {
            key(argument + ".key", record.key());
        }
        timestamp(argument + ".timestamp", record.timestamp());
        if (record.tags().size() > Limits.MAX_TAGS) {
            throw StorageException.invalidArgument(argument + ".tags", "must hold at most " + Limits.MAX_TAGS
                    + " tags", record.tags().size() + " tags");
        }
        for (String tag : record.tags()) {
            tag(argument + ".tags[]", tag);
        }
        if (record.headers().size() > Limits.MAX_HEADERS) {
            throw StorageException.invalidArgument(argument + ".headers", "must hold at most "
                    + Limits.MAX_HEADERS + " headers", record.headers().size() + " headers");
        }
        for (Header h : record.headers()) {
            if (h.name().isEmpty()) {
                throw StorageException.invalidArgument(argument + ".headers[].name", "must not be empty", "");
            }
            if (!Utf8.isWellFormed(h.name()) || !Utf8.isWellFormed(h.value())) {
                throw StorageException.invalidArgument(argument + ".headers[]",
                        "must be well-formed Unicode (no lone surrogates)", h.name());
            }
        }
        long size = record.sizeInBytes();
        if (size > Limits.MAX_RECORD_BYTES) {
            throw new StorageException(ErrorCode.RECORD_TOO_LARGE, argument + " is " + size
                    + " bytes (key + tags + headers + payload); the maximum is " + Limits.MAX_RECORD_BYTES);
        }
    }

    public static void batch(List<NewRecord> records) {
        if (records == null) {
            throw StorageException.invalidArgument("records", "must not be null", null);
        }
        if (records.isEmpty()) {
            throw StorageException.invalidArgument("records", "a batch must hold at least one record", "[]");
        }
        if (records.size() > Limits.MAX_BATCH_RECORDS) {
            throw StorageException.invalidArgument("records", "a batch must hold at most "
                    + Limits.MAX_BATCH_RECORDS + " records", records.size() + " records");
        }
        long total = 0;
        for (int i = 0; i < records.size(); i++) {
            NewRecord r = records.get(i);
            record("records[" + i + "]", r);
            total += r.sizeInBytes();
        }
        if (total > Limits.MAX_BATCH_BYTES) {
            throw new StorageException(ErrorCode.RECORD_TOO_LARGE, "batch is " + total
                    + " bytes; the maximum is " + Limits.MAX_BATCH_BYTES);
        }
    }

    public static void shardConfig(ShardConfig config) {
        if (config == null) {
            throw StorageException.invalidArgument("config", "must not be null", null);
        }
        shardName(config.name());
        if (config.replicaCount() < 1 || config.replicaCount() > Limits.MAX_REPLICA_COUNT) {
            throw StorageException.invalidArgument("config.replicaCount", "must be in 1.."
                    + Limits.MAX_REPLICA_COUNT, config.replicaCount());
        }
        if (config.minInSyncReplicas() < 1 || config.minInSyncReplicas() > config.replicaCount()) {
            throw StorageException.invalidArgument("config.minInSyncReplicas", "must be in 1..replicaCount ("
                    + config.replicaCount() + ")", config.minInSyncReplicas());
        }
        if (config.segmentBytes() < Limits.MIN_SEGMENT_BYTES || config.segmentBytes() > Limits.MAX_SEGMENT_BYTES) {
            throw StorageException.invalidArgument("config.segmentBytes", "must be in " + Limits.MIN_SEGMENT_BYTES
                    + ".." + Limits.MAX_SEGMENT_BYTES, config.segmentBytes());
        }
        if (config.retentionMs() != ShardConfig.RETAIN_FOREVER && config.retentionMs() <= 0) {
            throw StorageException.invalidArgument("config.retentionMs", "must be > 0, or -1 to keep forever",
                    config.retentionMs());
        }
        storageType("config.storageType", config.storageType());
    }

    public static void storageType(String argument, String type) {
        if (type == null || !Limits.STORAGE_TYPE_PATTERN.matcher(type).matches()) {
            throw StorageException.invalidArgument(argument,
                    "must be 1..32 characters of [a-z0-9_-], starting with a letter", type);
        }
    }

    public static void filter(ShardFilter filter) {
        if (filter == null) {
            throw StorageException.invalidArgument("filter", "must not be null", null);
        }
        if (!PREFIX_PATTERN.matcher(filter.namePrefix()).matches()) {
            throw StorageException.invalidArgument("filter.namePrefix",
                    "must be 0..200 characters of [A-Za-z0-9._-]", filter.namePrefix());
        }
    }

    /** A value as error messages show it: strings quoted and cut to 64 characters. */
    static String describe(Object value) {
        if (value == null) {
            return "null";
        }
        if (value instanceof String s) {
            return s.length() <= 64 ? "'" + s + "'" : "'" + s.substring(0, 64) + "…' (" + s.length() + " chars)";
        }
        return String.valueOf(value);
    }
}
