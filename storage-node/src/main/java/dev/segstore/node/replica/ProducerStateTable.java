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

        /** Remembers {@code a} as the newest batch, unless known already; forgets the oldest beyond the limit. */
        void add(Appended a) {
            for (Appended known : recent) {
                if (known.baseOffset() == a.baseOffset()) {
                    return; // known already (read back from the log, then appended by a fetch that was in flight)
                }
            }
            recent.addLast(a);
            while (recent.size() > BATCHES_PER_PRODUCER) {
                maxForgottenSequence = Math.max(maxForgottenSequence, recent.removeFirst().lastSequence());
            }
        }
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
        if (baseSequence < 0 || (long) baseSequence + count - 1 > Integer.MAX_VALUE) {
            // Sequences are int32 and never wrap: a client rolls to a new producer id first. One that wrapped
            // anyway would have its retries taken for new batches (stored twice), so it is refused, not guessed.
            return new OutOfOrder("producer " + producerId + " sequence " + baseSequence + " with " + count
                    + " records is outside 0.." + Integer.MAX_VALUE + ": sequences must not wrap (roll the producer id)");
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
        producers.computeIfAbsent(producerId, k -> new Producer())
                .add(new Appended(baseSequence, baseSequence + count - 1, baseOffset, baseOffset + count - 1));
    }

    /**
     * Records the producer fields of the batches in about the last {@code maxBytes} of {@code log} (all of it
     * when smaller): what a replica restarted since it stored them must learn again. Returns the offset the
     * read began at (a batch's base offset; the log start when it read everything): the batches below it are
     * not known, {@link #readBack(SegmentLog, long, long)} reads them when a retry needs them.
     */
    public long readBack(SegmentLog log, long maxBytes) throws IOException {
        long start = log.logStartOffset();
        long end = log.writtenEndOffset();
        long size = log.sizeInBytes();
        // Offsets are dense, so the record count scales to bytes well enough to find where the tail starts.
        long offset = size <= maxBytes || end <= start ? start
                : Math.max(start, end - (long) ((double) (end - start) * maxBytes / size));
        return readBack(log, offset, end);
    }

    /**
     * Records the producer fields of the batches from the one holding {@code from} to the last one starting
     * below {@code before}, as older than every batch this table knows (they lie before the part of the log
     * read back already, and before what was appended or fetched since). Returns the base offset of the first
     * batch read ({@code from} if none).
     */
    public long readBack(SegmentLog log, long from, long before) throws IOException {
        return merge(scan(log, from, before));
    }

    /** What {@link #scan} read from a part of a log: the producer state of its batches, not yet merged into a table. */
    public static final class Older {
        private final ProducerStateTable table;
        private final long firstBaseOffset;

        private Older(ProducerStateTable table, long firstBaseOffset) {
            this.table = table;
            this.firstBaseOffset = firstBaseOffset;
        }
    }

    /**
     * Reads the producer fields of the batches from the one holding {@code from} to the last one starting below
     * {@code before}, touching no table: it may run on any thread while the log's owner goes on appending (the
     * part read lies below the end and is never rewritten; the caller checks that no truncation cut into it
     * before it {@linkplain #merge merges} the result).
     */
    public static Older scan(SegmentLog log, long from, long before) throws IOException {
        ProducerStateTable older = new ProducerStateTable();
        long first = -1;
        long offset = from;
        while (offset < before) {
            try (FileSlice slice = log.readSlice(offset, READ_BACK_CHUNK_BYTES, before)) {
                if (slice.isEmpty()) {
                    break;
                }
                ByteBuffer b = slice.read();
                while (b.hasRemaining()) {
                    BatchView v = BatchView.at(b);
                    if (first < 0) {
                        first = v.baseOffset();
                    }
                    older.record(v.producerId(), v.baseSequence(), v.recordCount(), v.baseOffset());
                    b.position(b.position() + v.sizeInBytes());
                }
                offset = slice.nextOffset();
            }
        }
        return new Older(older, first < 0 ? from : first);
    }

    /**
     * Adds what {@link #scan} read as older than every batch this table knows. Returns the base offset of the
     * first batch read (the scan's {@code from} if none).
     */
    public long merge(Older scanned) {
        Map<Long, Producer> merged = new HashMap<>(scanned.table.producers);
        scanned.table.producers.clear(); // merged once
        producers.forEach((id, newer) -> {
            Producer p = merged.computeIfAbsent(id, k -> new Producer());
            newer.recent.forEach(p::add);
            p.maxForgottenSequence = Math.max(p.maxForgottenSequence, newer.maxForgottenSequence);
        });
        producers.clear();
        producers.putAll(merged);
        return scanned.firstBaseOffset;
    }

    /** The version byte that starts {@link #toBytes()}. */
    private static final byte SNAPSHOT_VERSION = 1;

    /**
     * This table as bytes ({@link #fromBytes} reads them): version (1 byte), producer count (i32), then per
     * producer its id (i64), highest forgotten sequence (i32), batch count (i32) and each batch oldest first:
     * base and last sequence (i32 each), base and last offset (i64 each). Big-endian.
     */
    public byte[] toBytes() {
        int size = 1 + 4;
        for (Producer p : producers.values()) {
            size += 16 + p.recent.size() * 24;
        }
        ByteBuffer b = ByteBuffer.allocate(size).put(SNAPSHOT_VERSION).putInt(producers.size());
        producers.forEach((id, p) -> {
            b.putLong(id).putInt(p.maxForgottenSequence).putInt(p.recent.size());
            p.recent.forEach(a -> b.putInt(a.baseSequence()).putInt(a.lastSequence()).putLong(a.baseOffset()).putLong(a.lastOffset()));
        });
        return b.array();
    }

    /** The table {@link #toBytes()} wrote; IllegalArgumentException for bytes it did not write. */
    public static ProducerStateTable fromBytes(byte[] bytes) {
        ProducerStateTable t = new ProducerStateTable();
        try {
            ByteBuffer b = ByteBuffer.wrap(bytes);
            if (b.get() != SNAPSHOT_VERSION) {
                throw new IllegalArgumentException("unknown producer state version " + bytes[0]);
            }
            for (int n = b.getInt(); n > 0; n--) {
                Producer p = new Producer();
                long id = b.getLong();
                p.maxForgottenSequence = b.getInt();
                for (int k = b.getInt(); k > 0; k--) {
                    p.recent.addLast(new Appended(b.getInt(), b.getInt(), b.getLong(), b.getLong()));
                }
                t.producers.put(id, p);
            }
            if (b.hasRemaining()) {
                throw new IllegalArgumentException(b.remaining() + " bytes after the producer state");
            }
        } catch (java.nio.BufferUnderflowException e) {
            throw new IllegalArgumentException("the producer state is cut short", e);
        }
        return t;
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
