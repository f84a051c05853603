package dev.segstore.log;

import dev.segstore.log.io.LogChannel;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.WritableByteChannel;

/**
 * Whole batches of a segment file as a (file, position, length) slice, for a network layer to send without
 * copying ({@link #transferTo}) or, for a local caller, to read into a buffer ({@link #read}). The slice
 * holds a reference on its segment, so the file stays open even if retention deletes it meanwhile:
 * whoever gets a slice must {@link #close} it, once.
 *
 * @param baseOffset offset of the first record of the first batch (may be below the offset asked for)
 * @param nextOffset offset after the last record of the last batch
 */
public final class FileSlice implements AutoCloseable {
    private final Segment segment;
    private final long position;
    private final int length;
    private final long baseOffset;
    private final long nextOffset;
    private boolean closed;

    FileSlice(Segment segment, long position, int length, long baseOffset, long nextOffset) {
        this.segment = segment;
        this.position = position;
        this.length = length;
        this.baseOffset = baseOffset;
        this.nextOffset = nextOffset;
    }

    /** No bytes, at {@code offset}. */
    public static FileSlice empty(long offset) {
        return new FileSlice(null, 0, 0, offset, offset);
    }

    public long position() {
        return position;
    }

    public int length() {
        return length;
    }

    public long baseOffset() {
        return baseOffset;
    }

    public long nextOffset() {
        return nextOffset;
    }

    public boolean isEmpty() {
        return length == 0;
    }

    /** The file channel, for a sender that builds its own zero-copy region (e.g. netty's FileRegion). */
    public LogChannel channel() {
        return segment == null ? null : segment.channel();
    }

    /** Sends up to {@code count} bytes from {@code from} (relative to the slice) to {@code target}. */
    public long transferTo(long from, long count, WritableByteChannel target) throws IOException {
        if (segment == null) {
            return 0;
        }
        long n = Math.min(count, length - from);
        return segment.channel().transferTo(position + from, n, target);
    }

    /** Copies the slice into a new heap buffer (for local callers and tests). */
    public ByteBuffer read() throws IOException {
        ByteBuffer buf = ByteBuffer.allocate(length);
        if (segment != null) {
            segment.channel().readFully(buf, position);
        }
        return buf.flip();
    }

    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            if (segment != null) {
                segment.release();
            }
        }
    }
}
