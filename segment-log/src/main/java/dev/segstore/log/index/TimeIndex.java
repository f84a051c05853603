package dev.segstore.log.index;

import dev.segstore.log.format.FileHeader;
import dev.segstore.log.format.FormatException;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;

/**
 * Sparse time index of one segment. File {@code <baseOffset>.tix}:
 * <pre>
 *  0   FileHeader (magic "SGTX", version 1, baseOffset)
 *  24  entries, 12 bytes each, strictly increasing in both fields:
 *      i64 timestamp        the segment's running maximum record timestamp ...
 *      u32 relativeOffset   ... reached in the batch that starts at this offset
 * </pre>
 * Meaning of an entry (T, O): over every batch up to and including the one that starts at offset O, the
 * largest record timestamp is T. Entries are sparse, but the running maximum only grows, so a look-up of
 * "first record with timestamp &gt;= t" may skip every batch up to the one at the last entry with T &lt; t.
 * When a segment is sealed or closed, a last entry records the segment's maximum, so {@link #last()} restores it on open.
 */
public final class TimeIndex extends MappedIndex {
    public static final int ENTRY_WIDTH = 12;

    public record Entry(long timestamp, long offset) {
    }

    private TimeIndex(Path file, long baseOffset, Mapping mapping) {
        super(file, baseOffset, ENTRY_WIDTH, mapping);
    }

    public static TimeIndex create(Path file, long baseOffset, int maxEntries) throws IOException {
        return new TimeIndex(file, baseOffset, create(file, FileHeader.TIME_INDEX_MAGIC, baseOffset, ENTRY_WIDTH, maxEntries));
    }

    /** Opens a trimmed index and checks its entries; throws {@link FormatException} if the caller must rebuild it. */
    public static TimeIndex open(Path file, long baseOffset, int maxEntries, long nextOffset) throws IOException {
        TimeIndex index = new TimeIndex(file, baseOffset,
                openExisting(file, FileHeader.TIME_INDEX_MAGIC, baseOffset, ENTRY_WIDTH, maxEntries));
        long lastTs = Long.MIN_VALUE;
        long lastRel = -1;
        ByteBuffer v = index.view();
        for (int i = 0; i < index.entries(); i++) {
            long ts = v.getLong(index.entryPosition(i));
            long rel = Integer.toUnsignedLong(v.getInt(index.entryPosition(i) + 8));
            if (ts <= lastTs || rel <= lastRel || baseOffset + rel >= nextOffset) {
                throw new FormatException("time index entry " + i + " (" + ts + ", " + rel + ") is out of order or past the segment");
            }
            lastTs = ts;
            lastRel = rel;
        }
        return index;
    }

    /** This empty index as that of a segment starting at {@code newBase}, in {@code newFile} (see {@link MappedIndex#rebased}). */
    public TimeIndex rebase(Path newFile, long newBase) {
        return new TimeIndex(newFile, newBase, rebased(FileHeader.TIME_INDEX_MAGIC, newBase));
    }

    /** Appends an entry if it raises the maximum and lies after the last one; the I/O thread only. */
    public void maybeAppend(long timestamp, long offset) {
        Entry last = last();
        if (isFull() || (last != null && (timestamp <= last.timestamp() || offset <= last.offset()))) {
            return;
        }
        int at = entryPosition(entries());
        map().putLong(at, timestamp);
        map().putInt(at + 8, (int) (offset - baseOffset()));
        published();
    }

    /** The last entry with a timestamp below {@code timestamp}, or null if there is none. */
    public Entry lastBelow(long timestamp) {
        ByteBuffer v = view();
        int found = lastEntryWhere(i -> v.getLong(entryPosition(i)) < timestamp);
        return found < 0 ? null : entry(v, found);
    }

    /** The last entry, or null for an empty index. */
    public Entry last() {
        int n = entries();
        return n == 0 ? null : entry(view(), n - 1);
    }

    private Entry entry(ByteBuffer v, int i) {
        return new Entry(v.getLong(entryPosition(i)), baseOffset() + Integer.toUnsignedLong(v.getInt(entryPosition(i) + 8)));
    }

    /** Forgets entries at or after {@code offset}. */
    public void truncateToOffset(long offset) {
        ByteBuffer v = view();
        int n = entries();
        while (n > 0 && baseOffset() + Integer.toUnsignedLong(v.getInt(entryPosition(n - 1) + 8)) >= offset) {
            n--;
        }
        truncateToEntries(n);
    }
}
