package dev.segstore.chaos;

import java.util.List;
import java.util.Objects;

/**
 * One record a write asks to store. The payload is an id the harness makes unique across the whole history
 * (the checker tells records apart by it); the key may be null (no key).
 */
public record WrittenRecord(String payload, String key, List<String> tags) {
    public WrittenRecord {
        Objects.requireNonNull(payload, "payload");
        tags = List.copyOf(tags);
    }

    /** A record with no key and no tags. */
    public static WrittenRecord of(String payload) {
        return new WrittenRecord(payload, null, List.of());
    }
}
