package dev.segstore.engine.rocksdb;

import dev.segstore.adapter.ErrorCode;
import dev.segstore.adapter.Header;
import dev.segstore.adapter.NewRecord;
import dev.segstore.adapter.StoredRecord;
import dev.segstore.adapter.StorageException;

import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The value of a row in the {@code records} column family (big-endian; the offset is in the row key):
 * <pre>
 *   u8  version = 1
 *   i64 timestamp
 *   i32 keyLength (-1 = no key)   u8[keyLength] key (UTF-8)
 *   i32 tagCount                  tagCount x (i32 length, u8[length] UTF-8)
 *   i32 headerCount               headerCount x (i32 nameLength, name, i32 valueLength, value)
 *   i32 payloadLength             u8[payloadLength] payload
 * </pre>
 * RocksDB checksums every block, so the value carries no checksum of its own.
 */
final class RecordCodec {
    static final byte VERSION = 1;

    private RecordCodec() {
    }

    static byte[] encode(NewRecord r) {
        byte[] key = r.key() == null ? null : r.key().getBytes(StandardCharsets.UTF_8);
        List<byte[]> tags = new ArrayList<>(r.tags().size());
        int size = 1 + 8 + 4 + (key == null ? 0 : key.length) + 4 + 4 + 4 + r.payload().length;
        for (String t : r.tags()) {
            byte[] b = t.getBytes(StandardCharsets.UTF_8);
            tags.add(b);
            size += 4 + b.length;
        }
        List<byte[]> headers = new ArrayList<>(r.headers().size() * 2);
        for (Header h : r.headers()) {
            byte[] n = h.name().getBytes(StandardCharsets.UTF_8);
            byte[] v = h.value().getBytes(StandardCharsets.UTF_8);
            headers.add(n);
            headers.add(v);
            size += 8 + n.length + v.length;
        }
        ByteBuffer buf = ByteBuffer.allocate(size);
        buf.put(VERSION).putLong(r.timestamp());
        putBytesOrNull(buf, key);
        buf.putInt(tags.size());
        tags.forEach(b -> putBytesOrNull(buf, b));
        buf.putInt(r.headers().size());
        headers.forEach(b -> putBytesOrNull(buf, b));
        putBytesOrNull(buf, r.payload());
        return buf.array();
    }

    static StoredRecord decode(String shard, long offset, byte[] value) {
        try {
            ByteBuffer buf = ByteBuffer.wrap(value);
            byte version = buf.get();
            if (version != VERSION) {
                throw corrupt(shard, offset, "unknown record format version " + version);
            }
            long timestamp = buf.getLong();
            String key = string(buf);
            int tagCount = count(buf, shard, offset);
            Set<String> tags = new HashSet<>();
            for (int i = 0; i < tagCount; i++) {
                tags.add(string(buf));
            }
            int headerCount = count(buf, shard, offset);
            List<Header> headers = new ArrayList<>(headerCount);
            for (int i = 0; i < headerCount; i++) {
                headers.add(new Header(string(buf), string(buf)));
            }
            byte[] payload = bytes(buf);
            if (payload == null || buf.hasRemaining()) {
                throw corrupt(shard, offset, "bad payload framing");
            }
            return new StoredRecord(offset, key, tags, timestamp, headers, payload);
        } catch (BufferUnderflowException | IllegalArgumentException | NullPointerException e) {
            throw corrupt(shard, offset, e.toString());
        }
    }

    private static int count(ByteBuffer buf, String shard, long offset) {
        int n = buf.getInt();
        if (n < 0 || n > buf.remaining()) {
            throw corrupt(shard, offset, "bad count " + n);
        }
        return n;
    }

    private static void putBytesOrNull(ByteBuffer buf, byte[] b) {
        if (b == null) {
            buf.putInt(-1);
        } else {
            buf.putInt(b.length).put(b);
        }
    }

    private static byte[] bytes(ByteBuffer buf) {
        int len = buf.getInt();
        if (len == -1) {
            return null;
        }
        if (len < 0 || len > buf.remaining()) {
            throw new IllegalArgumentException("bad length " + len);
        }
        byte[] b = new byte[len];
        buf.get(b);
        return b;
    }

    private static String string(ByteBuffer buf) {
        byte[] b = bytes(buf);
        return b == null ? null : new String(b, StandardCharsets.UTF_8);
    }

    private static StorageException corrupt(String shard, long offset, String why) {
        return new StorageException(ErrorCode.CORRUPT_DATA, "record " + offset + " of shard '" + shard
                + "' cannot be decoded: " + why);
    }
}
