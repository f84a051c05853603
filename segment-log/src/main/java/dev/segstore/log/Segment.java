package dev.segstore.log;

import dev.segstore.log.format.BatchView;
import dev.segstore.log.format.FileHeader;
import dev.segstore.log.format.FormatException;
import dev.segstore.log.format.RecordBatch;
import dev.segstore.log.index.OffsetIndex;
import dev.segstore.log.index.TimeIndex;
import dev.segstore.log.io.LogChannel;
import dev.segstore.log.io.LogFiles;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.ObjIntConsumer;

/**
 * One segment file of a log, with its sparse offset and time indexes. File {@code <baseOffset>.log}, the
 * base offset as 20 decimal digits:
 * <pre>
 *  0   FileHeader (magic "SGLG", version 1, baseOffset)
 *  24  batches, back to back (layout in {@link dev.segstore.log.format.RecordBatch}); the first batch starts
 *      at baseOffset and each next batch at the previous batch's last offset + 1
 * </pre>
 *
 * <p>Threads: space is reserved ({@link #reserve}) by the log's owner under the log's lock; bytes are
 * written, indexed, forced and sealed by the data directory's I/O thread only (forced also by its force threads; a
 * log's seal, which no write can follow, seals its last segment on a force thread once the I/O thread has written
 * everything queued before it and handed it over); any thread reads the
 * published part ({@link #writtenSize()}, {@link #writtenNextOffset()}) and nothing beyond it. A reference
 * count keeps the file open while readers or zero-copy slices use it after the log deleted it.
 */
final class Segment {
    private final LogFiles files;
    private final Path dir;
    private final long baseOffset;
    private final LogChannel channel;
    private final int indexIntervalBytes;
    private final int maxIndexEntries;
    private final AtomicInteger refs = new AtomicInteger(1);
    private volatile boolean deleted;
    /** Directories to force before the file's bytes (guarded by itself); {@link #directoriesUnforced} while any. */
    private final List<Path> unforcedDirectories = new ArrayList<>(2);
    private volatile boolean directoriesUnforced;

    // Reserved by the owner (log lock).
    private long assignedSize;
    private long firstAppendMs = -1;

    // Written by the I/O thread, read by anyone.
    private volatile long writtenSize;
    private volatile long writtenNextOffset;
    private volatile long maxTimestamp = -1;
    private OffsetIndex offsetIndex;
    private TimeIndex timeIndex;

    // I/O thread only (or the force thread a log's seal was handed to, after its last write: see the class comment).
    private long bytesSinceOffsetEntry;
    private long bytesSinceTimeEntry;
    private long offsetOfMaxTimestamp = -1;
    private boolean sealed;

    private Segment(LogFiles files, Path dir, long baseOffset, LogChannel channel, LogConfig config) {
        this(files, dir, baseOffset, channel, config.indexIntervalBytes(), config.maxIndexEntries());
    }

    private Segment(LogFiles files, Path dir, long baseOffset, LogChannel channel, int indexIntervalBytes, int maxIndexEntries) {
        this.files = files;
        this.dir = dir;
        this.baseOffset = baseOffset;
        this.channel = channel;
        this.indexIntervalBytes = indexIntervalBytes;
        this.maxIndexEntries = maxIndexEntries;
    }

    static String fileName(long baseOffset, String suffix) {
        return String.format("%020d%s", baseOffset, suffix);
    }

    Path logFile() {
        return dir.resolve(fileName(baseOffset, ".log"));
    }

    private Path offsetIndexFile() {
        return dir.resolve(fileName(baseOffset, ".oix"));
    }

    private Path timeIndexFile() {
        return dir.resolve(fileName(baseOffset, ".tix"));
    }

