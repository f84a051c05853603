package dev.segstore.log;

import dev.segstore.log.format.BatchView;
import dev.segstore.log.format.FormatException;
import dev.segstore.log.format.RecordBatch;
import dev.segstore.log.io.LogChannel;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * Reads the batches of a segment file in order, from a batch boundary up to an end position, through a
 * reusable buffer (one read per 64 KiB, not one per batch). The buffer is sized to what is read, at most 64 KiB
 * unless a batch is larger: a look-up near the written end (a follower's fetch, which locates its offset and walks
 * to the end) reads a few KiB and allocated 64 KiB for it, twice a fetch, which made 84 % of a leader's
 * allocations at one write at a time (docs/benchmarks.md, "Fewer copies and allocations per request"). In
 * {@link Mode#VERIFY} every batch is whole and checksummed before it is returned; in {@link Mode#HEADERS} only
 * headers are read and bodies skipped, for look-ups that need positions and offsets but not records. Any framing
 * problem throws a {@link FormatException}; {@link #position()} then names where the bad batch starts.
 *
 * <p>One scanner per thread; it holds no lock and reads the file positionally.
 */
final class BatchScanner {
    enum Mode { VERIFY, HEADERS }

    private static final int CHUNK = 64 * 1024;
    private static final ByteBuffer EMPTY = ByteBuffer.allocate(0).asReadOnlyBuffer();
    private final LogChannel channel;
    private final long end;
    private final Mode mode;
    /** Allocated at the first read, as large as it (and grown for a larger one); empty until then. */
    private ByteBuffer buf = EMPTY;
    private long bufStart;
    private long position;
    private long batchPosition = -1;

    BatchScanner(LogChannel channel, long from, long end, Mode mode) {
        this.channel = channel;
        this.end = end;
        this.mode = mode;
        this.position = from;
        this.bufStart = from;
    }

    /** Position of the batch last returned by {@link #next}, or of the bad batch after it threw. */
    long position() {
        return batchPosition;
    }

    /** Position after the last batch returned. */
    long nextPosition() {
        return position;
    }

    /** The next batch, or null at {@code end}. The view is valid until the next call. */
    BatchView next() throws IOException {
        batchPosition = position;
        if (position >= end) {
            return null;
        }
        long left = end - position;
        if (left < RecordBatch.HEADER_SIZE) {
            throw new FormatException("only " + left + " bytes left at the end, less than a batch header");
        }
        ensure(mode == Mode.HEADERS ? RecordBatch.HEADER_SIZE : RecordBatch.LENGTH_FIELD);
        int at = (int) (position - bufStart);
        int length = buf.getInt(at);
        if (length < RecordBatch.MIN_BATCH_SIZE - RecordBatch.LENGTH_FIELD
                || length > RecordBatch.MAX_BATCH_SIZE - RecordBatch.LENGTH_FIELD) {
            throw new FormatException("batch length " + length + " out of range");
        }
        long size = (long) length + RecordBatch.LENGTH_FIELD;
        if (size > left) {
            throw new FormatException("batch of " + size + " bytes runs past the end (" + left + " bytes left)");
        }
        BatchView view;
        if (mode == Mode.VERIFY) {
            ensure((int) size);
            at = (int) (position - bufStart);
            view = new BatchView(buf.duplicate().limit(at + (int) size), at);
            view.verify();
        } else {
            ensure(RecordBatch.HEADER_SIZE);
            at = (int) (position - bufStart);
            view = new BatchView(buf.duplicate(), at);
            if (view.recordCount() < 1 || view.baseOffset() < 0) {
                throw new FormatException("batch header: baseOffset " + view.baseOffset() + ", recordCount " + view.recordCount());
            }
        }
        position += size;
        return view;
    }

    /** The capacity of the buffer this scanner reads through now (tests). */
    int bufferCapacity() {
        return buf.capacity();
    }

    /** Makes {@code n} bytes from {@link #position} available in the buffer. */
    private void ensure(int n) throws IOException {
        int at = (int) (position - bufStart);
        if (position >= bufStart && at + n <= buf.limit()) {
            return;
        }
        int want = (int) Math.min(Math.max(n, CHUNK), end - position);
        if (buf.capacity() < want) {
            buf = ByteBuffer.allocate(want);
        }
        buf.clear().limit(want);
        int read = channel.readFully(buf, position);
        buf.flip();
        bufStart = position;
        if (read < n) {
            throw new FormatException("file ends " + read + " bytes after position " + position + ", needed " + n);
        }
    }
}
