package dev.segstore.adapter;

/**
 * What {@code listShards} says of a shard.
 *
 * @param config       its configuration
 * @param createdAtMs  when it was created, ms since the epoch
 * @param logEndOffset the offset the next write will get (= records ever written, deleted ones included)
 */
public record ShardInfo(ShardConfig config, long createdAtMs, long logEndOffset) {
    public String name() {
        return config.name();
    }
}