    /** Creates a new, empty segment: the header is written (not forced) and empty indexes are created. */
    static Segment create(LogFiles files, Path dir, long baseOffset, LogConfig config) throws IOException {
        LogChannel ch = files.open(dir.resolve(fileName(baseOffset, ".log")), true);
        Segment s = new Segment(files, dir, baseOffset, ch, config);
        ch.truncate(0);
        ch.writeFully(new FileHeader(FileHeader.SEGMENT_MAGIC, FileHeader.VERSION, baseOffset).encode(), 0);
        s.offsetIndex = OffsetIndex.create(s.offsetIndexFile(), baseOffset, s.maxIndexEntries);
        s.timeIndex = TimeIndex.create(s.timeIndexFile(), baseOffset, s.maxIndexEntries);
        s.assignedSize = FileHeader.SIZE;
        s.writtenSize = FileHeader.SIZE;
        s.writtenNextOffset = baseOffset;
        return s;
    }

    /**
     * Opens an existing segment file and checks its header. Indexes are loaded afterwards by
     * {@link #loadClean} or rebuilt by {@link #recover}.
     *
     * @throws FormatException if the header is missing or wrong
     */
    static Segment open(LogFiles files, Path dir, long baseOffset, LogConfig config) throws IOException {
        LogChannel ch = files.open(dir.resolve(fileName(baseOffset, ".log")), false);
        try {
            ByteBuffer header = ByteBuffer.allocate(FileHeader.SIZE);
            ch.readFully(header, 0);
            FileHeader.decode(header.flip(), FileHeader.SEGMENT_MAGIC, baseOffset);
            Segment s = new Segment(files, dir, baseOffset, ch, config);
            s.writtenSize = ch.size();
            s.assignedSize = s.writtenSize;
            return s;
        } catch (IOException | RuntimeException e) {
            ch.close();
            throw e;
        }
    }

    /**
     * This segment, which must be empty (nothing reserved or written) and not sealed, as one starting at
     * {@code newBase}: the file's header is rewritten in place and the file and its indexes renamed, on the same open
     * channel and mappings (far cheaper than {@link #create}). The returned segment replaces this one, which is not
     * used again. Its directory's entries (the renames) are forced before any of its bytes ({@link #forceDirectoriesFirst}).
     * A crash part way leaves the file under either name, with either header, and the indexes under either name: the
     * caller's log is unclean then (it was made now), and its recovery drops a segment file whose header does not match
     * its name and rebuilds the indexes.
     */
    Segment rebaseEmpty(long newBase) throws IOException {
        if (!isEmpty() || sealed || refs.get() != 1) {
            throw new IllegalStateException("segment " + logFile().getFileName() + " is not an empty segment of its own: it cannot move");
        }
        Segment moved = new Segment(files, dir, newBase, channel, indexIntervalBytes, maxIndexEntries);
        channel.writeFully(new FileHeader(FileHeader.SEGMENT_MAGIC, FileHeader.VERSION, newBase).encode(), 0);
        moved.offsetIndex = offsetIndex.rebase(moved.offsetIndexFile(), newBase);
        moved.timeIndex = timeIndex.rebase(moved.timeIndexFile(), newBase);
        files.rename(offsetIndexFile(), moved.offsetIndexFile());
        files.rename(timeIndexFile(), moved.timeIndexFile());
        files.rename(logFile(), moved.logFile()); // last: until here a crash leaves the file under its old name
        moved.assignedSize = FileHeader.SIZE;
        moved.writtenSize = FileHeader.SIZE;
        moved.writtenNextOffset = newBase;
        synchronized (unforcedDirectories) {
            // Handed over: a force of them still queued for this object (the log's deferred one, from its open) finds
            // nothing left, so it cannot act on a directory the moved segment's log may since have deleted.
            for (Path d : unforcedDirectories) {
                moved.forceDirectoriesFirst(d);
            }
            unforcedDirectories.clear();
            directoriesUnforced = false;
        }
        moved.forceDirectoriesFirst(dir); // the renames: durable before any byte of the moved file
        return moved;
    }

    long baseOffset() {
        return baseOffset;
    }

    LogChannel channel() {
        return channel;
    }

    long writtenSize() {
        return writtenSize;
    }

    long writtenNextOffset() {
        return writtenNextOffset;
    }

    /** Largest record timestamp in the segment, -1 when empty. */
    long maxTimestamp() {
        return maxTimestamp;
    }

    boolean isEmpty() {
        return writtenNextOffset == baseOffset && assignedSize == FileHeader.SIZE;
    }

