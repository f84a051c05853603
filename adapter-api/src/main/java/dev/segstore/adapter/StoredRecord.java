package dev.segstore.adapter;

import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.Set;

/**
 * A stored record as reads return it: its offset in the shard and what was written.
 * Treat the payload array as read-only: an engine may share it between readers.
 */
public record StoredRecord(long offset, String key, Set<String> tags, long timestamp, List<Header> headers,
                     byte[] payload) {
    public StoredRecord {
        tags = Set.copyOf(Objects.requireNonNull(tags, "tags"));
        headers = List.copyOf(Objects.requireNonNull(headers, "headers"));
        Objects.requireNonNull(payload, "payload");
    }

    public static StoredRecord of(long offset, NewRecord r) {
        return new StoredRecord(offset, r.key(), r.tags(), r.timestamp(), r.headers(), r.payload());
    }

    /** What was written, without the offset. */
    public NewRecord content() {
        return new NewRecord(key, tags, timestamp, headers, payload);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof StoredRecord r
                && offset == r.offset
                && timestamp == r.timestamp
                && Objects.equals(key, r.key)
                && tags.equals(r.tags)
                && headers.equals(r.headers)
                && Arrays.equals(payload, r.payload);
    }

    @Override
    public int hashCode() {
        return Objects.hash(offset, key, tags, timestamp, headers, Arrays.hashCode(payload));
    }

    @Override
    public String toString() {
        return "StoredRecord[offset=" + offset + ", key=" + key + ", tags=" + tags + ", timestamp=" + timestamp
                + ", headers=" + headers + ", payload=" + payload.length + " bytes]";
    }
}
