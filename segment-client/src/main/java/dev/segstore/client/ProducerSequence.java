package dev.segstore.client;

import java.util.function.LongSupplier;

/**
 * The producer id and the next sequence that an adapter's new batches to one shard go out under.
 *
 * <p>A sequence is an int32 wherever it is kept: {@code ProduceRequest.base_sequence} (node.proto), the batch
 * header on disk (on-disk-formats.md) and the leaders' producer state. So a shard's sequences must never pass
 * {@link Integer#MAX_VALUE}: the next one would be negative, which a leader refuses as "at or below a forgotten
 * sequence" (or, new to a segment, takes as a new batch), and a batch's last sequence would wrap. Widening the
 * field would change the wire, the disk format and every replica's producer state; instead, before a batch's
 * sequences would pass the largest, the shard rolls to a fresh random producer id and starts again at 0.
 * A leader keeps producer state per producer id, so batches under the new id start a new, in-order run there,
 * and batches sent under the old id keep that id and their sequences on every retry (the caller stamps a
 * batch once, {@link #take}, and re-sends the stamp): they are still recognised as retries.
 *
 * <p>Thread-safe. The caller holds this object's monitor while it takes a stamp and sends the batch, so new
 * batches reach the leader in sequence order.
 */
final class ProducerSequence {
    /** The producer id and first sequence of one batch. */
    record Stamp(long producerId, int baseSequence) {
    }

    private final LongSupplier newProducerId;
    private long producerId;
    private long next; // a long: after a batch ending at Integer.MAX_VALUE it is one more

    /**
     * @param newProducerId gives fresh producer ids (non-negative: a negative id means "not idempotent")
     * @param firstSequence the first sequence under the first id (0; tests start near the wrap)
     */
    ProducerSequence(LongSupplier newProducerId, int firstSequence) {
        if (firstSequence < 0) {
            throw new IllegalArgumentException("firstSequence must be >= 0: " + firstSequence);
        }
        this.newProducerId = newProducerId;
        this.producerId = newProducerId.getAsLong();
        this.next = firstSequence;
    }

    /** The stamp of a new batch of {@code count} records; rolls the producer id first if its sequences would wrap. */
    synchronized Stamp take(int count) {
        if (count < 1) {
            throw new IllegalArgumentException("count must be >= 1: " + count);
        }
        if (next + count - 1 > Integer.MAX_VALUE) {
            long old = producerId;
            do {
                producerId = newProducerId.getAsLong();
            } while (producerId == old);
            next = 0;
        }
        Stamp s = new Stamp(producerId, (int) next);
        next += count;
        return s;
    }
}
