package dev.segstore.chaos;

import java.util.List;
import java.util.Objects;

/** One record a read returned: where it was, and what it held. The key may be null (no key). */
public record ReadRecord(long offset, String payload, String key, List<String> tags) {
    public ReadRecord {
        Objects.requireNonNull(payload, "payload");
        tags = List.copyOf(tags);
    }

    /** A record with no key and no tags. */
    public static ReadRecord of(long offset, String payload) {
        return new ReadRecord(offset, payload, null, List.of());
    }
}
