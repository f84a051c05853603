package dev.segstore.log;

import dev.segstore.log.epoch.EpochEntry;
import dev.segstore.log.epoch.LeaderEpochCache;
import dev.segstore.log.format.BatchView;
import dev.segstore.log.format.FileHeader;
import dev.segstore.log.format.FormatException;
import dev.segstore.log.format.RecordBatch;
import dev.segstore.log.io.LogChannel;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * Reads a log directory (docs/on-disk-formats.md, "segment-log") without changing it, as {@code kafka-dump-log}
 * does for Kafka: every batch of every segment, checked (framing, checksum, header fields, each record's
 * framing), and checks that the files agree with each other: file headers and names, offsets contiguous within
 * and across segments, offset and time index entries pointing at the batches they name, each batch's leader
 * epoch the one the leader-epoch checkpoint gives its offset, the log-state file. Safe on a log a running node
 * has open (it reads only): a batch being written at the end of the newest segment may show as a torn tail then.
 *
 * <p>Problems are reported, not thrown: {@link Report#problems()} is empty for a log in good order. A torn tail
 * of the newest segment of a log not shut down cleanly is a {@link Report#notes() note}: recovery truncates it at
 * the next open, as it never held an acknowledged write.
 */
public final class LogInspector {
    /** One batch as found: where, its header fields, and its records when asked for. */
    public record Batch(Path segment, long position, int size, long baseOffset, int recordCount, int leaderEpoch,
                        long firstTimestamp, long maxTimestamp, long producerId, int baseSequence, int crc,
                        List<LogRecord> records) {
        public long lastOffset() {
            return baseOffset + recordCount - 1;
        }
    }

    /** What the inspection found. */
    public record Report(Path dir, int segments, long batches, long records, long bytes, long startOffset, long endOffset,
                         List<String> problems, List<String> notes) {
        public boolean ok() {
            return problems.isEmpty();
        }
    }

    /** Receives each batch in offset order. */
    @FunctionalInterface
    public interface BatchSink {
        void accept(Batch batch);
    }

    private final Path dir;
    private final boolean withRecords;
    private final List<String> problems = new ArrayList<>();
    private final List<String> notes = new ArrayList<>();

    private LogInspector(Path dir, boolean withRecords) {
        this.dir = dir;
        this.withRecords = withRecords;
    }

    /**
     * Inspects the log in {@code dir} (a directory holding {@code <base>.log} files); each batch goes to
     * {@code sink} (records decoded when {@code withRecords}). Throws only when {@code dir} cannot be listed.
     */
    public static Report inspect(Path dir, boolean withRecords, BatchSink sink) throws IOException {
        return new LogInspector(dir, withRecords).run(sink);
    }

    /** Whether {@code dir} looks like a log directory: it holds a segment file or a log-state file. */
    public static boolean isLogDirectory(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) {
            return false;
        }
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).anyMatch(n -> n.endsWith(".log") || n.equals(LogState.FILE));
        }
    }

    private void problem(String where, String what) {
        problems.add(where + ": " + what);
    }

    private Report run(BatchSink sink) throws IOException {
        TreeMap<Long, Path> segments = new TreeMap<>();
        try (Stream<Path> s = Files.list(dir)) {
            for (Path p : s.sorted().toList()) {
                String n = p.getFileName().toString();
                if (n.endsWith(".log")) {
                    try {
                        segments.put(Long.parseLong(n.substring(0, n.length() - 4)), p);
                    } catch (NumberFormatException e) {
                        problem(n, "not a segment name (20 digits of its base offset, then .log)");
                    }
                } else if (!n.endsWith(".oix") && !n.endsWith(".tix") && !n.equals(SegmentLog.EPOCH_FILE) && !n.equals(LogState.FILE)) {
                    problem(n, "a file a log directory does not hold (an open would refuse the log)");
                }
            }
        }
        LogState state = readState();
        List<EpochEntry> epochs = readEpochs(!segments.isEmpty());
        long batches = 0;
        long records = 0;
        long bytes = 0;
        long expected = -1;
        long start = segments.isEmpty() ? -1 : segments.firstKey();
        for (Map.Entry<Long, Path> e : segments.entrySet()) {
            boolean newest = e.getKey().equals(segments.lastKey());
            SegmentScan scan = scanSegment(e.getKey(), e.getValue(), newest, state, epochs, sink);
            if (expected >= 0 && scan.firstOffset >= 0 && scan.firstOffset != expected) {
                problem(e.getValue().getFileName().toString(), "starts at offset " + scan.firstOffset + ", the segment before ended at " + expected);
            }
            if (scan.nextOffset >= 0) {
                expected = scan.nextOffset;
            } else if (expected < 0) {
                expected = e.getKey();
            }
            batches += scan.batches;
            records += scan.records;
            bytes += scan.bytes;
        }
        return new Report(dir, segments.size(), batches, records, bytes, start, expected, List.copyOf(problems), List.copyOf(notes));
    }

    private LogState readState() throws IOException {
        Path f = dir.resolve(LogState.FILE);
        if (!Files.exists(f)) {
            notes.add(LogState.FILE + ": absent (a log never opened by this version, or a brand-new one)");
            return null;
        }
        try {
            LogState s = LogState.decode(Files.readAllBytes(f));
            notes.add(LogState.FILE + ": " + (s.clean() ? "clean shutdown" : "not shut down cleanly (or open now)")
                    + (s.sealed() ? ", sealed" : "") + ", recovery point " + s.recoveryPoint());
            return s;
        } catch (FormatException e) {
            problem(LogState.FILE, e.getMessage());
            return null;
        }
    }

    private List<EpochEntry> readEpochs(boolean holdsSegments) throws IOException {
        Path f = dir.resolve(SegmentLog.EPOCH_FILE);
        if (!Files.exists(f)) {
            if (holdsSegments) {
                notes.add(SegmentLog.EPOCH_FILE + ": absent (checked below against the batches: none may hold records)");
            }
            return List.of();
        }
        try {
            return LeaderEpochCache.decode(Files.readAllBytes(f)).entries();
        } catch (FormatException e) {
            problem(SegmentLog.EPOCH_FILE, e.getMessage());
            return null;
        }
    }

    private static final class SegmentScan {
        long firstOffset = -1;
        long nextOffset = -1;
        long batches;
        long records;
        long bytes;
    }

    private SegmentScan scanSegment(long base, Path file, boolean newest, LogState state, List<EpochEntry> epochs,
                                    BatchSink sink) throws IOException {
        String name = file.getFileName().toString();
        SegmentScan scan = new SegmentScan();
        Map<Long, Long> batchAtPosition = new HashMap<>(); // position -> base offset
        TreeMap<Long, Long> maxTimestampAfter = new TreeMap<>(); // batch base offset -> running max timestamp after it
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            ByteBuffer header = ByteBuffer.allocate(FileHeader.SIZE);
            readOnly(ch).readFully(header, 0);
            try {
                FileHeader.decode(header.flip(), FileHeader.SEGMENT_MAGIC, base);
            } catch (FormatException e) {
                problem(name, "file header: " + e.getMessage());
                return scan;
            }
            BatchScanner scanner = new BatchScanner(readOnly(ch), FileHeader.SIZE, size, BatchScanner.Mode.VERIFY);
            long runningMax = Long.MIN_VALUE;
            while (true) {
                BatchView b;
                try {
                    b = scanner.next();
                } catch (FormatException e) {
                    long at = scanner.position();
                    String what = "bad batch at position " + at + " (" + (size - at) + " bytes to the end): " + e.getMessage();
                    if (newest && (state == null || !state.clean())) {
                        notes.add(name + ": torn tail, " + what + "; recovery truncates it at the next open");
                    } else {
                        problem(name, what);
                    }
                    break;
                }
                if (b == null) {
                    break;
                }
                long position = scanner.position();
                if (scan.nextOffset >= 0 && b.baseOffset() != scan.nextOffset) {
                    problem(name, "batch at position " + position + " starts at offset " + b.baseOffset() + ", expected " + scan.nextOffset);
                } else if (scan.nextOffset < 0 && b.baseOffset() != base) {
                    problem(name, "first batch starts at offset " + b.baseOffset() + ", the file's base offset is " + base);
                }
                try {
                    RecordBatch.validate(b.buffer().duplicate().position(b.start()).limit(b.start() + b.sizeInBytes()).slice());
                } catch (FormatException e) {
                    problem(name, "batch at offset " + b.baseOffset() + ": records: " + e.getMessage());
                }
                int want = epochAt(epochs, b.baseOffset());
                if (epochs != null && want != b.leaderEpoch()) {
                    problem(name, "batch at offset " + b.baseOffset() + " has leader epoch " + b.leaderEpoch() + ", the checkpoint gives "
                            + (want < 0 ? "none" : "epoch " + want) + " for that offset");
                }
                if (scan.firstOffset < 0) {
                    scan.firstOffset = b.baseOffset();
                }
                scan.nextOffset = b.nextOffset();
                scan.batches++;
                scan.records += b.recordCount();
                scan.bytes += b.sizeInBytes();
                batchAtPosition.put(position, b.baseOffset());
                runningMax = Math.max(runningMax, b.maxTimestamp());
                maxTimestampAfter.put(b.baseOffset(), runningMax);
                List<LogRecord> recs = List.of();
                if (withRecords) {
                    try {
                        recs = RecordBatch.decode(b, b.baseOffset(), b.nextOffset(), Integer.MAX_VALUE);
                    } catch (FormatException e) {
                        problem(name, "batch at offset " + b.baseOffset() + ": " + e.getMessage());
                    }
                }
                sink.accept(new Batch(file, position, b.sizeInBytes(), b.baseOffset(), b.recordCount(), b.leaderEpoch(),
                        b.firstTimestamp(), b.maxTimestamp(), b.producerId(), b.baseSequence(), b.crc(), recs));
            }
        }
        // Index entries past the last whole batch name what could not be read: the batch problem above says it.
        checkOffsetIndex(base, file, batchAtPosition, scan.bytes + FileHeader.SIZE);
        checkTimeIndex(base, file, maxTimestampAfter, scan.nextOffset < 0 ? base : scan.nextOffset);
        return scan;
    }

    /** {@code ch} as the scanner reads files: reads only (the inspector never writes). */
    private static LogChannel readOnly(FileChannel ch) {
        return new LogChannel() {
            @Override
            public void writeFully(ByteBuffer src, long position) {
                throw new UnsupportedOperationException("read only");
            }

            @Override
            public int readFully(ByteBuffer dst, long position) throws IOException {
                int n = 0;
                while (dst.hasRemaining()) {
                    int r = ch.read(dst, position + n);
                    if (r < 0) {
                        break;
                    }
                    n += r;
                }
                return n;
            }

            @Override
            public long size() throws IOException {
                return ch.size();
            }

            @Override
            public void truncate(long size) {
                throw new UnsupportedOperationException("read only");
            }

            @Override
            public void force() {
                throw new UnsupportedOperationException("read only");
            }

            @Override
            public long transferTo(long position, long count, WritableByteChannel target) throws IOException {
                return ch.transferTo(position, count, target);
            }

            @Override
            public void close() {
            }
        };
    }

    /** The epoch the checkpoint gives {@code offset}: the last entry starting at or below it; -1 if none. */
    private static int epochAt(List<EpochEntry> epochs, long offset) {
        int epoch = -1;
        if (epochs != null) {
            for (EpochEntry e : epochs) {
                if (e.startOffset() <= offset) {
                    epoch = e.epoch();
                }
            }
        }
        return epoch;
    }

    private ByteBuffer readIndex(Path file, int magic, long base) throws IOException {
        if (!Files.exists(file)) {
            notes.add(file.getFileName() + ": absent (an open rebuilds it)");
            return null;
        }
        ByteBuffer all = ByteBuffer.wrap(Files.readAllBytes(file));
        try {
            FileHeader.decode(all.duplicate(), magic, base);
        } catch (FormatException e) {
            problem(file.getFileName().toString(), "file header: " + e.getMessage() + " (an open rebuilds the index)");
            return null;
        }
        return all.position(FileHeader.SIZE).slice();
    }

    private void checkOffsetIndex(long base, Path segment, Map<Long, Long> batchAtPosition, long readUpTo) throws IOException {
        Path file = segment.resolveSibling(segment.getFileName().toString().replace(".log", ".oix"));
        ByteBuffer entries = readIndex(file, FileHeader.OFFSET_INDEX_MAGIC, base);
        if (entries == null) {
            return;
        }
        String name = file.getFileName().toString();
        long lastOffset = -1;
        long lastPosition = -1;
        for (int i = 0; entries.remaining() >= 8; i++) {
            long rel = Integer.toUnsignedLong(entries.getInt());
            long position = Integer.toUnsignedLong(entries.getInt());
            if (position == 0 || position >= readUpTo) {
                break; // the unused, pre-sized rest of an active segment's index, or past what could be read
            }
            long offset = base + rel;
            if (offset <= lastOffset || position <= lastPosition) {
                problem(name, "entry " + i + " (offset " + offset + ", position " + position + ") does not follow the one before");
            }
            Long at = batchAtPosition.get(position);
            if (at == null) {
                problem(name, "entry " + i + " names position " + position + ", where no batch starts");
            } else if (at != offset) {
                problem(name, "entry " + i + " says offset " + offset + " is at position " + position + ", the batch there starts at " + at);
            }
            lastOffset = offset;
            lastPosition = position;
        }
    }

    private void checkTimeIndex(long base, Path segment, TreeMap<Long, Long> maxTimestampAfter, long readUpTo) throws IOException {
        Path file = segment.resolveSibling(segment.getFileName().toString().replace(".log", ".tix"));
        ByteBuffer entries = readIndex(file, FileHeader.TIME_INDEX_MAGIC, base);
        if (entries == null) {
            return;
        }
        String name = file.getFileName().toString();
        long lastTimestamp = Long.MIN_VALUE;
        long lastOffset = -1;
        for (int i = 0; entries.remaining() >= 12; i++) {
            long timestamp = entries.getLong();
            long offset = base + Integer.toUnsignedLong(entries.getInt());
            if (timestamp == 0 && offset == base && i > 0 || offset >= readUpTo) {
                break; // the unused, pre-sized rest, or past what could be read
            }
            if (timestamp <= lastTimestamp && i > 0 || offset < lastOffset) {
                problem(name, "entry " + i + " (timestamp " + timestamp + ", offset " + offset + ") does not follow the one before");
            }
            Long max = maxTimestampAfter.get(offset);
            if (max == null) {
                problem(name, "entry " + i + " names offset " + offset + ", where no batch starts");
            } else if (max != timestamp) {
                problem(name, "entry " + i + " says the segment's maximum timestamp reaches " + timestamp + " at offset " + offset
                        + ", the batches say " + max);
            }
            lastTimestamp = timestamp;
            lastOffset = offset;
        }
    }
}
