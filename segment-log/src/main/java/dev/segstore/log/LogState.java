package dev.segstore.log;

import dev.segstore.log.format.FormatException;

import java.nio.ByteBuffer;
import java.util.zip.CRC32C;

/**
 * The file {@code log-state} of a log: whether it was closed cleanly, and its recovery point. Replaced
 * atomically. Layout (big-endian):
 * <pre>
 *  0  u32 magic "SGST"   4 u16 version = 1   6 u16 flags (bit 0: clean shutdown, bit 1: log sealed)
 *  8  i64 recoveryPoint  every segment that ends at or below it was forced and sealed
 * 16  u32 crc            CRC32C of bytes [0, 16)
 * </pre>
 * On open the log rewrites it with the clean flag cleared before it accepts writes, so a crash afterwards
 * is always seen as unclean.
 */
record LogState(boolean clean, boolean sealed, long recoveryPoint) {
    static final String FILE = "log-state";
    static final int MAGIC = 0x53475354;
    static final int VERSION = 1;
    static final int SIZE = 20;

    byte[] encode() {
        ByteBuffer buf = ByteBuffer.allocate(SIZE);
        buf.putInt(MAGIC).putShort((short) VERSION).putShort((short) ((clean ? 1 : 0) | (sealed ? 2 : 0))).putLong(recoveryPoint);
        CRC32C crc = new CRC32C();
        crc.update(buf.array(), 0, 16);
        buf.putInt((int) crc.getValue());
        return buf.array();
    }

    static LogState decode(byte[] bytes) {
        if (bytes.length != SIZE) {
            throw new FormatException("log-state has " + bytes.length + " bytes, expected " + SIZE);
        }
        ByteBuffer buf = ByteBuffer.wrap(bytes);
        if (buf.getInt(0) != MAGIC) {
            throw new FormatException(String.format("log-state has bad magic 0x%08x", buf.getInt(0)));
        }
        CRC32C crc = new CRC32C();
        crc.update(bytes, 0, 16);
        if ((int) crc.getValue() != buf.getInt(16)) {
            throw new FormatException("log-state checksum mismatch");
        }
        int version = Short.toUnsignedInt(buf.getShort(4));
        if (version != VERSION) {
            throw new FormatException("log-state version " + version + " is not supported");
        }
        int flags = buf.getShort(6);
        if ((flags & ~3) != 0) {
            throw new FormatException("log-state has unknown flags " + flags);
        }
        return new LogState((flags & 1) != 0, (flags & 2) != 0, buf.getLong(8));
    }
}
