package dev.segstore.log.format;

import dev.segstore.log.AppendRecord;
import dev.segstore.log.LogHeader;
import dev.segstore.log.LogRecord;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.CRC32C;

/**
 * A batch of records, the unit the log writes, checksums, replicates and indexes. Format version 1,
 * all fixed-width integers big-endian:
 * <pre>
 *  0  i32   batchLength     bytes after this field; the batch occupies 4 + batchLength bytes
 *  4  u32   crc             CRC32C of bytes [8, 4 + batchLength): every field below and every record
 *  8  u8    magic           batch format version = 1
 *  9  u8    attributes      bit 0: control batch (reserved, never set in version 1); other bits 0
 * 10  u16   reserved        0
 * 12  i64   baseOffset      offset of the first record
 * 20  i32   recordCount     &gt;= 1; the records have offsets baseOffset .. baseOffset + recordCount - 1
 * 24  i32   leaderEpoch     epoch of the leader that assigned the offsets, &gt;= 0
 * 28  i64   firstTimestamp  timestamp of the first record (ms)
 * 36  i64   maxTimestamp    largest record timestamp in the batch
 * 44  i64   producerId      -1 when the writer is not idempotent
 * 52  i32   baseSequence    sequence of the first record for that producer, -1 when none
 * 56        records, recordCount times:
 *     varint  recordLength  bytes after this field
 *     u8      attributes    0
 *     zigzag  timestampDelta   timestamp - firstTimestamp
 *     varint  offsetDelta      offset - baseOffset (must equal the record's index in the batch)
 *     varint  keyLength + 1    0 = no key; then the key, UTF-8
 *     varint  tagCount;     tagCount x (varint length, UTF-8)
 *     varint  headerCount;  headerCount x (varint nameLength, name UTF-8, varint valueLength, value UTF-8)
 *     varint  payloadLength; payload bytes
 * </pre>
 * The checksum covers the offsets and the epoch, so a leader encodes a batch once, with its offsets, and
 * followers store the very same bytes: replicas are byte-identical. A bit flip anywhere in the batch is
 * caught either by the checksum or, in the length field, by the checksum running over the wrong span.
 */
public final class RecordBatch {
    public static final int HEADER_SIZE = 56;
    public static final int LENGTH_FIELD = 4;
    /** Smallest possible batch: the header plus one empty record of at least 8 bytes. */
    public static final int MIN_BATCH_SIZE = HEADER_SIZE + 8;
    /** Hard upper bound a decoder accepts for one batch, whatever the configuration. */
    public static final int MAX_BATCH_SIZE = 64 * 1024 * 1024;
    public static final byte MAGIC_V1 = 1;
    public static final long NO_PRODUCER_ID = -1;
    public static final int NO_SEQUENCE = -1;

    static final int CRC_OFFSET = 4;
    static final int MAGIC_OFFSET = 8;
    static final int ATTRIBUTES_OFFSET = 9;
    static final int BASE_OFFSET_OFFSET = 12;
    static final int RECORD_COUNT_OFFSET = 20;
    static final int LEADER_EPOCH_OFFSET = 24;
    static final int FIRST_TIMESTAMP_OFFSET = 28;
    static final int MAX_TIMESTAMP_OFFSET = 36;
    static final int PRODUCER_ID_OFFSET = 44;
    static final int BASE_SEQUENCE_OFFSET = 52;

    private RecordBatch() {
    }

