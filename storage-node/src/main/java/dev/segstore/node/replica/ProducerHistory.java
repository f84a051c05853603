package dev.segstore.node.replica;

import dev.segstore.adapter.ErrorCode;
import dev.segstore.log.SegmentLog;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;

/**
 * What a replica knows of the producers' batches in its log ({@link ProducerStateTable}), and how it learns what
 * it does not know yet: a replica restarted since it stored a batch knows nothing of it until it reads its log back.
 * A leader needs it to answer a retry with its original offsets instead of appending it again
 * ({@link Partition#append}, {@link Partition#findRetried}).
 *
 * <p>What is known: at first, every batch of an empty log (each is recorded as it is appended) or of a snapshot
 * taken at a clean stop ({@link #restore}); else, before the first write as leader, the batches in the last
 * {@code scanBytes} of the log ({@link #load}); the batches below that only once a retry needs them
 * ({@link #readOlder}), read off the partition's threads.
 *
 * <p>Threads: not safe on its own. Every method is called under the partition's monitor ({@code lock}); the
 * read-back of older batches runs on another thread ({@link #READ_BACK} unless a test sets another) without it, and
 * takes the monitor to merge its result.
 */
final class ProducerHistory {
    private static final Logger LOG = LoggerFactory.getLogger(ProducerHistory.class);
    /** Where read-backs of older batches run: never on the owner thread, which goes on taking writes meanwhile. */
    private static final Executor READ_BACK = java.util.concurrent.Executors.newFixedThreadPool(2, r -> {
        Thread t = new Thread(r, "producer-read-back");
        t.setDaemon(true);
        return t;
    });

    private final String name;
    private final SegmentLog log;
    /** The partition's monitor, which guards this object. */
    private final Object lock;
    private final long scanBytes;
    private ProducerStateTable table = new ProducerStateTable();
    /** False until the producer state was read back from the log: it may hold batches from before a restart. */
    private boolean loaded;
    /**
     * Once loaded: the producer state knows no batch below this offset (where the tail read back began, or a
     * truncation below it); at or below the log start once the whole log was read. The batches below it are read
     * on demand, for a retry the state does not recognise ({@link #readOlder}).
     */
    private long unreadBelow;
    /** Bumped at every truncation of the producer state: a read-back of older batches begun before it is dropped. */
    private long truncations;
    /** The read-back of the batches below {@link #unreadBelow} under way for retries, or null. */
    private CompletableFuture<Void> olderRead;
    private Executor readBackExecutor = READ_BACK;

    ProducerHistory(String name, SegmentLog log, Object lock, long scanBytes) {
        if (scanBytes < 1) {
            throw new IllegalArgumentException("producerScanBytes must be >= 1: " + scanBytes);
        }
        this.name = name;
        this.log = log;
        this.lock = lock;
        this.scanBytes = scanBytes;
        if (log.logEndOffset() == log.logStartOffset()) {
            loaded = true; // an empty log: every batch it will hold is recorded as it is appended
            unreadBelow = log.logStartOffset();
        }
    }

    /**
     * The producer state as bytes for {@link #restore} after a restart, or null unless it knows every batch of the
     * log (it read the whole log back, restored a complete state, or began with an empty log) and the log is online.
     * Format: the log end offset (i64), then {@link ProducerStateTable#toBytes()}.
     */
    byte[] snapshot() {
        if (!loaded || olderUnread() || olderRead != null || !log.isOnline()) {
            return null;
        }
        byte[] bytes = table.toBytes();
        return ByteBuffer.allocate(8 + bytes.length).putLong(log.logEndOffset()).put(bytes).array();
    }

    /**
     * Takes the state {@link #snapshot()} saved, used only if the log still ends where it ended then (a crash after
     * the stop that lost unsynced bytes, or a replaced disk, changes that). Returns whether it was used.
     */
    boolean restore(byte[] snapshot) {
        ByteBuffer b = ByteBuffer.wrap(snapshot);
        long end = b.getLong();
        if (end != log.logEndOffset()) {
            LOG.info("{}: the producer state saved at log end {} is not used: the log ends at {}", name, end, log.logEndOffset());
            return false;
        }
        byte[] bytes = new byte[b.remaining()];
        b.get(bytes);
        try {
            table = ProducerStateTable.fromBytes(bytes);
        } catch (IllegalArgumentException e) {
            LOG.warn("{}: the producer state saved at log end {} is not used: {}", name, end, e.getMessage());
            return false;
        }
        loaded = true;
        unreadBelow = log.logStartOffset();
        return true;
    }