    // ---- owner side ----------------------------------------------------------------------------------

    long assignedSize() {
        return assignedSize;
    }

    long firstAppendMs() {
        return firstAppendMs;
    }

    /** Reserves {@code size} bytes at the end; returns their position. */
    long reserve(int size, long nowMs) {
        long position = assignedSize;
        assignedSize += size;
        if (firstAppendMs < 0) {
            firstAppendMs = nowMs;
        }
        return position;
    }

    // ---- I/O thread ----------------------------------------------------------------------------------

    void write(ByteBuffer bytes, long position) throws IOException {
        channel.writeFully(bytes, position);
    }

    /** Indexes and publishes a batch that is now written at {@code position}. */
    void onWritten(long position, int size, long batchBaseOffset, long nextOffset, long batchMaxTimestamp) {
        if (bytesSinceOffsetEntry >= indexIntervalBytes) {
            offsetIndex.append(batchBaseOffset, (int) position);
            bytesSinceOffsetEntry = 0;
        }
        bytesSinceOffsetEntry += size;
        if (batchMaxTimestamp > maxTimestamp) {
            offsetOfMaxTimestamp = batchBaseOffset;
            if (bytesSinceTimeEntry >= indexIntervalBytes || timeIndex.entries() == 0) {
                timeIndex.maybeAppend(batchMaxTimestamp, batchBaseOffset);
                bytesSinceTimeEntry = 0;
            }
            maxTimestamp = batchMaxTimestamp;
        }
        bytesSinceTimeEntry += size;
        writtenNextOffset = nextOffset;
        writtenSize = position + size;
    }

    void force() throws IOException {
        forceDirectories();
        channel.force();
    }

    /**
     * {@code dir}'s entries (the file's, or this log directory's in its parent) were not forced when the file was
     * created: they are forced before any of its bytes ({@link #forceDirectories}), so no byte of the file is
     * counted durable while a crash could still lose the file. Creating a log or a segment file so costs its
     * caller no force: a roll creates one on every replica of the next segment at once, on the writes' path.
     */
    void forceDirectoriesFirst(Path dir) {
        synchronized (unforcedDirectories) {
            unforcedDirectories.add(dir);
            directoriesUnforced = true;
        }
    }

    /**
     * Forces the directories {@link #forceDirectoriesFirst} named, if not done yet; any thread. Every force of
     * the file's bytes calls it first. Cleared only once forced, so a caller that finds nothing left to force
     * knows they are. Nothing is left to force once the segment is deleted (its log is closed first, which forced
     * them; a truncation deletes files of a directory that stays).
     */
    void forceDirectories() throws IOException {
        if (!directoriesUnforced) {
            return;
        }
        synchronized (unforcedDirectories) {
            while (!unforcedDirectories.isEmpty() && !deleted) {
                files.forceDirectory(unforcedDirectories.get(0));
                unforcedDirectories.remove(0);
            }
            directoriesUnforced = false;
        }
    }

    /**
     * Makes the segment immutable and durable: forces the file, records the maximum timestamp in the time
     * index, and forces and trims both indexes. Idempotent.
     */
    void seal() throws IOException {
        if (sealed) {
            return;
        }
        forceDirectories();
        channel.force();
        closeIndexes();
        sealed = true;
    }

    /** Forces and trims the indexes (a sealed or cleanly closed segment). */
    private void closeIndexes() throws IOException {
        if (maxTimestamp >= 0) {
            timeIndex.maybeAppend(maxTimestamp, offsetOfMaxTimestamp);
        }
        offsetIndex.trim();
        timeIndex.trim();
    }

    /** Prepares the indexes of a reopened or truncated last segment for appends. */
    void reopenForAppend() throws IOException {
        offsetIndex.reopenForAppend(maxIndexEntries);
        timeIndex.reopenForAppend(maxIndexEntries);
        sealed = false;
    }

    /** For a clean close: force the file, trim the indexes. */
    void flushForClose() throws IOException {
        forceDirectories();
        channel.force();
        closeIndexes();
    }

    // ---- open and recovery ---------------------------------------------------------------------------

