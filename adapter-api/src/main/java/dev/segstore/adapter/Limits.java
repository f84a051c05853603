package dev.segstore.adapter;

import java.util.regex.Pattern;

/**
 * Every limit of the adapter contract, in one place. All engines enforce exactly these (through
 * {@link Validation}); docs/adapter-contract.md lists them for users.
 */
public final class Limits {
    private Limits() {
    }

    /**
     * Shard and consumer-group names: 1 to 200 characters of {@code [A-Za-z0-9._-]}, starting with a letter
     * or digit, and never containing {@code ".."}. Names become file names and key prefixes, so no name can
     * hold a path separator, start with a dot, or climb out of a directory.
     */
    public static final Pattern NAME_PATTERN = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,199}");
    public static final int MAX_NAME_LENGTH = 200;

    /** {@code storage_type} values: lower-case letters, digits, '-' and '_', starting with a letter, 1..32. */
    public static final Pattern STORAGE_TYPE_PATTERN = Pattern.compile("[a-z][a-z0-9_-]{0,31}");

    /** Upper bound of the {@code limit} argument of reads (records per call). */
    public static final int MAX_READ_LIMIT = 10_000;

    /** Largest record: key + tags + headers + payload, in bytes of their UTF-8/raw encoding. */
    public static final int MAX_RECORD_BYTES = 1024 * 1024;

    /** Most records in one {@code batchWrite}. */
    public static final int MAX_BATCH_RECORDS = 10_000;

    /** Largest {@code batchWrite} in total record bytes. */
    public static final int MAX_BATCH_BYTES = 16 * 1024 * 1024;

    /** Longest record key, in UTF-8 bytes. Keys are index keys: they should be short. */
    public static final int MAX_KEY_BYTES = 4096;

    /** Most tags on one record, and the longest tag in UTF-8 bytes. */
    public static final int MAX_TAGS = 64;
    public static final int MAX_TAG_BYTES = 255;

    /** Most headers on one record. */
    public static final int MAX_HEADERS = 256;

    /** Replica count of a shard: 1..7. */
    public static final int MAX_REPLICA_COUNT = 7;

    /** Segment size of a shard, bytes. */
    public static final long MIN_SEGMENT_BYTES = 64 * 1024;
    public static final long MAX_SEGMENT_BYTES = 1024L * 1024 * 1024;
}
