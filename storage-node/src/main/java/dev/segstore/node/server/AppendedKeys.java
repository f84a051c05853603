package dev.segstore.node.server;

import dev.segstore.log.format.BatchView;
import dev.segstore.log.format.RecordBatch;
import dev.segstore.node.index.NodeIndex;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The keys and tags of one replica's appended batches, queued in the order appended until its {@link ReplicaIndex}
 * takes them, so that the index need not read the records back from the log.
 *
 * <p>One producer, the replica's log ({@link #add}: the appending thread, under the log's monitor; nothing here waits),
 * and one consumer, the index's catch-up ({@link #peek}, {@link #remove}: under the index's monitor). The queue holds at
 * most about {@code maxBytes} (estimated heap bytes) for the replica, and all the replicas of a node sharing one
 * {@link Budget} at most about its bytes together: a batch that would pass either is left out, and the index reads it
 * back from the log. {@link #close} empties the queue and takes no more.
 */
final class AppendedKeys {
    /** Estimated heap bytes of a queued batch, of an entry, and of a string beside its characters. */
    private static final long BATCH_BYTES = 64;
    private static final long ENTRY_BYTES = 64;
    private static final long STRING_BYTES = 56;

    /** The bytes the queues of a node's replicas may hold together. */
    static final class Budget {
        private final long maxBytes;
        private final AtomicLong bytes = new AtomicLong();

        Budget(long maxBytes) {
            this.maxBytes = maxBytes;
        }

        /** Estimated heap bytes queued now (tests). */
        long bytes() {
            return bytes.get();
        }
    }

    /**
     * One appended batch: its records with a key or a tag ({@code entries}), appended when the log's truncation count
     * was {@code truncations}; {@code bytes}: its estimated heap bytes.
     */
    record Appended(long truncations, long baseOffset, long nextOffset, long bytes, List<NodeIndex.Entry> entries) {
    }

    private final ConcurrentLinkedQueue<Appended> queue = new ConcurrentLinkedQueue<>();
    private final AtomicLong bytes = new AtomicLong();
    private final long maxBytes;
    private final Budget budget;
    private volatile boolean closed;

    AppendedKeys(long maxBytes, Budget budget) {
        this.maxBytes = maxBytes;
        this.budget = budget;
    }

    /** Queues the keys and tags of {@code batch}, appended at truncation count {@code truncations}, if there is room. */
    void add(BatchView batch, long truncations) {
        if (closed || bytes.get() >= maxBytes || budget.bytes.get() >= budget.maxBytes) {
            return;
        }
        List<NodeIndex.Entry> entries = new ArrayList<>(0);
        long[] size = {BATCH_BYTES};
        RecordBatch.forEachKeyOrTag(batch, (offset, key, tags) -> {
            entries.add(new NodeIndex.Entry(offset, key, tags));
            size[0] += ENTRY_BYTES + (key == null ? 0 : STRING_BYTES + key.length());
            for (String t : tags) {
                size[0] += STRING_BYTES + t.length();
            }
        });
        Appended a = new Appended(truncations, batch.baseOffset(), batch.nextOffset(), size[0],
                entries.isEmpty() ? List.of() : entries);
        bytes.addAndGet(a.bytes());
        budget.bytes.addAndGet(a.bytes());
        queue.add(a);
        if (closed) {
            clear(); // closed meanwhile: nothing stays queued for a replica gone
        }
    }

    /** The oldest batch queued, or null. */
    Appended peek() {
        return queue.peek();
    }

    /** Removes {@code a}, the batch {@link #peek} returned. */
    void remove(Appended a) {
        if (queue.peek() == a && queue.poll() == a) {
            bytes.addAndGet(-a.bytes());
            budget.bytes.addAndGet(-a.bytes());
        }
    }

    /** The replica is gone: empties the queue and takes no more. */
    void close() {
        closed = true;
        clear();
    }

    private void clear() {
        Appended a;
        while ((a = queue.poll()) != null) {
            bytes.addAndGet(-a.bytes());
            budget.bytes.addAndGet(-a.bytes());
        }
    }

    /** Estimated heap bytes queued (tests). */
    long bytes() {
        return bytes.get();
    }
}