    /**
     * Before the replica first answers a write as leader: records the producer fields of the batches in the last
     * {@code scanBytes} of its log, which a replica restarted since it stored them does not know. A retry of one of
     * them is then answered with its original offsets, not appended again. Batches fetched meanwhile are known
     * already ({@link ProducerStateTable#record} skips them). Older batches are read only for a retry that needs them
     * ({@link #readOlder}).
     */
    void load() {
        if (loaded) {
            return;
        }
        try {
            unreadBelow = table.readBack(log, scanBytes);
        } catch (IOException e) {
            throw new ReplicaException(ErrorCode.STORAGE_ERROR, name + ": reading the producer state back failed: " + e);
        }
        loaded = true; // not before: a failed read is tried again by the next write
    }

    ProducerStateTable.Check check(long producerId, int baseSequence, int count) {
        return table.check(producerId, baseSequence, count);
    }

    void record(long producerId, int baseSequence, int count, long baseOffset) {
        table.record(producerId, baseSequence, count, baseOffset);
    }

    /** Whether the producer state was read back from the log's tail only: batches below it are not known. */
    boolean olderUnread() {
        return unreadBelow > log.logStartOffset();
    }

    /**
     * For a retry the producer state does not know (a write flagged may_be_duplicate, or a probe) while the state
     * was read back from the log's tail only: reads back the rest of the log, once, so that a batch stored before
     * the tail is recognised too. A write that is surely new never waits for it. The read runs on
     * {@link #readBackExecutor}, not under the partition's monitor: on a log of a few hundred MiB it takes a second
     * or more, and every other write of the segment waited behind it (1.5 s in a rolling restart). Its result is
     * merged only if no truncation of the producer state happened meanwhile (the part read may then be gone); else
     * the retries waiting for it are taken again and ask for another read if they still need one. Completes once the
     * read is merged or dropped; fails STORAGE_ERROR if it failed.
     */
    CompletableFuture<Void> readOlder() {
        if (olderRead != null) {
            return olderRead; // one read for every retry waiting
        }
        long from = log.logStartOffset();
        long before = unreadBelow;
        long truncationsThen = truncations;
        CompletableFuture<Void> read = new CompletableFuture<>();
        olderRead = read;
        try {
            readBackExecutor.execute(() -> {
                ProducerStateTable.Older older;
                try {
                    older = ProducerStateTable.scan(log, from, before);
                } catch (IOException | RuntimeException e) {
                    synchronized (lock) {
                        olderRead = null;
                    }
                    read.completeExceptionally(new ReplicaException(ErrorCode.STORAGE_ERROR, name + ": reading the producer state back failed: " + e));
                    return;
                }
                synchronized (lock) {
                    olderRead = null;
                    if (truncationsThen == truncations && log.logStartOffset() <= from) {
                        table.merge(older);
                        unreadBelow = from;
                        LOG.info("{}: read back the producer state of offsets {} to {} for a retry", name, from, before);
                    } else {
                        LOG.info("{}: dropped the producer state read back from offsets {} to {}: the log was truncated meanwhile", name, from, before);
                    }
                }
                read.complete(null);
            });
        } catch (java.util.concurrent.RejectedExecutionException e) {
            olderRead = null;
            return CompletableFuture.failedFuture(new ReplicaException(ErrorCode.STORAGE_ERROR, name + ": reading the producer state back failed: " + e));
        }
        return read;
    }

    /** Tests: runs the read-backs of older batches on {@code executor} (to hold one while writes go on). */
    void readBackOn(Executor executor) {
        this.readBackExecutor = executor;
    }

    /** Forgets the producer state at or after {@code end} (the log was truncated there). */
    void truncateTo(long end) {
        table.truncateTo(end);
        unreadBelow = Math.min(unreadBelow, end); // what it knows from there on came later
        truncations++;
    }
}
