package dev.segstore.engine.rocksdb;

import dev.segstore.adapter.ErrorCode;
import dev.segstore.adapter.ShardConfig;
import dev.segstore.adapter.StorageException;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;

/**
 * The value of a {@code shard/<name>} row in the meta column family (big-endian):
 * <pre>
 *   u8 version = 1, i64 shardId, i64 createdAtMs, i32 replicaCount, i32 minInSyncReplicas,
 *   i64 segmentBytes, i64 retentionMs, UTF storageType (java.io.DataOutput modified UTF-8)
 * </pre>
 */
final class ShardMetaCodec {
    static final byte VERSION = 1;

    record ShardMeta(long id, long createdAtMs, ShardConfig config) {
    }

    private ShardMetaCodec() {
    }

    static byte[] encode(ShardMeta m) {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream(64);
        try (DataOutputStream out = new DataOutputStream(bytes)) {
            ShardConfig c = m.config();
            out.writeByte(VERSION);
            out.writeLong(m.id());
            out.writeLong(m.createdAtMs());
            out.writeInt(c.replicaCount());
            out.writeInt(c.minInSyncReplicas());
            out.writeLong(c.segmentBytes());
            out.writeLong(c.retentionMs());
            out.writeUTF(c.storageType());
        } catch (IOException e) {
            throw new UncheckedIOException(e); // cannot happen on a byte array
        }
        return bytes.toByteArray();
    }

    static ShardMeta decode(String name, byte[] value) {
        try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(value))) {
            byte version = in.readByte();
            if (version != VERSION) {
                throw new StorageException(ErrorCode.CORRUPT_DATA, "shard '" + name
                        + "' metadata has unknown format version " + version);
            }
            long id = in.readLong();
            long created = in.readLong();
            ShardConfig config = new ShardConfig(name, in.readInt(), in.readInt(), in.readLong(), in.readLong(),
                    in.readUTF());
            return new ShardMeta(id, created, config);
        } catch (IOException e) {
            throw new StorageException(ErrorCode.CORRUPT_DATA, "shard '" + name + "' metadata cannot be decoded: "
                    + e, e);
        }
    }
}