    /**
     * Encodes {@code records} as one batch whose first offset is {@code baseOffset}. Returns a buffer
     * positioned at 0 whose remaining bytes are exactly the batch.
     */
    public static ByteBuffer encode(long baseOffset, int leaderEpoch, long producerId, int baseSequence,
                                    List<AppendRecord> records) {
        if (records.isEmpty()) {
            throw new IllegalArgumentException("a batch holds at least one record");
        }
        long firstTimestamp = records.get(0).timestamp();
        long maxTimestamp = Long.MIN_VALUE;
        int n = records.size();
        EncodedRecord[] encoded = new EncodedRecord[n];
        long size = HEADER_SIZE;
        for (int i = 0; i < n; i++) {
            AppendRecord r = records.get(i);
            maxTimestamp = Math.max(maxTimestamp, r.timestamp());
            encoded[i] = EncodedRecord.of(r, r.timestamp() - firstTimestamp, i);
            size += VarInts.sizeOfUnsigned(encoded[i].bodyLength) + encoded[i].bodyLength;
        }
        if (size > MAX_BATCH_SIZE) {
            throw new IllegalArgumentException("batch of " + size + " bytes exceeds " + MAX_BATCH_SIZE);
        }
        ByteBuffer buf = ByteBuffer.allocate((int) size);
        buf.putInt((int) size - LENGTH_FIELD).putInt(0).put(MAGIC_V1).put((byte) 0).putShort((short) 0)
                .putLong(baseOffset).putInt(n).putInt(leaderEpoch).putLong(firstTimestamp).putLong(maxTimestamp)
                .putLong(producerId).putInt(baseSequence);
        for (EncodedRecord e : encoded) {
            e.writeTo(buf);
        }
        buf.putInt(CRC_OFFSET, computeCrc(buf, 0, (int) size));
        return buf.flip();
    }

    /** CRC32C of the batch that starts at {@code start} in {@code buf} and is {@code size} bytes long. */
    static int computeCrc(ByteBuffer buf, int start, int size) {
        CRC32C crc = new CRC32C();
        crc.update(buf.duplicate().limit(start + size).position(start + MAGIC_OFFSET));
        return (int) crc.getValue();
    }

    /**
     * Reads the records of a batch whose bytes start at {@code buf.position()} (the batch must be whole and
     * already checked with {@link BatchView#verify}). Records below {@code fromOffset} are skipped.
     */
    public static List<LogRecord> decode(BatchView batch, long fromOffset, long toOffsetExclusive, int maxRecords) {
        return decode(batch, fromOffset, toOffsetExclusive, maxRecords, true);
    }

    /**
     * As {@link #decode(BatchView, long, long, int)}, but with {@code withBodies} false each record comes without its
     * headers and payload (an empty list, an empty array): what an index needs (offset, key, tags), with no copy of
     * the payload. Every record's framing is checked the same either way.
     */
    public static List<LogRecord> decode(BatchView batch, long fromOffset, long toOffsetExclusive, int maxRecords, boolean withBodies) {
        ByteBuffer buf = records(batch);
        long base = batch.baseOffset();
        long first = batch.firstTimestamp();
        int epoch = batch.leaderEpoch();
        List<LogRecord> out = new ArrayList<>(Math.min(batch.recordCount(), maxRecords));
        for (int i = 0; i < batch.recordCount() && out.size() < maxRecords; i++) {
            int recordEnd = recordEnd(buf, i);
            long offset = base + i;
            if (offset < fromOffset || offset >= toOffsetExclusive) {
                buf.position(recordEnd);
                continue;
            }
            ByteBuffer r = buf.duplicate().limit(recordEnd);
            r.get(); // attributes
            long timestamp = first + VarInts.getZigZag(r);
            int delta = VarInts.getUnsigned(r);
            if (delta != i) {
                throw new FormatException("record " + i + " has offset delta " + delta);
            }
            int keyLength = VarInts.getUnsigned(r);
            String key = keyLength == 0 ? null : string(r, keyLength - 1);
            int tagCount = VarInts.getUnsigned(r);
            List<String> tags = new ArrayList<>(Math.min(tagCount, 64));
            for (int t = 0; t < tagCount; t++) {
                tags.add(string(r, VarInts.getUnsigned(r)));
            }
            int headerCount = VarInts.getUnsigned(r);
            List<LogHeader> headers = withBodies ? new ArrayList<>(Math.min(headerCount, 64)) : List.of();
            for (int h = 0; h < headerCount; h++) {
                if (withBodies) {
                    String name = string(r, VarInts.getUnsigned(r));
                    headers.add(new LogHeader(name, string(r, VarInts.getUnsigned(r))));
                } else {
                    skip(r, VarInts.getUnsigned(r));
                    skip(r, VarInts.getUnsigned(r));
                }
            }
            int payloadLength = VarInts.getUnsigned(r);
            if (payloadLength != r.remaining()) {
                throw new FormatException("record " + i + " payload length " + payloadLength + " but " + r.remaining() + " bytes left");
            }
            byte[] payload = withBodies ? new byte[payloadLength] : NO_BYTES;
            r.get(payload);
            out.add(new LogRecord(offset, epoch, key, List.copyOf(tags), timestamp, withBodies ? List.copyOf(headers) : headers, payload));
            buf.position(recordEnd);
        }
        return out;
    }

