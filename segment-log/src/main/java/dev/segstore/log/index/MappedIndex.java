package dev.segstore.log.index;

import dev.segstore.log.format.FileHeader;
import dev.segstore.log.format.FormatException;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * A memory-mapped file of fixed-width entries after a {@link FileHeader}: the common part of
 * {@link OffsetIndex} and {@link TimeIndex}.
 *
 * <p>While its segment is active, the file is sized for {@code maxEntries} and entries are appended by the
 * data directory's I/O thread only; readers on any thread see the first {@link #entries()} entries (a volatile
 * count published after each entry is written). {@link #trim} cuts the file to its entries, which is the state
 * of a cleanly closed or sealed index. Indexes are derived data: they are not forced with every append, and
 * after an unclean shutdown they are rebuilt from the segment. Mappings are released by the garbage
 * collector, never unmapped by hand, so a reader can never touch an unmapped page.
 */
abstract class MappedIndex {
    private final Path file;
    private final long baseOffset;
    private final int entryWidth;
    private volatile MappedByteBuffer map;
    private volatile int entries;
    private int capacity;

    MappedIndex(Path file, long baseOffset, int entryWidth, Mapping mapping) {
        this.file = file;
        this.baseOffset = baseOffset;
        this.entryWidth = entryWidth;
        this.map = mapping.map();
        this.entries = mapping.entries();
        this.capacity = mapping.capacity();
    }

    /** A mapping and how many valid entries it holds. */
    record Mapping(MappedByteBuffer map, int entries, int capacity) {
    }

    /** Creates (or overwrites) an empty index with room for {@code maxEntries}. */
    static Mapping create(Path file, int magic, long baseOffset, int entryWidth, int maxEntries) throws IOException {
        // Never shrinks an existing file: a reader may still hold a mapping of it, and touching a mapped page
        // past the end of a file is a fatal bus error. Old entries beyond the (zero) count are ignored.
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.READ,
                StandardOpenOption.WRITE)) {
            ch.write(new FileHeader(magic, FileHeader.VERSION, baseOffset).encode(), 0);
            long size = FileHeader.SIZE + (long) maxEntries * entryWidth;
            if (ch.size() < size) {
                ch.write(ByteBuffer.allocate(1), size - 1);
            }
            return new Mapping(ch.map(FileChannel.MapMode.READ_WRITE, 0, size), 0, maxEntries);
        }
    }

    /**
     * Opens an existing, trimmed index and checks its header and length; the subclass then checks the
     * entries. With {@code maxEntries > 0} the file is extended so that more entries can be appended.
     *
     * @throws FormatException if the file is not a valid trimmed index
     */
    static Mapping openExisting(Path file, int magic, long baseOffset, int entryWidth, int maxEntries) throws IOException {
        if (!Files.exists(file)) {
            throw new FormatException("index file " + file.getFileName() + " is missing");
        }
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            long size = ch.size();
            ByteBuffer header = ByteBuffer.allocate(FileHeader.SIZE);
            ch.read(header, 0);
            FileHeader.decode(header.flip(), magic, baseOffset);
            if ((size - FileHeader.SIZE) % entryWidth != 0) {
                throw new FormatException("index length " + size + " is not a whole number of entries");
            }
            int held = (int) ((size - FileHeader.SIZE) / entryWidth);
            int capacity = Math.max(maxEntries, held);
            long mapped = FileHeader.SIZE + (long) capacity * entryWidth;
            if (mapped > size) {
                ch.write(ByteBuffer.allocate(1), mapped - 1);
            }
            return new Mapping(ch.map(FileChannel.MapMode.READ_WRITE, 0, mapped), held, capacity);
        }
    }

    public Path file() {
        return file;
    }

    public long baseOffset() {
        return baseOffset;
    }

    public int entries() {
        return entries;
    }

    public boolean isFull() {
        return entries >= capacity;
    }

    protected ByteBuffer view() {
        return map.duplicate();
    }

    /**
     * The last entry {@code i} for which {@code atOrBelow.test(i)} holds, or -1; the predicate must hold for a
     * prefix of the entries (they are sorted), so a binary search finds the boundary.
     */
    protected int lastEntryWhere(java.util.function.IntPredicate atOrBelow) {
        int lo = 0;
        int hi = entries() - 1;
        int found = -1;
        while (lo <= hi) {
            int mid = (lo + hi) >>> 1;
            if (atOrBelow.test(mid)) {
                found = mid;
                lo = mid + 1;
            } else {
                hi = mid - 1;
            }
        }
        return found;
    }

    protected int entryPosition(int n) {
        return FileHeader.SIZE + n * entryWidth;
    }

    /** Called by the subclass after it wrote entry number {@link #entries()}; publishes it to readers. */
    protected void published() {
        entries = entries + 1;
    }

    protected MappedByteBuffer map() {
        return map;
    }

    /** Forgets the entries from {@code n} on. */
    public void truncateToEntries(int n) {
        if (n < entries) {
            entries = n;
        }
    }

    /** Forces the mapped pages and cuts the file to its entries: the state of a closed or sealed index. */
    public void trim() throws IOException {
        map.force();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
            ch.truncate(entryPosition(entries));
            ch.force(true);
        }
        capacity = entries;
    }

    /** Extends a trimmed index so that entries can be appended again (an active segment reopened). */
    public void reopenForAppend(int maxEntries) throws IOException {
        if (maxEntries <= capacity) {
            return;
        }
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            long size = entryPosition(maxEntries);
            ch.write(ByteBuffer.allocate(1), size - 1);
            map = ch.map(FileChannel.MapMode.READ_WRITE, 0, size);
        }
        capacity = maxEntries;
    }

    /**
     * This index, which must hold no entry, as the index of a segment starting at {@code newBase}: the header is
     * rewritten in place (in the mapping: not forced, as the index is derived data rebuilt after an unclean shutdown);
     * the caller renames the file (through its file layer). The returned mapping is the subclass's to wrap, with the
     * new file's path; this object is not used again.
     */
    protected Mapping rebased(int magic, long newBase) {
        if (entries != 0) {
            throw new IllegalStateException("index " + file.getFileName() + " holds " + entries + " entries: only an empty index moves");
        }
        map.duplicate().position(0).put(new FileHeader(magic, FileHeader.VERSION, newBase).encode());
        return new Mapping(map, 0, capacity);
    }

    public void delete() throws IOException {
        Files.deleteIfExists(file);
    }
}
