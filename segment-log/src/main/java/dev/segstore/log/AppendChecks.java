package dev.segstore.log;

import dev.segstore.log.format.BatchView;
import dev.segstore.log.format.FormatException;
import dev.segstore.log.format.RecordBatch;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * The checks a {@link SegmentLog} makes on what it is asked to append, before anything is reserved or queued: a
 * leader's epoch, a batch's size, a writer's own batch ({@link SegmentLog#appendEncodedAsLeader}) and the batches
 * fetched from the leader ({@link SegmentLog#appendAsFollower}). A failed check is a {@link LogException} and
 * nothing is appended. Holds no state and takes no lock: the log passes what a check needs (its end offset, its
 * latest epoch), under its monitor.
 */
final class AppendChecks {
    private final String name;
    private final LogConfig config;

    AppendChecks(String name, LogConfig config) {
        this.name = name;
        this.config = config;
    }

    /** INVALID_ARGUMENT for a negative {@code leaderEpoch} or one older than the log's {@code latest}. */
    void leaderEpoch(int leaderEpoch, int latest) {
        if (leaderEpoch < 0 || leaderEpoch < latest) {
            throw LogException.invalid("log " + name + ": leader epoch " + leaderEpoch
                    + " is older than the log's latest epoch " + latest);
        }
    }

    /** RECORD_TOO_LARGE above {@link LogConfig#maxBatchBytes()}. */
    void batchSize(ByteBuffer batch) {
        if (batch.remaining() > config.maxBatchBytes()) {
            throw new LogException(LogException.Kind.RECORD_TOO_LARGE, "log " + name + ": batch of "
                    + batch.remaining() + " bytes exceeds maxBatchBytes " + config.maxBatchBytes());
        }
    }

    /**
     * A batch a writer encoded itself: RECORD_TOO_LARGE as {@link #batchSize}, INVALID_ARGUMENT if it is malformed
     * ({@link RecordBatch#validate}) or bytes follow it.
     */
    void encodedBatch(ByteBuffer batch) {
        batchSize(batch);
        try {
            RecordBatch.validate(batch);
        } catch (FormatException e) {
            throw LogException.invalid("log " + name + ": the batch to append is malformed: " + e.getMessage());
        }
        if (BatchView.at(batch).sizeInBytes() != batch.remaining()) {
            throw LogException.invalid("log " + name + ": " + (batch.remaining() - BatchView.at(batch).sizeInBytes())
                    + " bytes after the batch to append");
        }
    }

    /**
     * Checks {@code batches} (whole batches back to back, fetched from the leader) and returns a view of each: every
     * checksum, offsets that continue the log from {@code expected} (its end) exactly, epochs that never go below
     * {@code epoch} nor back.
     *
     * @throws LogException CORRUPT_DATA for bad bytes or an older epoch, OFFSET_MISMATCH for a gap or an overlap,
     *                      INVALID_ARGUMENT for no batch
     */
    List<BatchView> followerBatches(ByteBuffer batches, long expected, int epoch) {
        List<BatchView> views = new ArrayList<>();
        ByteBuffer buf = batches.duplicate();
        while (buf.hasRemaining()) {
            BatchView v = BatchView.at(buf);
            try {
                v.verify();
            } catch (FormatException e) {
                throw LogException.corrupt("log " + name + ": fetched batch at byte " + (buf.position() - batches.position())
                        + ": " + e.getMessage());
            }
            if (v.baseOffset() != expected) {
                throw new LogException(LogException.Kind.OFFSET_MISMATCH, "log " + name + ": fetched batch starts at offset "
                        + v.baseOffset() + " but the log ends at " + expected + " (" + (v.baseOffset() > expected ? "gap" : "overlap") + ")");
            }
            if (v.leaderEpoch() < epoch) {
                throw LogException.corrupt("log " + name + ": fetched batch at offset " + v.baseOffset() + " has leader epoch "
                        + v.leaderEpoch() + ", older than " + epoch);
            }
            epoch = v.leaderEpoch();
            expected = v.nextOffset();
            views.add(new BatchView(buf.slice(buf.position(), v.sizeInBytes()), 0));
            buf.position(buf.position() + v.sizeInBytes());
        }
        if (views.isEmpty()) {
            throw LogException.invalid("log " + name + ": a follower append needs at least one batch");
        }
        return views;
    }
}
