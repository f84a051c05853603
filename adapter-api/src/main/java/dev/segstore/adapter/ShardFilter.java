package dev.segstore.adapter;

import java.util.Objects;

/**
 * Which shards {@code listShards} returns: those whose name starts with {@link #namePrefix()}
 * (the empty prefix matches every shard). Results come sorted by name.
 */
public record ShardFilter(String namePrefix) {
    public ShardFilter {
        Objects.requireNonNull(namePrefix, "namePrefix");
    }

    public static ShardFilter all() {
        return new ShardFilter("");
    }

    public static ShardFilter prefix(String prefix) {
        return new ShardFilter(prefix);
    }

    public boolean matches(String shardName) {
        return shardName.startsWith(namePrefix);
    }
}
