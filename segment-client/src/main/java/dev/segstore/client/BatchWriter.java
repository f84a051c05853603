package dev.segstore.client;

import dev.segstore.adapter.ErrorCode;
import dev.segstore.adapter.NewRecord;
import dev.segstore.adapter.StorageException;
import dev.segstore.protocol.NodeMethods;
import dev.segstore.protocol.meta.Segment;
import dev.segstore.protocol.meta.SegmentStatus;
import dev.segstore.protocol.meta.ShardRoute;
import dev.segstore.protocol.node.ProduceRequest;
import dev.segstore.protocol.node.ProduceResponse;
import dev.segstore.protocol.rpc.RpcException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.BooleanSupplier;
import java.util.function.Function;

import static dev.segstore.client.RouteCache.openSegment;
import static dev.segstore.client.RouteCache.ref;
import static dev.segstore.client.SegmentStorageAdapter.notApplied;
import static dev.segstore.client.ShardRetries.closedBefore;

/**
 * The segment engine's writes (docs/architecture.md, "The segment engine"): a batch, encoded once in the log's
 * format, goes to the leader of the shard's open segment with a producer id and a sequence per shard
 * ({@link ProducerSequence}). Every retry ({@link ShardRetries}) of an attempt that may have been stored re-sends
 * the same id and sequence, so the leader answers it with the original offsets instead of appending again; when
 * that attempt went to a segment sealed since, the retry first asks that segment whether the batch is there. A call
 * to a leader that answers nothing is given up once the route says the leadership moved ({@link #untilLeaderMoves}).
 * Thread-safe.
 */
final class BatchWriter {
    private static final Logger LOG = LoggerFactory.getLogger(BatchWriter.class);
    private static final SecureRandom PRODUCER_IDS = new SecureRandom();

    private final MetaClient meta;
    private final RouteCache routes;
    private final ReplicaConnections replicaConnections;
    private final NodeCalls calls;
    private final ShardRetries retries;
    /** Runs the checks of {@link #untilLeaderMoves}: the adapter's retry scheduler. */
    private final RetryScheduler retryScheduler;
    /** Whether the adapter is closed: its closed flag. */
    private final BooleanSupplier closed;
    /** Per shard name, the producer id and next sequence of new batches. */
    private final Map<String, ProducerSequence> producers = new ConcurrentHashMap<>();
    private final int firstSequence;

    /** {@code firstSequence}: the sequence each shard's first producer id starts at (tests start near the wrap). */
    BatchWriter(MetaClient meta, RouteCache routes, ReplicaConnections replicaConnections, NodeCalls calls, ShardRetries retries,
                RetryScheduler retryScheduler, BooleanSupplier closed, int firstSequence) {
        this.meta = meta;
        this.routes = routes;
        this.replicaConnections = replicaConnections;
        this.calls = calls;
        this.retries = retries;
        this.retryScheduler = retryScheduler;
        this.closed = closed;
        this.firstSequence = firstSequence;
    }

