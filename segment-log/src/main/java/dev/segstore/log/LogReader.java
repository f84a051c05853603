package dev.segstore.log;

import dev.segstore.log.format.BatchView;
import dev.segstore.log.format.FormatException;
import dev.segstore.log.format.RecordBatch;
import dev.segstore.log.index.OffsetIndex;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalLong;

/**
 * The read paths of a {@link SegmentLog}: decoded records, file slices and timestamp look-ups over a snapshot
 * of its segments, below a limit the log computed (its written end and the caller's upper bound). Holds no
 * state and takes no lock; every segment is retained while it is read. Corrupt bytes become
 * {@link LogException.Kind#CORRUPT_DATA} naming the segment; an I/O error takes the directory offline.
 */
final class LogReader {
    private final String name;
    private final LogDirectory directory;

    LogReader(String name, LogDirectory directory) {
        this.name = name;
        this.directory = directory;
    }

    /** Index of the last segment whose base offset is at or below {@code offset} (0 if none). */
    static int floorSegment(Segment[] segs, long offset) {
        int lo = 0;
        int hi = segs.length - 1;
        int found = 0;
        while (lo <= hi) {
            int mid = (lo + hi) >>> 1;
            if (segs[mid].baseOffset() <= offset) {
                found = mid;
                lo = mid + 1;
            } else {
                hi = mid - 1;
            }
        }
        return found;
    }

    /** See {@link SegmentLog#read}; {@code limit} is the exclusive offset reads stop at. */
    List<LogRecord> read(Segment[] segs, long offset, int maxRecords, int maxBytes, long limit) {
        return read(segs, offset, maxRecords, maxBytes, limit, true);
    }

    /** See {@link SegmentLog#read} and {@link SegmentLog#readKeysAndTags} ({@code withBodies} false). */
    List<LogRecord> read(Segment[] segs, long offset, int maxRecords, int maxBytes, long limit, boolean withBodies) {
        List<LogRecord> out = new ArrayList<>();
        long bytes = 0;
        long from = offset;
        for (int i = floorSegment(segs, offset); i < segs.length && from < limit; i++) {
            Segment s = segs[i];
            if (!s.retain()) {
                throw new LogException(LogException.Kind.OFFSET_OUT_OF_RANGE, "log " + name + ": offset " + from
                        + " was deleted by retention while being read");
            }
            BatchScanner scanner = null;
            try {
                Segment.Position p = s.locate(from);
                scanner = new BatchScanner(s.channel(), p.position(), s.writtenSize(), BatchScanner.Mode.VERIFY);
                long expected = p.offset();
                BatchView b;
                while ((b = scanner.next()) != null && b.baseOffset() < limit) {
                    if (b.baseOffset() != expected) {
                        throw new FormatException("batch starts at offset " + b.baseOffset() + ", expected " + expected);
                    }
                    expected = b.nextOffset();
                    for (LogRecord r : RecordBatch.decode(b, from, limit, maxRecords - out.size(), withBodies)) {
                        int size = recordBytes(r);
                        if (!out.isEmpty() && bytes + size > maxBytes) {
                            return out;
                        }
                        out.add(r);
                        bytes += size;
                    }
                    if (out.size() >= maxRecords) {
                        return out;
                    }
                    from = b.nextOffset();
                }
                from = Math.max(from, s.writtenNextOffset());
            } catch (FormatException e) {
                throw LogException.corrupt("log " + name + " segment " + s.logFile().getFileName()
                        + (scanner == null ? "" : " position " + scanner.position()) + ": " + e.getMessage());
            } catch (IOException e) {
                throw directory.ioFailure(e, "reading log " + name);
            } finally {
                s.release();
            }
        }
        return out;
    }

    private static int recordBytes(LogRecord r) {
        int size = r.payload().length + (r.key() == null ? 0 : r.key().length());
        for (String t : r.tags()) {
            size += t.length();
        }
        for (LogHeader h : r.headers()) {
            size += h.name().length() + h.value().length();
        }
        return size;
    }

    /** See {@link SegmentLog#readSlice}; {@code limit} is the exclusive offset reads stop at. */
    FileSlice readSlice(Segment[] segs, long offset, int maxBytes, long limit) {
        if (offset >= limit) {
            return FileSlice.empty(offset);
        }
        Segment s = segs[floorSegment(segs, offset)];
        if (!s.retain()) {
            throw new LogException(LogException.Kind.OFFSET_OUT_OF_RANGE, "log " + name + ": offset " + offset
                    + " was deleted by retention while being read");
        }
        boolean handedOut = false;
        try {
            Segment.Position start = s.locate(offset);
            if (start.offset() >= limit || start.position() >= s.writtenSize()) {
                return FileSlice.empty(offset);
            }
            // Jump close to the end with the index, then walk headers only.
            OffsetIndex.Entry byBytes = s.offsetIndex().lookupByPosition(start.position() + (long) maxBytes);
            OffsetIndex.Entry byLimit = s.offsetIndex().lookup(limit - 1);
            OffsetIndex.Entry from = byBytes.position() <= byLimit.position() ? byBytes : byLimit;
            long walkPosition = Math.max(from.position(), start.position());
            long walkOffset = from.position() >= start.position() ? from.offset() : start.offset();
            BatchScanner scanner = new BatchScanner(s.channel(), walkPosition, s.writtenSize(), BatchScanner.Mode.HEADERS);
            long endPosition = start.position();
            long endOffset = start.offset();
            BatchView b;
            while ((b = scanner.next()) != null) {
                if (b.baseOffset() != walkOffset) {
                    throw new FormatException("batch starts at offset " + b.baseOffset() + ", expected " + walkOffset);
                }
                long batchEnd = scanner.nextPosition();
                boolean first = endPosition == start.position();
                if (b.baseOffset() >= limit || (!first && batchEnd - start.position() > maxBytes)) {
                    break;
                }
                endPosition = batchEnd;
                endOffset = b.nextOffset();
                walkOffset = b.nextOffset();
            }
            handedOut = true;
            return new FileSlice(s, start.position(), (int) (endPosition - start.position()), start.offset(), endOffset);
        } catch (FormatException e) {
            throw LogException.corrupt("log " + name + " segment " + s.logFile().getFileName() + ": " + e.getMessage());
        } catch (IOException e) {
            throw directory.ioFailure(e, "reading log " + name);
        } finally {
            if (!handedOut) {
                s.release();
            }
        }
    }

    /** See {@link SegmentLog#offsetForTimestamp}; {@code limit} is the exclusive offset reads stop at. */
    OptionalLong offsetForTimestamp(Segment[] segs, long timestamp, long limit) {
        for (Segment s : segs) {
            if (s.maxTimestamp() < timestamp || !s.retain()) {
                continue;
            }
            try {
                long found = s.offsetForTimestamp(timestamp);
                if (found >= 0) {
                    return found < limit ? OptionalLong.of(found) : OptionalLong.empty();
                }
            } catch (FormatException e) {
                throw LogException.corrupt("log " + name + " segment " + s.logFile().getFileName() + ": " + e.getMessage());
            } catch (IOException e) {
                throw directory.ioFailure(e, "reading log " + name);
            } finally {
                s.release();
            }
        }
        return OptionalLong.empty();
    }
}
