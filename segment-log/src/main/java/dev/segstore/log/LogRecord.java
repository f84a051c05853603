package dev.segstore.log;

import java.util.List;

/**
 * A record read back from the log.
 *
 * @param offset      its offset in the log
 * @param leaderEpoch the epoch of the leader that appended its batch
 * @param key         may be null
 */
public record LogRecord(long offset, int leaderEpoch, String key, List<String> tags, long timestamp,
                        List<LogHeader> headers, byte[] payload) {
}