    /**
     * The adapter's batch write ({@code doBatchWrite}): {@code records}, from {@code batchWrite} (checked) or from the
     * shard's {@link WriteCoalescer} (each record checked by {@code write}), as one batch to the open segment of
     * {@code shard}. Completes with their offsets, in order.
     */
    CompletableFuture<List<Long>> write(String shard, List<NewRecord> records) {
        replicaConnections.maybeCheck(routes.all());
        // The batch is encoded here, once, in the log's format: the leader checks it, stamps offsets and the
        // producer fields into it and stores these bytes (node.proto, ProduceRequest.batch).
        java.nio.ByteBuffer encoded;
        try {
            encoded = dev.segstore.log.format.RecordBatch.encode(0, 0, -1, -1, records.stream().map(BatchWriter::toLog).toList());
        } catch (IllegalArgumentException e) {
            return CompletableFuture.failedFuture(new StorageException(ErrorCode.RECORD_TOO_LARGE, e.getMessage()));
        }
        // Producer id and base sequence are stamped when the batch first goes out (base sequence -1: not yet).
        ProduceRequest.Builder b = ProduceRequest.newBuilder().setBaseSequence(-1)
                .setBatch(com.google.protobuf.UnsafeByteOperations.unsafeWrap(encoded));
        boolean[] mayBeApplied = {false};
        boolean[] onTheWire = {false}; // an attempt was sent and is not answered yet
        long[] mayBeIn = {-1}; // the segment an attempt that may have been applied went to
        long[] mayBeShard = {0}; // and the id of its shard
        Function<StorageException, StorageException> closing = last -> {
            synchronized (b) {
                if (!mayBeApplied[0] && !onTheWire[0]) {
                    return closedBefore("batchWrite on shard '" + shard + "'", last); // no attempt may have been stored
                }
                return new StorageException(ErrorCode.OUTCOME_UNKNOWN, "shard '" + shard + "': the segment engine was closed"
                        + " before a write (producer " + b.getProducerId() + ", sequence " + b.getBaseSequence() + ") was answered:"
                        + " it may or may not have been stored" + (last == null ? "" : " (last error: " + last.getMessage() + ")"), last);
            }
        };
        return retries.withRoute(shard, route -> {
            Segment open = openSegment(route);
            synchronized (b) {
                if (mayBeApplied[0] && mayBeShard[0] != open.getShardId()) {
                    // The shard an earlier attempt may have reached was deleted since (the name is another shard
                    // now): whatever that attempt stored went with it, so the batch is new to this shard.
                    mayBeApplied[0] = false;
                    mayBeIn[0] = -1;
                    b.setBaseSequence(-1).setMayBeDuplicate(false);
                }
            }
            Segment earlier = earlierSegment(shard, route, open, b, mayBeIn);
            if (earlier != null) {
                // That segment was sealed since: ask its leader whether the batch is there before writing it anew.
                // A "not found" is final (a sealed segment takes no writes); the retry loop then sends the batch
                // to the open segment under a new sequence.
                ProduceRequest probe;
                synchronized (b) {
                    probe = b.setSegment(ref(earlier)).setOnlyIfDuplicate(true).build();
                    b.setOnlyIfDuplicate(false);
                }
                return calls.callNode(earlier.getLeader(), NodeMethods.PRODUCE, probe, ProduceResponse.parser()).thenCompose(r -> {
                    LOG.info("Shard {}: a retried batch (producer {}, sequence {}) {} sealed segment {}", shard, probe.getProducerId(),
                            probe.getBaseSequence(), r.getNotFound() ? "is not in" : "was found in", earlier.getSequence());
                    if (!r.getNotFound()) {
                        return CompletableFuture.completedFuture(r);
                    }
                    synchronized (b) {
                        // Not there, and the segment takes no writes: the batch was never applied anywhere.
                        mayBeApplied[0] = false;
                        mayBeIn[0] = -1;
                        b.setBaseSequence(-1).setMayBeDuplicate(false);
                    }
                    return CompletableFuture.failedFuture(new StorageException(ErrorCode.NOT_LEADER,
                            "the batch is not in sealed segment " + earlier.getSequence() + ": writing it to the open segment"));
                });
            }
            ProducerSequence producer = producers.computeIfAbsent(shard, k -> new ProducerSequence(
                    () -> PRODUCER_IDS.nextLong() & Long.MAX_VALUE, firstSequence));
            CompletableFuture<ProduceResponse> sent;
            synchronized (producer) {
                // The id and sequence are taken as the batch goes out, under the shard's lock, so new batches reach
                // the leader in sequence order; retries keep theirs, the id included when the shard has rolled to
                // a new id since (the leader accepts some disorder among recent batches: ProducerStateTable).
                ProduceRequest request;
                synchronized (b) {
                    if (b.getBaseSequence() < 0) {
                        ProducerSequence.Stamp stamp = producer.take(records.size());
                        b.setProducerId(stamp.producerId()).setBaseSequence(stamp.baseSequence());
                    }
                    request = b.setSegment(ref(open)).build();
                    onTheWire[0] = true;
                }
                sent = untilLeaderMoves(shard, open, calls.callNode(open.getLeader(), NodeMethods.PRODUCE, request, ProduceResponse.parser()));
            }
            return sent.whenComplete((r, e) -> {
                        synchronized (b) {
                            onTheWire[0] = false;
                            if (e != null && !mayBeApplied[0] && notApplied(e)) {
                                // Every attempt so far was refused before it was written: the retry goes out as a new
                                // batch with a new sequence, in order with the batches sent meanwhile.
                                b.setBaseSequence(-1);
                            } else if (e != null) {
                                mayBeApplied[0] = true; // from now on only the same sequence is safe
                                mayBeIn[0] = open.getSequence();
                                mayBeShard[0] = open.getShardId();
                                // The leader then looks for it in all its log, not only in the producer state it
                                // read back from the log's tail after a restart (node.proto).
                                b.setMayBeDuplicate(true);
                            }
                        }
                    });
        }, closing).thenApply(r -> {
            List<Long> offsets = new ArrayList<>(records.size());
            for (long o = r.getBaseOffset(); o <= r.getLastOffset(); o++) {
                offsets.add(o);
            }
            return offsets;
        });
    }