    /**
     * Loads the indexes of a segment that was closed cleanly or sealed and forced; an index that is missing
     * or invalid is rebuilt from the file. The batches after the last index entry are read to find the
     * segment's end; a bad one there means the segment is corrupt, not torn, since it was durable.
     */
    void loadClean() throws IOException {
        long size = writtenSize;
        try {
            offsetIndex = OffsetIndex.open(offsetIndexFile(), baseOffset, 0, size);
            OffsetIndex.Entry last = offsetIndex.last();
            BatchScanner scanner = new BatchScanner(channel, last.position(), size, BatchScanner.Mode.VERIFY);
            long next = last.offset();
            BatchView b;
            while ((b = scanner.next()) != null) {
                if (b.baseOffset() != next) {
                    throw new FormatException("batch at position " + scanner.position() + " starts at offset "
                            + b.baseOffset() + ", expected " + next);
                }
                next = b.nextOffset();
            }
            writtenNextOffset = next;
            timeIndex = TimeIndex.open(timeIndexFile(), baseOffset, 0, next);
            TimeIndex.Entry lastTime = timeIndex.last();
            maxTimestamp = lastTime == null ? -1 : lastTime.timestamp();
            offsetOfMaxTimestamp = lastTime == null ? -1 : lastTime.offset();
            if (next > baseOffset && lastTime == null) {
                throw new FormatException("time index of a non-empty segment is empty");
            }
            if (lastTime != null) {
                // The last entry gives the segment's maximum timestamp: check it against its batch.
                Position p = locate(lastTime.offset());
                BatchView maxBatch = new BatchScanner(channel, p.position(), size, BatchScanner.Mode.VERIFY).next();
                if (maxBatch == null || maxBatch.baseOffset() != lastTime.offset() || maxBatch.maxTimestamp() != lastTime.timestamp()) {
                    throw new FormatException("last time index entry does not match its batch");
                }
            }
            sealed = true;
        } catch (FormatException e) {
            // Indexes are derived data: rebuild them. A bad batch found while rebuilding is real corruption.
            Recovery r = recover(null);
            if (r.error() != null) {
                throw new FormatException("segment " + logFile() + " position " + r.validSize() + ": " + r.error());
            }
            seal();
        }
    }

    /** What a full scan of the segment found. {@code error} is null when every byte up to the end was valid. */
    record Recovery(long validSize, long nextOffset, String error) {
    }

    /**
     * Reads every batch from the header on, verifying checksums and offsets, and rebuilds both indexes
     * from them. Stops at the first bad batch; the caller decides whether that is a torn tail (truncate)
     * or corruption (report). {@code epochs} receives (leaderEpoch, baseOffset) of each valid batch.
     */
    Recovery recover(ObjIntConsumer<Long> epochs) throws IOException {
        long size = channel.size();
        offsetIndex = OffsetIndex.create(offsetIndexFile(), baseOffset, maxIndexEntries);
        timeIndex = TimeIndex.create(timeIndexFile(), baseOffset, maxIndexEntries);
        bytesSinceOffsetEntry = 0;
        bytesSinceTimeEntry = 0;
        maxTimestamp = -1;
        offsetOfMaxTimestamp = -1;
        writtenNextOffset = baseOffset;
        writtenSize = FileHeader.SIZE;
        BatchScanner scanner = new BatchScanner(channel, FileHeader.SIZE, size, BatchScanner.Mode.VERIFY);
        long next = baseOffset;
        String error = null;
        try {
            BatchView b;
            while ((b = scanner.next()) != null) {
                if (b.baseOffset() != next) {
                    error = "batch starts at offset " + b.baseOffset() + ", expected " + next;
                    break;
                }
                if (epochs != null) {
                    try {
                        epochs.accept(b.baseOffset(), b.leaderEpoch());
                    } catch (IllegalArgumentException e) {
                        error = e.getMessage();
                        break;
                    }
                }
                onWritten(scanner.position(), b.sizeInBytes(), b.baseOffset(), b.nextOffset(), b.maxTimestamp());
                next = b.nextOffset();
            }
        } catch (FormatException e) {
            error = e.getMessage();
        }
        long valid = error == null ? size : scanner.position();
        assignedSize = valid;
        return new Recovery(valid, next, error);
    }

