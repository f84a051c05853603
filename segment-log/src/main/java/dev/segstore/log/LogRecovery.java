package dev.segstore.log;

import dev.segstore.log.epoch.LeaderEpochCache;
import dev.segstore.log.format.FormatException;
import dev.segstore.log.io.LogFiles;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

/**
 * Opening a log directory: which files it may hold, and the recovery of its segments (see
 * {@link SegmentLog}'s "Recovery" and docs/on-disk-formats.md). Runs on the thread that opens the log,
 * before the log takes any write.
 */
final class LogRecovery {
    private static final Logger LOG = LoggerFactory.getLogger(LogRecovery.class);
    private static final Pattern SEGMENT_FILE = Pattern.compile("(\\d{20})\\.(log|oix|tix)");

    private LogRecovery() {
    }

    /**
     * Base offsets of the segment files in {@code dir}, sorted. Leftover temporary files are deleted; any file
     * a log directory does not hold fails with CORRUPT_DATA naming it.
     */
    static List<Long> segmentBases(LogFiles files, Path dir, String name) throws IOException {
        List<Long> bases = new ArrayList<>();
        for (String f : files.list(dir)) {
            var m = SEGMENT_FILE.matcher(f);
            if (m.matches()) {
                if (m.group(2).equals("log")) {
                    bases.add(Long.parseLong(m.group(1)));
                }
            } else if (f.endsWith(".tmp")) {
                files.delete(dir.resolve(f)); // an atomic replace that never finished
            } else if (!f.equals(SegmentLog.EPOCH_FILE) && !f.equals(LogState.FILE)) {
                throw LogException.corrupt("log " + name + ": unexpected file " + dir.resolve(f)
                        + " (a log directory holds only segments, indexes, " + SegmentLog.EPOCH_FILE + " and " + LogState.FILE + ")");
            }
        }
        return bases;
    }

    /**
     * Opens the segments: those known durable ({@link LogState} clean, or wholly below the recovery point)
     * with their indexes; the others are scanned and checksummed, cut at a torn tail, and later segments
     * dropped. {@code epochs} learns the epochs of scanned batches. Returns at least one segment (a new one
     * at {@code initialOffset} for an empty directory).
     *
     * @throws FormatException for corruption in durable bytes or a log shorter than its recovery point
     */
    static List<Segment> loadSegments(LogFiles files, Path dir, String name, LogConfig config, List<Long> bases,
                                      LogState state, LeaderEpochCache epochs, long initialOffset) throws IOException {
        List<Segment> loaded = new ArrayList<>();
        boolean clean = state != null && state.clean();
        long rp = state == null ? -1 : state.recoveryPoint();
        for (int i = 0; i < bases.size(); i++) {
            long base = bases.get(i);
            boolean mustScan = !clean && (i == bases.size() - 1 || bases.get(i + 1) > rp);
            long expectedBase = loaded.isEmpty() ? base : loaded.get(loaded.size() - 1).writtenNextOffset();
            Segment s;
            try {
                if (base != expectedBase) {
                    throw new FormatException("segment starts at " + base + " but the previous one ends at " + expectedBase);
                }
                s = Segment.open(files, dir, base, config);
            } catch (FormatException e) {
                if (!mustScan) {
                    throw new FormatException("segment " + Segment.fileName(base, ".log") + ": " + e.getMessage());
                }
                LOG.warn("Log {}: dropping segments from {} on after an unclean shutdown: {}", name, base, e.getMessage());
                deleteSegmentFiles(files, dir, bases.subList(i, bases.size()));
                break;
            }
            if (!mustScan) {
                s.loadClean();
                loaded.add(s);
                continue;
            }
            Segment.Recovery r = s.recover((offset, epoch) -> epochs.assign(epoch, offset));
            loaded.add(s);
            if (r.error() != null) {
                long dropped = s.channel().size() - r.validSize();
                LOG.warn("Log {}: torn tail after an unclean shutdown in segment {} at position {} ({}); "
                                + "truncating {} bytes and {} later segment(s)", name, base, r.validSize(), r.error(),
                        dropped, bases.size() - i - 1);
                s.truncateFile(r.validSize());
                deleteSegmentFiles(files, dir, bases.subList(i + 1, bases.size()));
                break;
            }
        }
        if (loaded.isEmpty()) {
            long start = bases.isEmpty() ? initialOffset : bases.get(0);
            Segment first = Segment.create(files, dir, start, config);
            // The file's entry, and the log's own in the data directory (new too, or left by a crash before its
            // first segment was made), are forced before the file's first bytes are, not here: see Segment.
            first.forceDirectoriesFirst(dir);
            if (dir.getParent() != null) {
                first.forceDirectoriesFirst(dir.getParent());
            }
            loaded.add(first);
        }
        Segment last = loaded.get(loaded.size() - 1);
        long end = last.writtenNextOffset();
        // Bytes below the recovery point were forced: a log that now ends before it lost durable data (a
        // shortened or missing file), which no torn write can explain.
        if (state != null && (clean ? end != rp : end < rp)) {
            throw new FormatException("log ends at offset " + end + " but " + (clean ? "was closed cleanly at " : "had forced every record below ")
                    + rp + " (a segment file is shorter than written or missing)");
        }
        return loaded;
    }

    private static void deleteSegmentFiles(LogFiles files, Path dir, List<Long> bases) throws IOException {
        for (long b : bases) {
            for (String suffix : new String[] {".log", ".oix", ".tix"}) {
                files.delete(dir.resolve(Segment.fileName(b, suffix)));
            }
        }
        files.forceDirectory(dir);
    }
}
