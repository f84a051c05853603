package dev.segstore.log;

/**
 * Settings of one log (a shard's replica on this node). Immutable; every value checked here, once.
 *
 * @param segmentBytes       roll to a new segment file before this size is exceeded (64 KiB .. 1 GiB)
 * @param segmentMs          roll when the active segment's first append is this old (&gt;= 1)
 * @param indexIntervalBytes bytes between two entries of the sparse indexes (&gt;= 64)
 * @param maxBatchBytes      largest batch accepted, bytes as encoded (&lt;= 64 MiB)
 * @param retentionMs        delete sealed segments whose newest record is older; -1 keeps them
 * @param retentionBytes     delete the oldest sealed segments while the log is larger; -1 keeps them
 */
public record LogConfig(long segmentBytes, long segmentMs, int indexIntervalBytes, int maxBatchBytes,
                        long retentionMs, long retentionBytes) {

    public static final LogConfig DEFAULT = new LogConfig(256L << 20, 7L * 24 * 3600 * 1000, 4096, 32 << 20, -1, -1);

    public LogConfig {
        require(segmentBytes >= 64 * 1024 && segmentBytes <= 1L << 30, "segmentBytes", segmentBytes, "64 KiB..1 GiB");
        require(segmentMs >= 1, "segmentMs", segmentMs, ">= 1");
        require(indexIntervalBytes >= 64, "indexIntervalBytes", indexIntervalBytes, ">= 64");
        require(maxBatchBytes >= 1024 && maxBatchBytes <= 64 << 20, "maxBatchBytes", maxBatchBytes, "1 KiB..64 MiB");
        require(retentionMs == -1 || retentionMs >= 1, "retentionMs", retentionMs, "-1 or >= 1");
        require(retentionBytes == -1 || retentionBytes >= 1, "retentionBytes", retentionBytes, "-1 or >= 1");
    }

    private static void require(boolean ok, String name, long value, String rule) {
        if (!ok) {
            throw LogException.invalid("log config " + name + " = " + value + " breaks the rule " + rule);
        }
    }

    public LogConfig withSegmentBytes(long bytes) {
        return new LogConfig(bytes, segmentMs, indexIntervalBytes, maxBatchBytes, retentionMs, retentionBytes);
    }

    public LogConfig withSegmentMs(long ms) {
        return new LogConfig(segmentBytes, ms, indexIntervalBytes, maxBatchBytes, retentionMs, retentionBytes);
    }

    public LogConfig withIndexIntervalBytes(int bytes) {
        return new LogConfig(segmentBytes, segmentMs, bytes, maxBatchBytes, retentionMs, retentionBytes);
    }

    public LogConfig withRetention(long ms, long bytes) {
        return new LogConfig(segmentBytes, segmentMs, indexIntervalBytes, maxBatchBytes, ms, bytes);
    }

    /** Most entries an index of one segment can need: one per interval, plus the closing time entry. */
    int maxIndexEntries() {
        return (int) Math.min(Integer.MAX_VALUE - 8, segmentBytes / indexIntervalBytes + 2);
    }
}
