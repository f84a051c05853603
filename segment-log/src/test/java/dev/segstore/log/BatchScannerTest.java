package dev.segstore.log;

import dev.segstore.log.format.BatchView;
import dev.segstore.log.format.RecordBatch;
import dev.segstore.log.io.LogChannel;
import dev.segstore.log.io.RealLogFiles;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The scanner's buffer: as large as what it reads, not a fixed 64 KiB per scan. */
class BatchScannerTest {
    @TempDir
    Path dir;

    @Test
    void aScanNearTheEndAllocatesWhatItReadsAndALongScanAtMost64KiB() throws IOException {
        try (LogChannel ch = RealLogFiles.INSTANCE.open(dir.resolve("batches"), true)) {
            List<Long> positions = new ArrayList<>();
            long position = 0;
            for (int i = 0; i < 100; i++) { // 100 batches of ~1 KiB: about 100 KiB
                ByteBuffer b = RecordBatch.encode(i, 0, RecordBatch.NO_PRODUCER_ID, RecordBatch.NO_SEQUENCE,
                        List.of(LogFixtures.record(i, "x".repeat(1_000))));
                positions.add(position);
                position += b.remaining();
                ch.writeFully(b, positions.get(i));
            }
            long end = position;

            for (BatchScanner.Mode mode : BatchScanner.Mode.values()) {
                // A follower's fetch at the end: a look-up from an index entry a few batches back.
                long from = positions.get(97);
                BatchScanner tail = new BatchScanner(ch, from, end, mode);
                List<Long> offsets = new ArrayList<>();
                for (BatchView v; (v = tail.next()) != null; ) {
                    offsets.add(v.baseOffset());
                }
                assertEquals(List.of(97L, 98L, 99L), offsets, mode + ": the batches from there to the end");
                assertEquals(end - from, tail.bufferCapacity(), mode + ": a scan of the last " + (end - from)
                        + " bytes allocates those bytes, not 64 KiB");

                BatchScanner nothing = new BatchScanner(ch, end, end, mode);
                assertNull(nothing.next(), mode + ": nothing past the end");
                assertEquals(0, nothing.bufferCapacity(), mode + ": a scan that reads nothing allocates nothing");

                BatchScanner whole = new BatchScanner(ch, 0, end, mode);
                int n = 0;
                for (BatchView v; (v = whole.next()) != null; n++) {
                    assertEquals(n, v.baseOffset(), mode + ": batch " + n + "'s offset");
                    assertEquals((long) positions.get(n), whole.position(), mode + ": batch " + n + "'s position");
                }
                assertEquals(100, n, mode + ": every batch of a long scan");
                assertEquals(end, whole.nextPosition(), mode + ": the scan ends at the end");
                assertTrue(end > 64 * 1024, "the file is longer than one buffer");
                assertEquals(64 * 1024, whole.bufferCapacity(), mode + ": a long scan reads through one 64 KiB buffer");
            }
        }
    }

    @Test
    void aBatchLargerThan64KiBIsReadWholeThroughABufferGrownToIt() throws IOException {
        try (LogChannel ch = RealLogFiles.INSTANCE.open(dir.resolve("big"), true)) {
            ByteBuffer small = RecordBatch.encode(0, 0, RecordBatch.NO_PRODUCER_ID, RecordBatch.NO_SEQUENCE,
                    List.of(LogFixtures.record(0, "s")));
            ByteBuffer big = RecordBatch.encode(1, 0, RecordBatch.NO_PRODUCER_ID, RecordBatch.NO_SEQUENCE,
                    List.of(LogFixtures.record(1, "b".repeat(100_000))));
            int smallSize = small.remaining();
            int bigSize = big.remaining();
            ch.writeFully(small, 0);
            ch.writeFully(big, smallSize);
            long end = smallSize + bigSize;
            for (BatchScanner.Mode mode : BatchScanner.Mode.values()) {
                BatchScanner s = new BatchScanner(ch, 0, end, mode);
                assertEquals(0, s.next().baseOffset(), mode.name());
                BatchView v = s.next();
                assertEquals(1, v.baseOffset(), mode + ": the big batch");
                assertEquals(bigSize, v.sizeInBytes(), mode.name());
                assertNull(s.next(), mode.name());
                if (mode == BatchScanner.Mode.VERIFY) {
                    assertTrue(s.bufferCapacity() >= bigSize, "the buffer grew to the whole batch: " + s.bufferCapacity());
                } else {
                    assertTrue(s.bufferCapacity() <= end, "headers only: never more than the scan: " + s.bufferCapacity());
                }
            }
        }
    }
}