    /** Told of each record with a key or a tag ({@link #forEachKeyOrTag}): its offset, key (null: none) and tags. */
    @FunctionalInterface
    public interface KeyOrTagVisitor {
        void record(long offset, String key, List<String> tags);
    }

    /**
     * Tells {@code visitor} of each record of {@code batch} (whole, and checked before) that has a key or a tag, decoding
     * nothing else and making no object for the records without: what a key and tag index takes from a batch being
     * appended. Throws {@link FormatException} for a record whose fields run past it.
     */
    public static void forEachKeyOrTag(BatchView batch, KeyOrTagVisitor visitor) {
        ByteBuffer buf = records(batch);
        int end = buf.limit();
        long base = batch.baseOffset();
        for (int i = 0; i < batch.recordCount(); i++) {
            int recordEnd = recordEnd(buf, i);
            buf.limit(recordEnd);
            buf.get(); // attributes
            VarInts.getZigZag(buf); // timestamp delta
            VarInts.getUnsigned(buf); // offset delta
            int keyLength = VarInts.getUnsigned(buf);
            String key = keyLength == 0 ? null : string(buf, keyLength - 1);
            int tagCount = VarInts.getUnsigned(buf);
            if (key != null || tagCount > 0) {
                List<String> tags = tagCount == 0 ? List.of() : new ArrayList<>(Math.min(tagCount, 64));
                for (int t = 0; t < tagCount; t++) {
                    tags.add(string(buf, VarInts.getUnsigned(buf)));
                }
                visitor.record(base + i, key, tags);
            }
            buf.limit(end).position(recordEnd);
        }
    }

    /**
     * Checks a batch a writer encoded (with {@link #encode}, any offsets) before a leader takes it as it is:
     * whole and intact ({@link BatchView#verify}), every record well-formed (each length inside its record,
     * offset deltas 0, 1, 2, ..., the payload ending the record, no bytes after the last record), the first
     * record's timestamp delta 0 and {@code maxTimestamp} the records' largest timestamp (the time index relies
     * on it). Reads {@code batch} from its position without moving it; throws {@link FormatException} naming
     * the first problem.
     */
    public static void validate(ByteBuffer batch) {
        BatchView v = BatchView.at(batch);
        v.verify();
        ByteBuffer buf = records(v);
        long max = Long.MIN_VALUE;
        for (int i = 0; i < v.recordCount(); i++) {
            int recordEnd = recordEnd(buf, i);
            ByteBuffer r = buf.duplicate().limit(recordEnd);
            if (!r.hasRemaining() || r.get() != 0) {
                throw new FormatException("record " + i + ": attributes must be 0");
            }
            long delta = VarInts.getZigZag(r);
            if (i == 0 && delta != 0) {
                throw new FormatException("the first record's timestamp delta is " + delta + ", not 0");
            }
            max = Math.max(max, v.firstTimestamp() + delta);
            int offsetDelta = VarInts.getUnsigned(r);
            if (offsetDelta != i) {
                throw new FormatException("record " + i + " has offset delta " + offsetDelta);
            }
            int keyLength = VarInts.getUnsigned(r);
            skip(r, keyLength == 0 ? 0 : keyLength - 1, i);
            for (int t = VarInts.getUnsigned(r); t > 0; t--) {
                skip(r, VarInts.getUnsigned(r), i);
            }
            for (int h = VarInts.getUnsigned(r); h > 0; h--) {
                skip(r, VarInts.getUnsigned(r), i);
                skip(r, VarInts.getUnsigned(r), i);
            }
            int payloadLength = VarInts.getUnsigned(r);
            if (payloadLength != r.remaining()) {
                throw new FormatException("record " + i + " payload length " + payloadLength + " but " + r.remaining() + " bytes left");
            }
            buf.position(recordEnd);
        }
        if (buf.hasRemaining()) {
            throw new FormatException(buf.remaining() + " bytes after the last record");
        }
        if (max != v.maxTimestamp()) {
            throw new FormatException("maxTimestamp " + v.maxTimestamp() + " but the records' largest is " + max);
        }
    }

