package dev.segstore.adapter;

import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.Set;

/**
 * A record as a broker writes it: the store assigns its offset.
 *
 * @param key       the record key, or {@code null} for none; {@code readByKey}/{@code deleteByKey} use it
 * @param tags      the tags it carries (a set: order does not matter); {@code readByTag} uses them
 * @param timestamp milliseconds since the epoch, {@code >= 0}; {@code getOffsetByTimestamp} uses it
 * @param headers   headers in the order given
 * @param payload   the body. The store takes the array as it is: do not change it after the write.
 */
public record NewRecord(String key, Set<String> tags, long timestamp, List<Header> headers, byte[] payload) {
    public NewRecord {
        tags = Set.copyOf(Objects.requireNonNull(tags, "tags"));
        headers = List.copyOf(Objects.requireNonNull(headers, "headers"));
        Objects.requireNonNull(payload, "payload");
    }

    /** A record with only a payload and a timestamp. */
    public static NewRecord of(long timestamp, byte[] payload) {
        return new NewRecord(null, Set.of(), timestamp, List.of(), payload);
    }

    public NewRecord withKey(String newKey) {
        return new NewRecord(newKey, tags, timestamp, headers, payload);
    }

    public NewRecord withTags(String... newTags) {
        return new NewRecord(key, Set.of(newTags), timestamp, headers, payload);
    }

    public NewRecord withHeaders(Header... newHeaders) {
        return new NewRecord(key, tags, timestamp, List.of(newHeaders), payload);
    }

    /** The size this record counts against {@link Limits#MAX_RECORD_BYTES}. */
    public long sizeInBytes() {
        long size = payload.length + Utf8.length(key);
        for (String tag : tags) {
            size += Utf8.length(tag);
        }
        for (Header h : headers) {
            size += Utf8.length(h.name()) + Utf8.length(h.value());
        }
        return size;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof NewRecord r
                && timestamp == r.timestamp
                && Objects.equals(key, r.key)
                && tags.equals(r.tags)
                && headers.equals(r.headers)
                && Arrays.equals(payload, r.payload);
    }

    @Override
    public int hashCode() {
        return Objects.hash(key, tags, timestamp, headers, Arrays.hashCode(payload));
    }

    @Override
    public String toString() {
        return "NewRecord[key=" + key + ", tags=" + tags + ", timestamp=" + timestamp + ", headers=" + headers
                + ", payload=" + payload.length + " bytes]";
    }
}
