package dev.segstore.log.index;

import dev.segstore.log.format.FileHeader;
import dev.segstore.log.format.FormatException;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;

/**
 * Sparse offset index of one segment: maps an offset to the file position of a batch at or before it.
 * File {@code <baseOffset>.oix}:
 * <pre>
 *  0   FileHeader (magic "SGOX", version 1, baseOffset)
 *  24  entries, 8 bytes each, strictly increasing in both fields:
 *      u32 relativeOffset   batch base offset - segment base offset
 *      u32 position         byte position of that batch in the segment file
 * </pre>
 * An entry is added when at least {@code indexIntervalBytes} were written since the last one, so a look-up
 * reads at most about that many bytes of the segment to find its batch. See {@link MappedIndex} for threads.
 */
public final class OffsetIndex extends MappedIndex {
    public static final int ENTRY_WIDTH = 8;

    /** Position of the batch that holds {@code offset}, or of a batch before it. */
    public record Entry(long offset, int position) {
    }

    private OffsetIndex(Path file, long baseOffset, Mapping mapping) {
        super(file, baseOffset, ENTRY_WIDTH, mapping);
    }

    public static OffsetIndex create(Path file, long baseOffset, int maxEntries) throws IOException {
        return new OffsetIndex(file, baseOffset, create(file, FileHeader.OFFSET_INDEX_MAGIC, baseOffset, ENTRY_WIDTH, maxEntries));
    }

    /**
     * Opens a trimmed index and checks every entry against the segment's size.
     *
     * @throws FormatException when the file is not a valid index for that segment (the caller rebuilds it)
     */
    public static OffsetIndex open(Path file, long baseOffset, int maxEntries, long segmentSize) throws IOException {
        OffsetIndex index = new OffsetIndex(file, baseOffset,
                openExisting(file, FileHeader.OFFSET_INDEX_MAGIC, baseOffset, ENTRY_WIDTH, maxEntries));
        long lastRel = -1;
        long lastPos = FileHeader.SIZE - 1;
        ByteBuffer v = index.view();
        for (int i = 0; i < index.entries(); i++) {
            long rel = Integer.toUnsignedLong(v.getInt(index.entryPosition(i)));
            long pos = Integer.toUnsignedLong(v.getInt(index.entryPosition(i) + 4));
            if (rel <= lastRel || pos <= lastPos || pos >= segmentSize) {
                throw new FormatException("offset index entry " + i + " (" + rel + ", " + pos + ") is out of order or past the segment");
            }
            lastRel = rel;
            lastPos = pos;
        }
        return index;
    }

    /** This empty index as that of a segment starting at {@code newBase}, in {@code newFile} (see {@link MappedIndex#rebased}). */
    public OffsetIndex rebase(Path newFile, long newBase) {
        return new OffsetIndex(newFile, newBase, rebased(FileHeader.OFFSET_INDEX_MAGIC, newBase));
    }

    /** Appends an entry; the I/O thread only. Offsets and positions must grow. */
    public void append(long offset, int position) {
        if (isFull()) {
            return; // a full index only makes look-ups scan further; the segment rolls long before
        }
        int n = entries();
        int at = entryPosition(n);
        map().putInt(at, (int) (offset - baseOffset()));
        map().putInt(at + 4, position);
        published();
    }

    /** The last entry at or below {@code offset}, or the segment's first batch when there is none. */
    public Entry lookup(long offset) {
        ByteBuffer v = view();
        long rel = offset - baseOffset();
        return entryOrFirst(v, lastEntryWhere(i -> Integer.toUnsignedLong(v.getInt(entryPosition(i))) <= rel));
    }

    /** The last entry whose position is at or below {@code position}, or the segment's first batch. */
    public Entry lookupByPosition(long position) {
        ByteBuffer v = view();
        return entryOrFirst(v, lastEntryWhere(i -> Integer.toUnsignedLong(v.getInt(entryPosition(i) + 4)) <= position));
    }

    /** Entry {@code i}, or the segment's first batch for -1. */
    private Entry entryOrFirst(ByteBuffer v, int i) {
        if (i < 0) {
            return new Entry(baseOffset(), FileHeader.SIZE);
        }
        return new Entry(baseOffset() + Integer.toUnsignedLong(v.getInt(entryPosition(i))), v.getInt(entryPosition(i) + 4));
    }

    /** The last entry, or the segment's first batch when there is none. */
    public Entry last() {
        return entryOrFirst(view(), entries() - 1);
    }

    /** Forgets entries whose position is at or after {@code position} (the segment was truncated there). */
    public void truncateToPosition(int position) {
        ByteBuffer v = view();
        int n = entries();
        while (n > 0 && v.getInt(entryPosition(n - 1) + 4) >= position) {
            n--;
        }
        truncateToEntries(n);
    }
}
