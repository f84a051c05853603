package dev.segstore.log.format;

import java.nio.ByteBuffer;

/**
 * Read-only accessors over a batch header (see {@link RecordBatch} for the layout). The view does not copy:
 * it reads the buffer at {@code start}. {@link #verify} checks a whole batch before anyone trusts its fields.
 */
public record BatchView(ByteBuffer buffer, int start) {

    /** Wraps the batch at the buffer's position. */
    public static BatchView at(ByteBuffer buffer) {
        return new BatchView(buffer, buffer.position());
    }

    public ByteBuffer buffer() {
        return buffer.duplicate().position(start);
    }

    /** Bytes the whole batch occupies, length field included. */
    public int sizeInBytes() {
        return buffer.getInt(start) + RecordBatch.LENGTH_FIELD;
    }

    public int crc() {
        return buffer.getInt(start + RecordBatch.CRC_OFFSET);
    }

    public byte magic() {
        return buffer.get(start + RecordBatch.MAGIC_OFFSET);
    }

    public byte attributes() {
        return buffer.get(start + RecordBatch.ATTRIBUTES_OFFSET);
    }

    public long baseOffset() {
        return buffer.getLong(start + RecordBatch.BASE_OFFSET_OFFSET);
    }

    public int recordCount() {
        return buffer.getInt(start + RecordBatch.RECORD_COUNT_OFFSET);
    }

    public long lastOffset() {
        return baseOffset() + recordCount() - 1;
    }

    /** The offset after this batch's last record. */
    public long nextOffset() {
        return baseOffset() + recordCount();
    }

    public int leaderEpoch() {
        return buffer.getInt(start + RecordBatch.LEADER_EPOCH_OFFSET);
    }

    public long firstTimestamp() {
        return buffer.getLong(start + RecordBatch.FIRST_TIMESTAMP_OFFSET);
    }

    public long maxTimestamp() {
        return buffer.getLong(start + RecordBatch.MAX_TIMESTAMP_OFFSET);
    }

    public long producerId() {
        return buffer.getLong(start + RecordBatch.PRODUCER_ID_OFFSET);
    }

    public int baseSequence() {
        return buffer.getInt(start + RecordBatch.BASE_SEQUENCE_OFFSET);
    }

    /**
     * Checks the length field against the bytes available, then the checksum, magic and header fields.
     * Throws {@link FormatException} naming the first problem; returns normally only for a whole, intact batch.
     */
    public void verify() {
        int available = buffer.limit() - start;
        if (available < RecordBatch.LENGTH_FIELD) {
            throw new FormatException("only " + available + " bytes left, a batch needs a length field");
        }
        int length = buffer.getInt(start);
        if (length < RecordBatch.MIN_BATCH_SIZE - RecordBatch.LENGTH_FIELD
                || length > RecordBatch.MAX_BATCH_SIZE - RecordBatch.LENGTH_FIELD) {
            throw new FormatException("batch length " + length + " out of range");
        }
        if (length + RecordBatch.LENGTH_FIELD > available) {
            throw new FormatException("batch of " + (length + RecordBatch.LENGTH_FIELD) + " bytes but only "
                    + available + " bytes left");
        }
        int crc = RecordBatch.computeCrc(buffer, start, length + RecordBatch.LENGTH_FIELD);
        if (crc != crc()) {
            throw new FormatException(String.format("batch checksum mismatch (stored 0x%08x, computed 0x%08x)", crc(), crc));
        }
        if (magic() != RecordBatch.MAGIC_V1) {
            throw new FormatException("unsupported batch format version " + magic());
        }
        if (recordCount() < 1 || baseOffset() < 0 || baseOffset() > Long.MAX_VALUE - recordCount()) {
            throw new FormatException("batch header: baseOffset " + baseOffset() + ", recordCount " + recordCount());
        }
        if (leaderEpoch() < 0 || maxTimestamp() < firstTimestamp()) {
            throw new FormatException("batch header: leaderEpoch " + leaderEpoch() + ", timestamps "
                    + firstTimestamp() + ".." + maxTimestamp());
        }
    }
}
