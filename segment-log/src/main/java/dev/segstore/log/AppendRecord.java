package dev.segstore.log;

import java.util.List;
import java.util.Objects;

/**
 * One record handed to {@link SegmentLog#appendAsLeader}: the log assigns its offset.
 *
 * @param key       may be null (no key)
 * @param tags      never null
 * @param timestamp milliseconds since the epoch, assigned by the caller
 * @param headers   never null
 * @param payload   never null, owned by the log after the call (not copied)
 */
public record AppendRecord(String key, List<String> tags, long timestamp, List<LogHeader> headers, byte[] payload) {
    public AppendRecord {
        tags = List.copyOf(tags);
        headers = List.copyOf(headers);
        Objects.requireNonNull(payload, "payload");
    }

    public static AppendRecord of(long timestamp, byte[] payload) {
        return new AppendRecord(null, List.of(), timestamp, List.of(), payload);
    }
}
