package dev.segstore.log.format;

import java.nio.ByteBuffer;
import java.util.zip.CRC32C;

/**
 * The 24-byte header that starts every segment and index file (big-endian):
 * <pre>
 *  0  u32  magic        which kind of file: {@link #SEGMENT_MAGIC}, {@link #OFFSET_INDEX_MAGIC}, {@link #TIME_INDEX_MAGIC}
 *  4  u16  version      format version of that kind of file (1)
 *  6  u16  flags        0
 *  8  i64  baseOffset   the offset of the segment's first record; equals the number in the file name
 * 16  u32  reserved     0
 * 20  u32  crc          CRC32C of bytes [0, 20)
 * </pre>
 */
public record FileHeader(int magic, int version, long baseOffset) {
    public static final int SIZE = 24;
    /** "SGLG": a segment file. */
    public static final int SEGMENT_MAGIC = 0x53474C47;
    /** "SGOX": a sparse offset index. */
    public static final int OFFSET_INDEX_MAGIC = 0x53474F58;
    /** "SGTX": a sparse time index. */
    public static final int TIME_INDEX_MAGIC = 0x53475458;
    public static final int VERSION = 1;

    public ByteBuffer encode() {
        ByteBuffer buf = ByteBuffer.allocate(SIZE);
        buf.putInt(magic).putShort((short) version).putShort((short) 0).putLong(baseOffset).putInt(0);
        CRC32C crc = new CRC32C();
        crc.update(buf.array(), 0, 20);
        buf.putInt((int) crc.getValue());
        return buf.flip();
    }

    /**
     * Decodes and checks a header: magic, version, checksum and base offset must all be what the caller
     * expects, or a {@link FormatException} says which one is not.
     */
    public static FileHeader decode(ByteBuffer buf, int expectedMagic, long expectedBaseOffset) {
        if (buf.remaining() < SIZE) {
            throw new FormatException("file is shorter than its " + SIZE + "-byte header (" + buf.remaining() + " bytes)");
        }
        int start = buf.position();
        int magic = buf.getInt(start);
        if (magic != expectedMagic) {
            throw new FormatException(String.format("bad magic 0x%08x, expected 0x%08x", magic, expectedMagic));
        }
        CRC32C crc = new CRC32C();
        ByteBuffer covered = buf.duplicate().position(start).limit(start + 20);
        crc.update(covered);
        if ((int) crc.getValue() != buf.getInt(start + 20)) {
            throw new FormatException("header checksum mismatch");
        }
        int version = Short.toUnsignedInt(buf.getShort(start + 4));
        if (version != VERSION) {
            throw new FormatException("unsupported format version " + version + " (this build reads " + VERSION + ")");
        }
        long base = buf.getLong(start + 8);
        if (base != expectedBaseOffset) {
            throw new FormatException("header says base offset " + base + " but the file name says " + expectedBaseOffset);
        }
        return new FileHeader(magic, version, base);
    }
}
