package dev.segstore.log.format;

import dev.segstore.log.AppendRecord;
import dev.segstore.log.LogHeader;
import dev.segstore.log.LogRecord;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class RecordBatchTest {

    private static ByteBuffer sample() {
        return RecordBatch.encode(42, 7, 99, 5, List.of(
                new AppendRecord("key", List.of("a", "b"), 1000, List.of(new LogHeader("n", "v")), new byte[] {1, 2}),
                new AppendRecord(null, List.of(), 900, List.of(), new byte[0]),
                new AppendRecord("k2", List.of(), 2000, List.of(), new byte[300])));
    }

    @Test
    void forEachKeyOrTagTellsTheRecordsWithAKeyOrATagAsDecodeReadsThem() {
        ByteBuffer heap = RecordBatch.encode(42, 7, 99, 5, List.of(
                new AppendRecord("key", List.of("a", "b"), 1000, List.of(new LogHeader("n", "v")), new byte[] {1, 2}),
                new AppendRecord(null, List.of(), 900, List.of(), new byte[0]),
                new AppendRecord(null, List.of("only-tag"), 950, List.of(), new byte[7]),
                new AppendRecord("k\u00e9", List.of(), 2000, List.of(), new byte[300])));
        ByteBuffer direct = ByteBuffer.allocateDirect(heap.remaining()).put(heap.duplicate()).flip();
        List<String> expected = new java.util.ArrayList<>();
        for (LogRecord r : RecordBatch.decode(BatchView.at(heap), 0, Long.MAX_VALUE, 10, false)) {
            if (r.key() != null || !r.tags().isEmpty()) {
                expected.add(r.offset() + " " + r.key() + " " + r.tags());
            }
        }
        assertEquals(List.of("42 key [a, b]", "44 null [only-tag]", "45 k\u00e9 []"), expected);
        for (ByteBuffer buf : List.of(heap, direct)) {
            List<String> told = new java.util.ArrayList<>();
            RecordBatch.forEachKeyOrTag(BatchView.at(buf), (offset, key, tags) -> told.add(offset + " " + key + " " + tags));
            assertEquals(expected, told, "the records with a key or a tag, from a " + (buf.isDirect() ? "direct" : "heap") + " buffer");
        }
    }

    @Test
    void headerFieldsAndRecordsRoundTrip() {
        ByteBuffer buf = sample();
        BatchView v = BatchView.at(buf);
        v.verify();
        assertEquals(buf.remaining(), v.sizeInBytes());
        assertEquals(42, v.baseOffset());
        assertEquals(3, v.recordCount());
        assertEquals(44, v.lastOffset());
        assertEquals(7, v.leaderEpoch());
        assertEquals(1000, v.firstTimestamp());
        assertEquals(2000, v.maxTimestamp());
        assertEquals(99, v.producerId());
        assertEquals(5, v.baseSequence());
        List<LogRecord> records = RecordBatch.decode(v, 0, Long.MAX_VALUE, 10);
        assertEquals(3, records.size());
        assertEquals("key", records.get(0).key());
        assertEquals(List.of("a", "b"), records.get(0).tags());
        assertEquals(List.of(new LogHeader("n", "v")), records.get(0).headers());
        assertArrayEquals(new byte[] {1, 2}, records.get(0).payload());
        assertEquals(900, records.get(1).timestamp(), "timestamps may go backwards inside a batch");
        assertEquals(null, records.get(1).key());
        assertEquals(44, records.get(2).offset());
        assertEquals(List.of(43L), RecordBatch.decode(v, 43, 44, 10).stream().map(LogRecord::offset).toList());
        assertEquals(1, RecordBatch.decode(v, 0, Long.MAX_VALUE, 1).size());
    }

    /** Three batches end to end (offsets 42-44, 45-47, 48-50), as a fetch sends them. */
    private static ByteBuffer threeBatches() {
        ByteBuffer all = ByteBuffer.allocate(3 * sample().remaining());
        for (long base = 42; base <= 48; base += 3) {
            ByteBuffer b = RecordBatch.encode(base, 7, -1, -1, List.of(
                    new AppendRecord(null, List.of(), base, List.of(), new byte[] {(byte) base}),
                    new AppendRecord(null, List.of(), base + 1, List.of(), new byte[] {(byte) (base + 1)}),
                    new AppendRecord(null, List.of(), base + 2, List.of(), new byte[] {(byte) (base + 2)})));
            all.put(b);
        }
        return all.flip();
    }

    @Test
    void batchesEndToEndDecodeWithinBoundsSkippingAndLimited() {
        ByteBuffer all = threeBatches();
        List<Long> offsets = RecordBatch.decodeBatches(all, 44, 50, o -> o == 46, 100).stream().map(LogRecord::offset).toList();
        assertEquals(List.of(44L, 45L, 47L, 48L, 49L), offsets, "from 44, below 50, without 46");
        assertEquals(List.of(43L, 44L), RecordBatch.decodeBatches(all, 43, Long.MAX_VALUE, o -> false, 2).stream()
                .map(LogRecord::offset).toList(), "at most two");
        assertEquals(48, RecordBatch.decodeBatches(all, 48, 49, o -> false, 10).get(0).payload()[0], "payloads decoded");
        assertEquals(0, all.position(), "the caller's buffer is not moved");
    }

    @Test
    void batchesEndToEndRejectDamageAndGaps() {
        ByteBuffer flipped = threeBatches();
        int inSecond = flipped.limit() / 2;
        flipped.put(inSecond, (byte) (flipped.get(inSecond) ^ 0x10));
        assertThrows(FormatException.class, () -> RecordBatch.decodeBatches(flipped, 0, Long.MAX_VALUE, o -> false, 100));
        ByteBuffer cut = threeBatches();
        cut.limit(cut.limit() - 1);
        assertThrows(FormatException.class, () -> RecordBatch.decodeBatches(cut, 0, Long.MAX_VALUE, o -> false, 100));
        ByteBuffer gap = ByteBuffer.allocate(2 * sample().remaining());
        gap.put(RecordBatch.encode(0, 1, -1, -1, List.of(new AppendRecord(null, List.of(), 1, List.of(), new byte[1]))));
        gap.put(RecordBatch.encode(2, 1, -1, -1, List.of(new AppendRecord(null, List.of(), 1, List.of(), new byte[1]))));
        assertThrows(FormatException.class, () -> RecordBatch.decodeBatches(gap.flip(), 0, Long.MAX_VALUE, o -> false, 100));
    }

    @Test
    void aWritersBatchPassesValidationAndTakesTheLeadersStamp() {
        ByteBuffer b = RecordBatch.encode(0, 0, -1, -1, List.of(
                new AppendRecord("key", List.of("a", "b"), 1000, List.of(new LogHeader("n", "v")), new byte[] {1, 2}),
                new AppendRecord(null, List.of(), 900, List.of(), new byte[0]),
                new AppendRecord("k2", List.of(), 2000, List.of(), new byte[300])));
        assertDoesNotThrow(() -> RecordBatch.validate(b));
        RecordBatch.restamp(b, 500, 9, 77, 12);
        BatchView v = BatchView.at(b);
        v.verify(); // the checksum covers the new fields
        assertEquals(500, v.baseOffset());
        assertEquals(9, v.leaderEpoch());
        assertEquals(77, v.producerId());
        assertEquals(12, v.baseSequence());
        assertEquals(List.of(500L, 501L, 502L), RecordBatch.decode(v, 0, Long.MAX_VALUE, 10).stream().map(LogRecord::offset).toList());
        assertEquals(0, b.position());
    }

    @Test
    void keysAndTagsOnlyDecodeAsTheWholeRecordsWithoutHeadersOrPayload() {
        long seed = Long.getLong("segstore.seed", System.nanoTime());
        System.out.println("RecordBatchTest.keysAndTagsOnly seed " + seed + " (replay: -Dsegstore.seed=" + seed + ")");
        java.util.Random rnd = new java.util.Random(seed);
        String[] words = {"a", "key-1", "é", "日本", "", "tag with spaces"};
        for (int round = 0; round < 300; round++) {
            int n = 1 + rnd.nextInt(20);
            List<AppendRecord> records = new java.util.ArrayList<>();
            for (int i = 0; i < n; i++) {
                String key = rnd.nextInt(3) == 0 ? null : words[rnd.nextInt(words.length)] + rnd.nextInt(100);
                List<String> tags = new java.util.ArrayList<>();
                List<LogHeader> headers = new java.util.ArrayList<>();
                for (int t = rnd.nextInt(4); t > 0; t--) {
                    tags.add(words[rnd.nextInt(words.length)]);
                }
                for (int h = rnd.nextInt(4); h > 0; h--) {
                    headers.add(new LogHeader(words[rnd.nextInt(words.length)], words[rnd.nextInt(words.length)]));
                }
                byte[] payload = new byte[rnd.nextInt(300)];
                rnd.nextBytes(payload);
                records.add(new AppendRecord(key, tags, 1_000 + rnd.nextInt(50), headers, payload));
            }
            long base = rnd.nextInt(1_000);
            BatchView v = BatchView.at(RecordBatch.encode(base, 3, -1, -1, records));
            long from = base + rnd.nextInt(n);
            long to = from + 1 + rnd.nextInt(n);
            int max = 1 + rnd.nextInt(n);
            List<LogRecord> whole = RecordBatch.decode(v, from, to, max, true);
            List<LogRecord> light = RecordBatch.decode(v, from, to, max, false);
            assertEquals(whole.size(), light.size(), "seed " + seed + " round " + round);
            for (int i = 0; i < whole.size(); i++) {
                LogRecord w = whole.get(i);
                assertEquals(new LogRecord(w.offset(), w.leaderEpoch(), w.key(), w.tags(), w.timestamp(), List.of(), light.get(i).payload()),
                        light.get(i), "seed " + seed + " round " + round + " record " + i);
                assertEquals(0, light.get(i).payload().length, "seed " + seed + ": a payload was copied");
            }
        }
        // The framing is checked either way: a record whose payload length runs past it is refused.
        ByteBuffer damaged = sample();
        int lengthAt = RecordBatch.HEADER_SIZE; // record 0's length (1 byte): one less makes its payload overrun
        damaged.put(lengthAt, (byte) (damaged.get(lengthAt) - 1));
        RecordBatch.restamp(damaged, 0, 0, -1, -1);
        assertThrows(FormatException.class, () -> RecordBatch.decode(BatchView.at(damaged), 0, Long.MAX_VALUE, 10, false));
        // A header skipped unread is still bounded by its record: record 0's header name claims 100 bytes.
        ByteBuffer header = sample();
        int nameLengthAt = RecordBatch.HEADER_SIZE + 14; // length, attributes, timestamp, delta, key (1 + 3), 2 tags (1 + 4), count
        assertEquals(1, header.get(nameLengthAt), "the fixture's header name is 1 byte");
        header.put(nameLengthAt, (byte) 100);
        RecordBatch.restamp(header, 0, 0, -1, -1);
        assertTrue(assertThrows(FormatException.class, () -> RecordBatch.decode(BatchView.at(header), 0, Long.MAX_VALUE, 10, false))
                .getMessage().contains("runs past the record"));
    }

    @Test
    void aBatchWithAValidChecksumButBadRecordsIsRefused() {
        ByteBuffer lying = sample();
        lying.putLong(RecordBatch.MAX_TIMESTAMP_OFFSET, 1500); // the records' largest is 2000
        RecordBatch.restamp(lying, 0, 0, -1, -1);
        assertTrue(assertThrows(FormatException.class, () -> RecordBatch.validate(lying)).getMessage().contains("maxTimestamp"));
        ByteBuffer attributes = sample();
        attributes.put(RecordBatch.HEADER_SIZE + 1, (byte) 1); // record 0's attributes (after its 1-byte length)
        RecordBatch.restamp(attributes, 0, 0, -1, -1);
        assertThrows(FormatException.class, () -> RecordBatch.validate(attributes));
        // Any one byte of the records changed, checksum fixed: either refused, or every record still decodes.
        ByteBuffer original = sample();
        int refused = 0;
        for (int pos = RecordBatch.HEADER_SIZE; pos < original.limit(); pos++) {
            for (int mask : new int[] {0x01, 0x40, 0x80, 0xFF}) {
                ByteBuffer b = sample();
                b.put(pos, (byte) (b.get(pos) ^ mask));
                RecordBatch.restamp(b, 0, 0, -1, -1);
                try {
                    RecordBatch.validate(b);
                } catch (FormatException e) {
                    refused++;
                    continue;
                }
                int p = pos;
                assertEquals(3, assertDoesNotThrow(() -> RecordBatch.decode(BatchView.at(b), 0, Long.MAX_VALUE, 10),
                        "byte " + p + " passed validation but does not decode").size());
            }
        }
        assertTrue(refused > 0, "some damage was refused");
    }

    @Test
    void everySingleBitFlipIsDetected() {
        ByteBuffer original = sample();
        int size = original.remaining();
        for (int i = 0; i < size; i++) {
            for (int bit = 0; bit < 8; bit++) {
                ByteBuffer copy = ByteBuffer.allocate(size).put(original.duplicate()).flip();
                copy.put(i, (byte) (copy.get(i) ^ (1 << bit)));
                BatchView v = BatchView.at(copy);
                int at = i;
                int b = bit;
                assertThrows(FormatException.class, v::verify, () -> "byte " + at + " bit " + b);
            }
        }
        assertDoesNotThrow(() -> BatchView.at(original).verify());
    }

    @Test
    void truncatedBatchIsRejected() {
        ByteBuffer buf = sample();
        buf.limit(buf.limit() - 1);
        FormatException e = assertThrows(FormatException.class, () -> BatchView.at(buf).verify());
        assertEquals(true, e.getMessage().contains("bytes left"), e.getMessage());
    }

    @Test
    void varIntsRoundTripAndRejectOverlongEncodings() {
        ByteBuffer buf = ByteBuffer.allocate(64);
        int[] ints = {0, 1, 127, 128, 16_383, 16_384, Integer.MAX_VALUE};
        long[] longs = {0, -1, 1, Long.MIN_VALUE, Long.MAX_VALUE, -300};
        for (int v : ints) {
            buf.clear();
            VarInts.putUnsigned(buf, v);
            assertEquals(VarInts.sizeOfUnsigned(v), buf.position());
            assertEquals(v, VarInts.getUnsigned(buf.flip()));
        }
        for (long v : longs) {
            buf.clear();
            VarInts.putZigZag(buf, v);
            assertEquals(VarInts.sizeOfZigZag(v), buf.position());
            assertEquals(v, VarInts.getZigZag(buf.flip()));
        }
        ByteBuffer overlong = ByteBuffer.wrap(new byte[] {(byte) 0xFF, (byte) 0xFF, (byte) 0xFF, (byte) 0xFF, (byte) 0xFF, 0x01});
        assertThrows(FormatException.class, () -> VarInts.getUnsigned(overlong));
        ByteBuffer negative = ByteBuffer.wrap(new byte[] {(byte) 0xFF, (byte) 0xFF, (byte) 0xFF, (byte) 0xFF, 0x0F});
        assertThrows(FormatException.class, () -> VarInts.getUnsigned(negative));
        assertThrows(FormatException.class, () -> VarInts.getUnsigned(ByteBuffer.wrap(new byte[] {(byte) 0x80})));
    }

    @Test
    void fileHeaderChecksMagicVersionChecksumAndBase() {
        ByteBuffer h = new FileHeader(FileHeader.SEGMENT_MAGIC, 1, 77).encode();
        assertEquals(77, FileHeader.decode(h.duplicate(), FileHeader.SEGMENT_MAGIC, 77).baseOffset());
        assertThrows(FormatException.class, () -> FileHeader.decode(h.duplicate(), FileHeader.OFFSET_INDEX_MAGIC, 77));
        assertThrows(FormatException.class, () -> FileHeader.decode(h.duplicate(), FileHeader.SEGMENT_MAGIC, 78));
        ByteBuffer flipped = ByteBuffer.allocate(FileHeader.SIZE).put(h.duplicate()).flip();
        flipped.put(9, (byte) 1);
        assertThrows(FormatException.class, () -> FileHeader.decode(flipped, FileHeader.SEGMENT_MAGIC, 77));
        assertThrows(FormatException.class, () -> FileHeader.decode(ByteBuffer.allocate(3), FileHeader.SEGMENT_MAGIC, 77));
    }
}