    /** The records of {@code batch}: a view of its bytes from the first record to the batch's end. */
    private static ByteBuffer records(BatchView batch) {
        ByteBuffer buf = batch.buffer().duplicate();
        int start = buf.position();
        return buf.limit(start + batch.sizeInBytes()).position(start + HEADER_SIZE);
    }

    /**
     * The framing of record {@code i} of a batch: reads its length at {@code buf}'s position and returns where the
     * record ends, the position after its last byte; throws {@link FormatException} if it runs past {@code buf}'s limit.
     */
    private static int recordEnd(ByteBuffer buf, int i) {
        int length = VarInts.getUnsigned(buf);
        if (length > buf.remaining()) {
            throw new FormatException("record " + i + " claims " + length + " bytes, " + buf.remaining() + " left");
        }
        return buf.position() + length;
    }

    private static void skip(ByteBuffer r, int n, int record) {
        if (n > r.remaining()) {
            throw new FormatException("record " + record + ": a field of " + n + " bytes runs past the record");
        }
        r.position(r.position() + n);
    }

    /**
     * A leader's stamp on a writer's batch (checked with {@link #validate}): sets its base offset, leader epoch,
     * producer id and base sequence in place, and the checksum over them. {@code batch} starts at its position.
     */
    public static void restamp(ByteBuffer batch, long baseOffset, int leaderEpoch, long producerId, int baseSequence) {
        int start = batch.position();
        int size = batch.getInt(start) + LENGTH_FIELD;
        batch.putLong(start + BASE_OFFSET_OFFSET, baseOffset).putInt(start + LEADER_EPOCH_OFFSET, leaderEpoch)
                .putLong(start + PRODUCER_ID_OFFSET, producerId).putInt(start + BASE_SEQUENCE_OFFSET, baseSequence);
        batch.putInt(start + CRC_OFFSET, computeCrc(batch, start, size));
    }

    /**
     * Checks and decodes whole batches laid end to end from {@code batches.position()} to its limit, as a
     * fetch sends them: the records with offsets in [{@code fromOffset}, {@code toOffsetExclusive}) that
     * {@code skip} does not reject, at most {@code maxRecords}. Every batch is checked with
     * {@link BatchView#verify} first (so a reader far from the disk checks the checksum the leader wrote);
     * throws {@link FormatException} for a damaged or cut batch, or one that does not follow its predecessor.
     * The buffer must be a heap buffer.
     */
    public static List<LogRecord> decodeBatches(ByteBuffer batches, long fromOffset, long toOffsetExclusive,
                                                java.util.function.LongPredicate skip, int maxRecords) {
        List<LogRecord> out = new ArrayList<>();
        ByteBuffer buf = batches.duplicate();
        long expected = -1;
        while (buf.hasRemaining() && out.size() < maxRecords) {
            BatchView v = BatchView.at(buf);
            v.verify();
            if (expected >= 0 && v.baseOffset() != expected) {
                throw new FormatException("batch starts at offset " + v.baseOffset() + ", expected " + expected);
            }
            expected = v.nextOffset();
            if (v.baseOffset() >= toOffsetExclusive) {
                break;
            }
            if (v.nextOffset() > fromOffset) {
                for (LogRecord r : decode(v, fromOffset, toOffsetExclusive, Integer.MAX_VALUE)) {
                    if (out.size() < maxRecords && !skip.test(r.offset())) {
                        out.add(r);
                    }
                }
            }
            buf.position(buf.position() + v.sizeInBytes());
        }
        return out;
    }

