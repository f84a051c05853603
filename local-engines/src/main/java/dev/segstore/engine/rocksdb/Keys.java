package dev.segstore.engine.rocksdb;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * Row keys of the rocksdb engine, big-endian so that byte order is numeric order. Every shard row starts
 * with the shard's id (8 bytes), never its name: ids are never reused, so a shard re-created under an
 * old name can never see the old shard's rows, and dropping a shard is one range delete per column
 * family over {@code [id, id + 1)}. Variable-length terms carry their length before them, so no key or
 * tag is a prefix of another's rows.
 * <pre>
 *   records        id | offset                      -> RecordCodec value
 *   key_index      id | i32 len | key   | offset    -> (empty)
 *   tag_index      id | i32 len | tag   | offset    -> (empty)
 *   time_index     id | maxTimestamp                -> offset (i64): first offset reaching that running max
 *   group_offsets  id | group (UTF-8)               -> offset (i64)
 *   meta           "shard/" name                    -> ShardMetaCodec value
 *                  "end/" id                        -> i64 logEndOffset, i64 maxTimestamp
 *                  "next-shard-id"                  -> i64
 *                  "format"                         -> u32 magic, u32 version
 * </pre>
 */
final class Keys {
    private Keys() {
    }

    static byte[] shardStart(long id) {
        return ByteBuffer.allocate(8).putLong(id).array();
    }

    static byte[] shardEnd(long id) {
        return ByteBuffer.allocate(8).putLong(id + 1).array();
    }

    static byte[] record(long id, long offset) {
        return ByteBuffer.allocate(16).putLong(id).putLong(offset).array();
    }

    static long recordOffset(byte[] key) {
        return ByteBuffer.wrap(key, 8, 8).getLong();
    }

    /** The prefix of a term's rows in key_index or tag_index: id | len | term. */
    static byte[] termPrefix(long id, String term) {
        byte[] t = term.getBytes(StandardCharsets.UTF_8);
        return ByteBuffer.allocate(12 + t.length).putLong(id).putInt(t.length).put(t).array();
    }

    static byte[] termRow(byte[] prefix, long offset) {
        return ByteBuffer.allocate(prefix.length + 8).put(prefix).putLong(offset).array();
    }

    static long termRowOffset(byte[] key) {
        return ByteBuffer.wrap(key, key.length - 8, 8).getLong();
    }

    static byte[] time(long id, long timestamp) {
        return ByteBuffer.allocate(16).putLong(id).putLong(timestamp).array();
    }

    static byte[] group(long id, String group) {
        byte[] g = group.getBytes(StandardCharsets.UTF_8);
        return ByteBuffer.allocate(8 + g.length).putLong(id).put(g).array();
    }

    static byte[] shardMeta(String name) {
        return ("shard/" + name).getBytes(StandardCharsets.UTF_8);
    }

    static final byte[] SHARD_META_PREFIX = "shard/".getBytes(StandardCharsets.UTF_8);
    static final byte[] NEXT_SHARD_ID = "next-shard-id".getBytes(StandardCharsets.UTF_8);
    static final byte[] FORMAT = "format".getBytes(StandardCharsets.UTF_8);

    static byte[] end(long id) {
        return ByteBuffer.allocate(12).put("end/".getBytes(StandardCharsets.US_ASCII)).putLong(id).array();
    }

    static byte[] longValue(long v) {
        return ByteBuffer.allocate(8).putLong(v).array();
    }

    static long readLong(byte[] b, int at) {
        return ByteBuffer.wrap(b, at, 8).getLong();
    }

    static boolean startsWith(byte[] key, byte[] prefix) {
        if (key.length < prefix.length) {
            return false;
        }
        for (int i = 0; i < prefix.length; i++) {
            if (key[i] != prefix[i]) {
                return false;
            }
        }
        return true;
    }
}
