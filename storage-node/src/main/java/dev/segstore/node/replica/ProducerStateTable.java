package dev.segstore.node.replica;

import dev.segstore.log.FileSlice;
import dev.segstore.log.SegmentLog;
import dev.segstore.log.format.BatchView;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;

/**
 * Idempotent appends: per producer id, the last few batches appended (sequence range and offsets), so that a
 * retried batch is answered with its original offsets instead of being appended twice. Both leaders and
 * followers keep it up to date from the batches they append, so a new leader recognises retries at once.
 *
 * <p>Not thread-safe: owned by its partition's owner thread.
 */
public final class ProducerStateTable {
    /** How many recent batches per producer are remembered (a producer with more in flight gets errors). */
    public static final int BATCHES_PER_PRODUCER = 256;

    /** Offsets of an appended batch. */
    public record Appended(int baseSequence, int lastSequence, long baseOffset, long lastOffset) {
    }

    /** What to do with an incoming batch. */
    public sealed interface Check permits New, Duplicate, OutOfOrder {
    }

    public record New() implements Check {
    }

    public record Duplicate(Appended original) implements Check {
    }

    public record OutOfOrder(String reason) implements Check {
    }

    /** A producer's recent batches (in the order appended) and the highest sequence it forgot. */
    private static final class Producer {
        final ArrayDeque<Appended> recent = new ArrayDeque<>();
        int maxForgottenSequence = -1;
    }

    private final Map<Long, Producer> producers = new HashMap<>();

    /**
     * Sequences need not arrive in order (a client with several batches in flight retries them in any order
     * after a leader change): a batch is a retry if it is among the recent ones, new if its sequence is above
     * every forgotten one, and refused if it might be a forgotten batch (the leader cannot tell any more).
     */
    public Check check(long producerId, int baseSequence, int count) {
        if (producerId < 0) {
            return new New();
        }
        Producer p = producers.get(producerId);
        if (p == null) {
            return new New();
        }
        for (Appended a : p.recent) {
            if (a.baseSequence() == baseSequence) {
                if (a.lastSequence() - a.baseSequence() + 1 != count) {
                    return new OutOfOrder("producer " + producerId + " sequence " + baseSequence + " was a batch of "
                            + (a.lastSequence() - a.baseSequence() + 1) + " records, the retry has " + count);
                }
                return new Duplicate(a);
            }
        }
        if (baseSequence <= p.maxForgottenSequence) {
            return new OutOfOrder("producer " + producerId + " sequence " + baseSequence + " is at or below "
                    + p.maxForgottenSequence + ", which was forgotten: too old to be recognised as a retry");
        }
        return new New();
    }

    public void record(long producerId, int baseSequence, int count, long baseOffset) {
        if (producerId < 0) {
            return;
        }
        Producer p = producers.computeIfAbsent(producerId, k -> new Producer());
        for (Appended a : p.recent) {
            if (a.baseOffset() == baseOffset) {
                return; // known already (read back from the log, then appended by a fetch that was in flight)
            }
        }
        p.recent.addLast(new Appended(baseSequence, baseSequence + count - 1, baseOffset, baseOffset + count - 1));
        while (p.recent.size() > BATCHES_PER_PRODUCER) {
            p.maxForgottenSequence = Math.max(p.maxForgottenSequence, p.recent.removeFirst().lastSequence());
        }
    }

    /**
     * Records the producer fields of the batches in about the last {@code maxBytes} of {@code log} (all of it
     * when smaller): what a replica restarted since it stored them must learn again.
     */
    public void readBack(SegmentLog log, long maxBytes) throws IOException {
        long start = log.logStartOffset();
        long end = log.writtenEndOffset();
        long size = log.sizeInBytes();
        // Offsets are dense, so the record count scales to bytes well enough to find where the tail starts.
        long offset = size <= maxBytes || end <= start ? start
                : Math.max(start, end - (long) ((double) (end - start) * maxBytes / size));
        while (offset < end) {
            try (FileSlice slice = log.readSlice(offset, READ_BACK_CHUNK_BYTES, end)) {
                if (slice.isEmpty()) {
                    return;
                }
                ByteBuffer b = slice.read();
                while (b.hasRemaining()) {
                    BatchView v = BatchView.at(b);
                    record(v.producerId(), v.baseSequence(), v.recordCount(), v.baseOffset());
                    b.position(b.position() + v.sizeInBytes());
                }
                offset = slice.nextOffset();
            }
        }
    }

    private static final int READ_BACK_CHUNK_BYTES = 4 << 20;

    /** Forgets batches at or after {@code offset} (the log was truncated there). */
    public void truncateTo(long offset) {
        producers.values().forEach(p -> p.recent.removeIf(a -> a.lastOffset() >= offset));
        producers.values().removeIf(p -> p.recent.isEmpty() && p.maxForgottenSequence < 0);
    }

    public int producerCount() {
        return producers.size();
    }
}
