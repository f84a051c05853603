package dev.segstore.client;

import dev.segstore.adapter.ErrorCode;
import dev.segstore.adapter.NewRecord;
import dev.segstore.adapter.StorageException;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.function.Function;

/**
 * Coalesces concurrent single-record writes to one shard into batched requests (issue 14 item 3): a broker that
 * calls {@code write} once per record gets the throughput of batches without batching itself. While fewer than
 * {@code maxInFlight} batches of the shard are out, a write goes out at once (with whatever else is queued: no
 * linger, so one writer at a time sees no added latency); otherwise it waits in a FIFO queue, and each batch that
 * completes sends the next one, up to {@code maxRecords} records and {@code maxBytes} bytes (at least one record).
 *
 * <p>Each caller gets its own record's offset, or the batch's error: a batch is stored whole or not at all, so an
 * error (OUTCOME_UNKNOWN included) is true of every record in it. The one error that may belong to a single record,
 * RECORD_TOO_LARGE (refused before anything is stored), sends each record of that batch again alone, so that only
 * the record at fault fails. Writes queued in order go out in order (one FIFO queue; batches take their producer
 * sequence in the order they are sent), as separate calls did.
 *
 * <p>Thread-safe; the batch sender is called outside the lock.
 */
final class WriteCoalescer {
    private record Pending(NewRecord record, CompletableFuture<Long> result) {
    }

    private final SegmentStorageAdapter.WriteCoalescing limits;
    private final Function<List<NewRecord>, CompletableFuture<List<Long>>> sender;
    private final ArrayDeque<Pending> queue = new ArrayDeque<>();
    private int inFlight;

    /** @param sender sends one batch of the shard (the engine's batch write, retries and all) */
    WriteCoalescer(SegmentStorageAdapter.WriteCoalescing limits, Function<List<NewRecord>, CompletableFuture<List<Long>>> sender) {
        this.limits = limits;
        this.sender = sender;
    }

    CompletableFuture<Long> write(NewRecord record) {
        Pending p = new Pending(record, new CompletableFuture<>());
        List<Pending> batch = null;
        synchronized (this) {
            queue.add(p);
            if (inFlight < limits.maxInFlight()) {
                batch = take();
                inFlight++;
            }
        }
        if (batch != null) {
            send(batch);
        }
        return p.result();
    }

    /** Batches out now (tests). */
    synchronized int inFlight() {
        return inFlight;
    }

    /** The head of the queue up to the limits (at least one record). Under the lock. */
    private List<Pending> take() {
        List<Pending> batch = new ArrayList<>();
        long bytes = 0;
        while (!queue.isEmpty() && batch.size() < limits.maxRecords()) {
            long size = queue.peek().record().sizeInBytes();
            if (!batch.isEmpty() && bytes + size > limits.maxBytes()) {
                break;
            }
            bytes += size;
            batch.add(queue.poll());
        }
        return batch;
    }

    private void send(List<Pending> batch) {
        apply(batch.stream().map(Pending::record).toList()).whenComplete((offsets, e) -> {
            if (e != null && batch.size() > 1 && code(e) == ErrorCode.RECORD_TOO_LARGE) {
                // Refused before anything was stored: each record alone, so that only the one at fault fails.
                for (Pending p : batch) {
                    sendAlone(p);
                }
            } else {
                complete(batch, offsets, e);
            }
            List<Pending> next;
            synchronized (this) {
                next = queue.isEmpty() ? null : take();
                if (next == null) {
                    inFlight--;
                }
            }
            if (next != null) {
                send(next);
            }
        });
    }

    private void sendAlone(Pending p) {
        apply(List.of(p.record())).whenComplete((offsets, e) -> complete(List.of(p), offsets, e));
    }

    /** The sender's answer for {@code records}; a sender that throws fails the batch instead. */
    private CompletableFuture<List<Long>> apply(List<NewRecord> records) {
        try {
            return sender.apply(records);
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
    }

    /**
     * Each caller its own record's offset, or the batch's error, wrapped as a dependent stage would wrap it (as the
     * uncoalesced write, a stage of the batch write, failed).
     */
    private static void complete(List<Pending> batch, List<Long> offsets, Throwable e) {
        Throwable cause = e == null || e instanceof CompletionException ? e : new CompletionException(e);
        for (int i = 0; i < batch.size(); i++) {
            if (cause != null) {
                batch.get(i).result().completeExceptionally(cause);
            } else {
                batch.get(i).result().complete(offsets.get(i));
            }
        }
    }

    private static ErrorCode code(Throwable t) {
        Throwable e = t instanceof CompletionException && t.getCause() != null ? t.getCause() : t;
        return e instanceof StorageException se ? se.code() : null;
    }
}
