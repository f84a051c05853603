package dev.segstore.log;

/**
 * Settings of one data directory's I/O owner.
 *
 * @param maxQueuedBytes    appends in flight (queued, written or waiting for fsync) may hold at most this many bytes
 * @param maxQueuedAppends  and be at most this many
 * @param flushPolicy       when written bytes are forced
 */
public record DirectoryConfig(long maxQueuedBytes, int maxQueuedAppends, FlushPolicy flushPolicy) {
    public static final DirectoryConfig DEFAULT = new DirectoryConfig(128L << 20, 20_000, FlushPolicy.DEFAULT);

    public DirectoryConfig {
        if (maxQueuedBytes < 1 || maxQueuedAppends < 1) {
            throw LogException.invalid("directory queue limits must be >= 1: bytes " + maxQueuedBytes
                    + ", appends " + maxQueuedAppends);
        }
        if (flushPolicy == null) {
            throw LogException.invalid("flushPolicy is required");
        }
    }

    public DirectoryConfig withFlushPolicy(FlushPolicy policy) {
        return new DirectoryConfig(maxQueuedBytes, maxQueuedAppends, policy);
    }

    public DirectoryConfig withQueueLimits(long bytes, int appends) {
        return new DirectoryConfig(bytes, appends, flushPolicy);
    }
}
