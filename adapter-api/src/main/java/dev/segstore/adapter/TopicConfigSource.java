package dev.segstore.adapter;

import java.util.Optional;

/**
 * Where the broker keeps its topic configuration. The {@link StorageDriverManager} asks it for a topic's
 * {@code storage_type} on every look-up, so changing a topic's type is a configuration change here and
 * nothing else (records already stored stay in the engine that stored them).
 */
@FunctionalInterface
public interface TopicConfigSource {
    /** The topic's {@code storage_type}, or empty if the topic sets none. */
    Optional<String> storageType(String topic);
}