    /** The shard was deleted: its producer id and sequence go with it (a new shard of the name gets a new id). */
    void forget(String shard) {
        producers.remove(shard);
    }

    /** How long a write waits at a leader before the client checks whether the leadership moved meanwhile. */
    static final long LEADER_CHECK_MS = 500;

    /**
     * {@code call} to segment {@code seg}'s leader, given up (failed TIMEOUT, an unknown outcome, retried as one) once
     * the meta-service's route says the segment has another leader epoch or is no longer open: a leader that is
     * paused or cut off answers nothing until the call's timeout ({@code callTimeoutMs}, seconds), while the
     * controller may have moved its leadership within about two seconds (followers report a silent leader). Checked
     * every {@link #LEADER_CHECK_MS} while the call waits, so a call answered in time costs no meta read. Giving up
     * early is as safe as a timeout: the retry carries the same producer id and sequence, and the deposed leader can
     * acknowledge nothing (its followers fetch from the new one).
     */
    private <R> CompletableFuture<R> untilLeaderMoves(String shard, Segment seg, CompletableFuture<R> call) {
        CompletableFuture<R> out = new CompletableFuture<>();
        call.whenComplete((r, e) -> {
            if (e != null) {
                out.completeExceptionally(e);
            } else {
                out.complete(r);
            }
        });
        checkLeaderLater(shard, seg, out);
        return out;
    }

    private void checkLeaderLater(String shard, Segment seg, CompletableFuture<?> waiting) {
        retryScheduler.schedule(() -> {
            if (waiting.isDone() || isClosed()) {
                return; // answered; or closing, which fails the call itself
            }
            meta.route(shard).whenComplete((route, e) -> {
                if (waiting.isDone()) {
                    return;
                }
                Segment now = e != null ? null : route.getSegmentsList().stream().filter(x -> x.getSequence() == seg.getSequence()).findFirst().orElse(null);
                boolean moved = e == null && (now == null || now.getStatus() != SegmentStatus.OPEN || now.getLeaderEpoch() != seg.getLeaderEpoch());
                if (moved) {
                    waiting.completeExceptionally(new RpcException(ErrorCode.TIMEOUT.code(), "shard '" + shard + "': segment " + seg.getSequence()
                            + " is no longer led by node " + seg.getLeader() + " in epoch " + seg.getLeaderEpoch() + " (now: "
                            + (now == null ? "gone" : now.getStatus() + ", node " + now.getLeader() + " in epoch " + now.getLeaderEpoch())
                            + "); the write sent there is given up, its outcome unknown, and retried"));
                } else {
                    checkLeaderLater(shard, seg, waiting);
                }
            });
        }, LEADER_CHECK_MS);
    }

    /**
     * The sealed segment an earlier attempt of this batch may have been appended to, when that is no longer the
     * open one (a retry to the open segment would append it a second time: producer state is per segment), or
     * null. Fails OUTCOME_UNKNOWN (not retriable) when retention has dropped that segment: whether the batch was
     * stored can no longer be told, and writing it again could store it twice. Fails UNAVAILABLE (retried with
     * a fresh route) when the route is older than that segment.
     */
    private Segment earlierSegment(String shard, ShardRoute route, Segment open, ProduceRequest.Builder b, long[] mayBeIn) {
        long sequence;
        long producerId;
        int baseSequence;
        synchronized (b) {
            sequence = mayBeIn[0];
            producerId = b.getProducerId();
            baseSequence = b.getBaseSequence();
        }
        if (sequence < 0 || sequence == open.getSequence()) {
            return null;
        }
        if (sequence > open.getSequence()) {
            throw new StorageException(ErrorCode.UNAVAILABLE, "shard '" + shard + "': the route ends at segment " + open.getSequence()
                    + ", older than segment " + sequence + " which an earlier attempt of the write went to");
        }
        return route.getSegmentsList().stream().filter(s -> s.getSequence() == sequence).findFirst().orElseThrow(() ->
                new StorageException(ErrorCode.OUTCOME_UNKNOWN, "shard '" + shard + "': the outcome of the write is unknown: an earlier"
                        + " attempt (producer " + producerId + ", sequence " + baseSequence + ") may have been stored in segment "
                        + sequence + ", which retention has dropped since; it is not written again, as it could be stored twice"));
    }

    private static dev.segstore.log.AppendRecord toLog(NewRecord r) {
        return new dev.segstore.log.AppendRecord(r.key(), List.copyOf(r.tags()), r.timestamp(),
                r.headers().stream().map(h -> new dev.segstore.log.LogHeader(h.name(), h.value())).toList(), r.payload());
    }

    private boolean isClosed() {
        return closed.getAsBoolean();
    }
}