    private static final byte[] NO_BYTES = new byte[0];

    private static void skip(ByteBuffer r, int length) {
        if (length > r.remaining()) {
            throw new FormatException("string of " + length + " bytes runs past the record");
        }
        r.position(r.position() + length);
    }

    /** A UTF-8 string of {@code length} bytes at the buffer's position (read in place from a heap buffer). */
    private static String string(ByteBuffer r, int length) {
        if (length > r.remaining()) {
            throw new FormatException("string of " + length + " bytes runs past the record");
        }
        if (!r.hasArray()) {
            byte[] bytes = new byte[length];
            r.get(bytes);
            return new String(bytes, StandardCharsets.UTF_8);
        }
        String s = new String(r.array(), r.arrayOffset() + r.position(), length, StandardCharsets.UTF_8);
        r.position(r.position() + length);
        return s;
    }

    /** A record turned into bytes once, so the batch size is known before the buffer is allocated. */
    private record EncodedRecord(byte[] key, byte[][] tags, byte[][] headers, byte[] payload, long timestampDelta,
                                 int offsetDelta, int bodyLength) {
        static EncodedRecord of(AppendRecord r, long timestampDelta, int offsetDelta) {
            byte[] key = r.key() == null ? null : r.key().getBytes(StandardCharsets.UTF_8);
            int body = 1 + VarInts.sizeOfZigZag(timestampDelta) + VarInts.sizeOfUnsigned(offsetDelta);
            body += key == null ? 1 : VarInts.sizeOfUnsigned(key.length + 1) + key.length;
            byte[][] tags = new byte[r.tags().size()][];
            body += VarInts.sizeOfUnsigned(tags.length);
            for (int i = 0; i < tags.length; i++) {
                tags[i] = r.tags().get(i).getBytes(StandardCharsets.UTF_8);
                body += VarInts.sizeOfUnsigned(tags[i].length) + tags[i].length;
            }
            byte[][] headers = new byte[r.headers().size() * 2][];
            body += VarInts.sizeOfUnsigned(r.headers().size());
            for (int i = 0; i < r.headers().size(); i++) {
                headers[2 * i] = r.headers().get(i).name().getBytes(StandardCharsets.UTF_8);
                headers[2 * i + 1] = r.headers().get(i).value().getBytes(StandardCharsets.UTF_8);
                body += VarInts.sizeOfUnsigned(headers[2 * i].length) + headers[2 * i].length
                        + VarInts.sizeOfUnsigned(headers[2 * i + 1].length) + headers[2 * i + 1].length;
            }
            body += VarInts.sizeOfUnsigned(r.payload().length) + r.payload().length;
            return new EncodedRecord(key, tags, headers, r.payload(), timestampDelta, offsetDelta, body);
        }

        void writeTo(ByteBuffer buf) {
            VarInts.putUnsigned(buf, bodyLength);
            buf.put((byte) 0);
            VarInts.putZigZag(buf, timestampDelta);
            VarInts.putUnsigned(buf, offsetDelta);
            if (key == null) {
                VarInts.putUnsigned(buf, 0);
            } else {
                VarInts.putUnsigned(buf, key.length + 1);
                buf.put(key);
            }
            VarInts.putUnsigned(buf, tags.length);
            for (byte[] t : tags) {
                VarInts.putUnsigned(buf, t.length);
                buf.put(t);
            }
            VarInts.putUnsigned(buf, headers.length / 2);
            for (byte[] h : headers) {
                VarInts.putUnsigned(buf, h.length);
                buf.put(h);
            }
            VarInts.putUnsigned(buf, payload.length);
            buf.put(payload);
        }
    }
}
