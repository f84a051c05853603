package dev.segstore.log.format;

import java.nio.ByteBuffer;

/**
 * Unsigned LEB128 varints (7 bits per byte, low bits first) and zig-zag varlongs, as protobuf encodes them.
 * Decoding rejects encodings longer than the type allows, so garbage cannot spin or overflow.
 */
public final class VarInts {
    private VarInts() {
    }

    public static int sizeOfUnsigned(int value) {
        int size = 1;
        while ((value & ~0x7F) != 0) {
            value >>>= 7;
            size++;
        }
        return size;
    }

    public static int sizeOfZigZag(long value) {
        long v = (value << 1) ^ (value >> 63);
        int size = 1;
        while ((v & ~0x7FL) != 0) {
            v >>>= 7;
            size++;
        }
        return size;
    }

    public static void putUnsigned(ByteBuffer buf, int value) {
        while ((value & ~0x7F) != 0) {
            buf.put((byte) ((value & 0x7F) | 0x80));
            value >>>= 7;
        }
        buf.put((byte) value);
    }

    public static void putZigZag(ByteBuffer buf, long value) {
        long v = (value << 1) ^ (value >> 63);
        while ((v & ~0x7FL) != 0) {
            buf.put((byte) ((v & 0x7F) | 0x80));
            v >>>= 7;
        }
        buf.put((byte) v);
    }

    /** Reads an unsigned varint that must fit a non-negative int; throws {@link FormatException} otherwise. */
    public static int getUnsigned(ByteBuffer buf) {
        int result = 0;
        for (int shift = 0; shift < 35; shift += 7) {
            if (!buf.hasRemaining()) {
                throw new FormatException("varint runs past the end of the record");
            }
            byte b = buf.get();
            result |= (b & 0x7F) << shift;
            if ((b & 0x80) == 0) {
                if (result < 0 || (shift == 28 && (b & 0x70) != 0)) {
                    throw new FormatException("varint out of range");
                }
                return result;
            }
        }
        throw new FormatException("varint longer than 5 bytes");
    }

    public static long getZigZag(ByteBuffer buf) {
        long raw = 0;
        for (int shift = 0; shift < 70; shift += 7) {
            if (!buf.hasRemaining()) {
                throw new FormatException("varlong runs past the end of the record");
            }
            byte b = buf.get();
            raw |= (long) (b & 0x7F) << shift;
            if ((b & 0x80) == 0) {
                return (raw >>> 1) ^ -(raw & 1);
            }
        }
        throw new FormatException("varlong longer than 10 bytes");
    }
}