    /** Cuts the file at {@code size} (a batch boundary found by {@link #recover} or a look-up) and forces it. */
    void truncateFile(long size) throws IOException {
        channel.truncate(size);
        forceDirectories();
        channel.force();
        assignedSize = size;
    }

    // ---- reads (any thread) --------------------------------------------------------------------------

    /** A batch boundary: the batch at {@code position} starts at {@code offset}. */
    record Position(long position, long offset) {
    }

    /**
     * The batch that holds {@code offset}, or the first batch after it; {@code (writtenSize, writtenNextOffset)}
     * when {@code offset} is at or past the written end.
     */
    Position locate(long offset) throws IOException {
        long size = writtenSize;
        long next = writtenNextOffset;
        if (offset >= next) {
            return new Position(size, next);
        }
        OffsetIndex.Entry entry = offsetIndex.lookup(offset);
        BatchScanner scanner = new BatchScanner(channel, entry.position(), size, BatchScanner.Mode.HEADERS);
        long expected = entry.offset();
        BatchView b;
        while ((b = scanner.next()) != null) {
            if (b.baseOffset() != expected) {
                throw new FormatException("segment " + logFile() + " position " + scanner.position()
                        + ": batch starts at offset " + b.baseOffset() + ", expected " + expected);
            }
            if (b.lastOffset() >= offset) {
                return new Position(scanner.position(), b.baseOffset());
            }
            expected = b.nextOffset();
        }
        return new Position(size, next);
    }

    /**
     * Offset of the first record whose timestamp is at least {@code timestamp}, or -1 if this segment has
     * none (among the bytes written so far).
     */
    long offsetForTimestamp(long timestamp) throws IOException {
        if (maxTimestamp < timestamp) {
            return -1;
        }
        long size = writtenSize;
        TimeIndex.Entry skip = timeIndex.lastBelow(timestamp);
        Position start = skip == null ? new Position(FileHeader.SIZE, baseOffset) : locate(skip.offset());
        BatchScanner scanner = new BatchScanner(channel, start.position(), size, BatchScanner.Mode.VERIFY);
        BatchView b;
        if (skip != null) {
            // Index entries carry no checksum: check the one we rely on against the (checksummed) batch it names.
            b = scanner.next();
            if (b == null || b.baseOffset() != skip.offset() || b.maxTimestamp() != skip.timestamp()) {
                throw new FormatException("time index entry (" + skip.timestamp() + ", " + skip.offset()
                        + ") does not match the batch at that offset");
            }
        }
        while ((b = scanner.next()) != null) {
            if (b.maxTimestamp() >= timestamp) {
                for (LogRecord r : RecordBatch.decode(b, b.baseOffset(), Long.MAX_VALUE, Integer.MAX_VALUE)) {
                    if (r.timestamp() >= timestamp) {
                        return r.offset();
                    }
                }
            }
        }
        return -1;
    }

    OffsetIndex offsetIndex() {
        return offsetIndex;
    }

    TimeIndex timeIndex() {
        return timeIndex;
    }

    // ---- life cycle ----------------------------------------------------------------------------------

    boolean retain() {
        int r;
        do {
            r = refs.get();
            if (r <= 0) {
                return false;
            }
        } while (!refs.compareAndSet(r, r + 1));
        return true;
    }

    void release() {
        if (refs.decrementAndGet() == 0) {
            try {
                channel.close();
                if (deleted) {
                    for (Path f : files()) {
                        files.delete(f);
                    }
                }
            } catch (IOException ignored) {
                // The file is gone from the log; a failed close or unlink leaves at worst an orphan that
                // the next open of the log removes.
            }
        }
    }

    /** Drops the log's own reference; the files are deleted once no reader holds the segment. */
    boolean isDeleted() {
        return deleted;
    }

    void markDeleted() {
        deleted = true;
        release();
    }

    Path[] files() {
        return new Path[] {logFile(), offsetIndexFile(), timeIndexFile()};
    }
}
