package dev.segstore.node.server;

import com.google.protobuf.Message;
import dev.segstore.adapter.ErrorCode;
import dev.segstore.log.AppendResult;
import dev.segstore.log.LogException;
import dev.segstore.log.epoch.EpochEndOffset;
import dev.segstore.node.replica.PartitionStatus;
import dev.segstore.node.replica.ReplicaException;
import dev.segstore.protocol.node.DeleteRequest;
import dev.segstore.protocol.node.DeleteResponse;
import dev.segstore.protocol.node.EpochEndOffsetRequest;
import dev.segstore.protocol.node.EpochEndOffsetResponse;
import dev.segstore.protocol.node.FetchResponse;
import dev.segstore.protocol.node.ProduceRequest;
import dev.segstore.protocol.node.ProduceResponse;
import dev.segstore.protocol.node.SegmentRef;
import dev.segstore.protocol.rpc.RpcException;

import java.nio.ByteBuffer;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.function.BooleanSupplier;
import java.util.function.LongPredicate;

/**
 * The storage node's requests to one hosted replica, but fetches ({@link FetchRequests}): writes ({@code node.Produce}),
 * deletes, key and tag index reads, offsets by timestamp, replica status and epoch end offsets. Each runs on its
 * shard's owner thread (StorageNode's {@code onOwner}) against the replica the hosted-replica map holds, which it only
 * reads (the {@link AssignmentReconciler} owns it). Replica and log errors are answered as wire errors ({@link #wire}).
 */
final class ReplicaRequests {
    private final int nodeId;
    private final Map<Hosted.Key, Hosted> hosted;
    private final Map<Integer, String> nodeAddresses;
    private final ReplicaWaits replicaWaits;
    private final NodeMetrics metrics;
    /** Whether every data directory is online (DataDirectories#allOnline). */
    private final BooleanSupplier allOnline;
    /** Whether the meta-service said a shard id is deleted (AssignmentReconciler#isDeleted). */
    private final LongPredicate isDeleted;

    /**
     * @param hosted        the node's hosted-replica map itself (not a copy): requests see the replicas as they come and go
     * @param nodeAddresses the node's map of node ids to addresses, for the leader hint of an error
     */
    ReplicaRequests(int nodeId, Map<Hosted.Key, Hosted> hosted, Map<Integer, String> nodeAddresses, ReplicaWaits replicaWaits,
                    NodeMetrics metrics, BooleanSupplier allOnline, LongPredicate isDeleted) {
        this.nodeId = nodeId;
        this.hosted = hosted;
        this.nodeAddresses = nodeAddresses;
        this.replicaWaits = replicaWaits;
        this.metrics = metrics;
        this.allOnline = allOnline;
        this.isDeleted = isDeleted;
    }

    /** The replica of {@code ref} hosted here: fails SHARD_NOT_FOUND when its shard id is deleted, NOT_LEADER when none is. */
    Hosted hostedOrFail(SegmentRef ref) {
        if (isDeleted.test(ref.getShardId())) {
            // Told by the meta-service that this shard id is deleted (ids are never reused): final for this id; the
            // client reads the shard's route again, which names the new shard if the name was created again.
            throw new RpcException(ErrorCode.SHARD_NOT_FOUND.code(), "node " + nodeId + ": shard id " + ref.getShardId()
                    + " is deleted", "", true);
        }
        Hosted h = hosted.get(Hosted.Key.of(ref));
        if (h == null) {
            throw new RpcException(ErrorCode.NOT_LEADER.code(), "node " + nodeId + " hosts no replica of segment "
                    + ref.getShardId() + "/" + ref.getSequence(), "", -1, true, true); // rolling: may be a segment not learnt yet
        }
        return h;
    }

    CompletableFuture<Message> readIndexed(dev.segstore.protocol.node.IndexReadRequest r, boolean byKey) {
        try {
            Hosted h = hostedOrFail(r.getSegment());
            long sealedEnd = h.partition.mayBeSealedAt();
            FetchResponse answer = h.index.read(r, byKey);
            return CompletableFuture.completedFuture(sealedEnd < 0 ? answer
                    : answer.toBuilder().setSealed(true).setSealedEnd(sealedEnd).build());
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(wire(e));
        }
    }

    CompletableFuture<Message> offsetForTimestamp(dev.segstore.protocol.node.TimestampRequest r) {
        try {
            Hosted h = hostedOrFail(r.getSegment());
            long sealedEnd = h.partition.mayBeSealedAt(); // before the high watermark: a seal known then is still known
            long hw = h.partition.readableHighWatermark(Hosted.Key.routeEpoch(r.getSegment()));
            java.util.OptionalLong o = h.partition.log().offsetForTimestamp(r.getTimestamp(), hw);
            return CompletableFuture.completedFuture(dev.segstore.protocol.node.TimestampResponse.newBuilder()
                    .setFound(o.isPresent()).setOffset(o.orElse(-1)).setHighWatermark(hw)
                    .setSealed(sealedEnd >= 0).setSealedEnd(Math.max(0, sealedEnd)).build());
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(wire(e));
        }
    }

    CompletableFuture<Message> produce(ProduceRequest r) {
        CompletableFuture<Message> waited = replicaWaits.waitFor(Hosted.Key.of(r.getSegment()), () -> produce(r));
        if (waited != null) {
            return waited; // a roll's next segment, about to be hosted here
        }
        try {
            Hosted h = hostedOrFail(r.getSegment());
            boolean encoded = !r.getBatch().isEmpty();
            if (encoded == (r.getRecordsCount() > 0)) {
                throw new RpcException(ErrorCode.INVALID_ARGUMENT.code(), encoded
                        ? "a produce request carries records or a batch, not both" : "a produce request needs at least one record");
            }
            if (r.getOnlyIfDuplicate()) {
                int count = encoded ? dev.segstore.log.format.BatchView.at(r.getBatch().asReadOnlyByteBuffer()).recordCount() : r.getRecordsCount();
                return h.partition.findRetried(r.getProducerId(), r.getBaseSequence(), count).<Message>thenApply(a -> a == null
                                ? ProduceResponse.newBuilder().setNotFound(true).build()
                                : ProduceResponse.newBuilder().setBaseOffset(a.baseOffset()).setLastOffset(a.lastOffset()).build())
                        .exceptionally(e -> {
                            throw wire(e);
                        });
            }
            CompletableFuture<AppendResult> appended = encoded
                    // The client's bytes, copied once: the log stamps offsets into this buffer and keeps it until written.
                    ? h.partition.appendEncoded(ByteBuffer.wrap(r.getBatch().toByteArray()), r.getProducerId(), r.getBaseSequence(),
                            r.getMayBeDuplicate())
                    : h.partition.append(r.getRecordsList().stream().map(Records::toAppend).toList(), r.getProducerId(), r.getBaseSequence(),
                            r.getMayBeDuplicate());
            return appended.<Message>thenApply(a -> {
                        metrics.produced(shardName(h), (int) (a.lastOffset() - a.baseOffset() + 1), r.getSerializedSize());
                        return ProduceResponse.newBuilder().setBaseOffset(a.baseOffset()).setLastOffset(a.lastOffset()).build();
                    })
                    .exceptionallyCompose(e -> refusedByRoll(h, e));
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(wire(e));
        }
    }

    /**
     * How long a write refused because its segment is full and being sealed is held for the controller's answer to
     * the roll, at most, before it is answered without the next segment (the writer then reads the route again).
     */
    static final long ROLL_HOLD_MS = 250;

    /**
     * A write's failure, as answered. One the partition refused because its segment is full and being sealed, or
     * sealed by this leader's roll (NOT_LEADER, rolling, not applied: nothing was written) is answered with the next
     * segment (rpc.proto, {@code Error.next_segment}) as the controller's committed answer to the roll gave it: at
     * once if that answer came, else when it comes (at most {@link #ROLL_HOLD_MS}; the roll commits in tens of
     * milliseconds). The writer then writes to the next segment at once, instead of retrying blind every few
     * milliseconds and reading the route from the meta-service each time until one shows the roll. Only the answer
     * waits: the refusal itself, and so what the partition stored, is as it was.
     */
    private CompletableFuture<Message> refusedByRoll(Hosted h, Throwable t) {
        Throwable e = unwrapped(t);
        if (!(e instanceof ReplicaException re && re.isRolling() && re.isNotApplied() && re.code() == ErrorCode.NOT_LEADER)) {
            return CompletableFuture.failedFuture(wire(t));
        }
        RpcException refusal = wire(e);
        if (h.next == null && h.partition.sealedEnd() >= 0) {
            return CompletableFuture.failedFuture(refusal); // sealed by an assignment (the roll's answer was lost): no hint
        }
        return h.awaitNext(ROLL_HOLD_MS) // at once when the answer came
                .thenCompose(n -> CompletableFuture.failedFuture(n == null ? refusal : refusal.withNextSegment(n.segment())));
    }

    /** The shard name of a hosted replica, for per-shard metrics. */
    static String shardName(Hosted h) {
        dev.segstore.protocol.meta.Segment assigned = h.assigned;
        return assigned == null ? "" : assigned.getShard();
    }

    CompletableFuture<Message> delete(DeleteRequest r) {
        try {
            Hosted h = hostedOrFail(r.getSegment());
            List<Long> offsets;
            if (r.getByKey()) {
                if (r.getKey().isEmpty()) {
                    throw new RpcException(ErrorCode.INVALID_ARGUMENT.code(), "a delete by key needs a key");
                }
                try {
                    offsets = h.index.liveOffsetsByKey(r.getKey());
                } catch (RuntimeException e) {
                    // Refused before anything was deleted (a leader whose watermark is not readable yet, say): the
                    // client may send it again without wondering whether this attempt deleted something.
                    RpcException w = wire(e);
                    throw new RpcException(w.code(), w.getMessage(), w.leaderHint(), w.leaderEpoch(), true);
                }
            } else {
                if (r.getOffsetsCount() == 0) {
                    throw new RpcException(ErrorCode.INVALID_ARGUMENT.code(), "a delete needs at least one offset, or a key");
                }
                offsets = r.getOffsetsList();
                long sealedEnd = h.partition.mayBeSealedAt();
                if (sealedEnd >= 0 && offsets.stream().anyMatch(o -> o >= sealedEnd)) {
                    // In a later segment: nothing deleted, and the answer says where this one ends (node.proto).
                    return CompletableFuture.completedFuture(DeleteResponse.newBuilder().setDeleted(0).setSealed(true)
                            .setSealedEnd(sealedEnd).build());
                }
            }
            return h.partition.delete(offsets)
                    .<Message>thenApply(n -> {
                        // Read after the delete: a by-key delete that ran while the segment was sealed tells the
                        // client to look in the later segments too.
                        long sealedEnd = h.partition.mayBeSealedAt();
                        return DeleteResponse.newBuilder().setDeleted(n).setSealed(sealedEnd >= 0).setSealedEnd(Math.max(0, sealedEnd)).build();
                    })
                    .exceptionally(e -> {
                        throw wire(e);
                    });
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(wire(e));
        }
    }

    CompletableFuture<Message> replicaStatus(dev.segstore.protocol.node.ReplicaStatusRequest r) {
        try {
            PartitionStatus st = hostedOrFail(r.getSegment()).partition.status();
            dev.segstore.protocol.node.ReplicaStatusResponse.Builder b = dev.segstore.protocol.node.ReplicaStatusResponse.newBuilder()
                    .setNodeId(nodeId).setRole(st.role().name()).setLeaderEpoch(st.leaderEpoch())
                    .setLogEndOffset(st.logEndOffset()).setHighWatermark(st.highWatermark()).addAllIsr(st.isr()).setSealed(st.sealed());
            for (dev.segstore.node.replica.FollowerProgress p : st.followers()) {
                b.addFollowers(dev.segstore.protocol.node.FollowerStatus.newBuilder().setNodeId(p.nodeId())
                        .setLogEndOffset(p.logEndOffset())
                        .setLagRecords(p.logEndOffset() < 0 ? -1 : st.logEndOffset() - p.logEndOffset())
                        .setCaughtUpMsAgo(st.nowMs() - p.lastCaughtUpMs())
                        .setFetchedMsAgo(p.lastFetchMs() < 0 ? -1 : st.nowMs() - p.lastFetchMs()));
            }
            return CompletableFuture.completedFuture(b.build());
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(wire(e));
        }
    }

    CompletableFuture<Message> epochEndOffset(EpochEndOffsetRequest r) {
        try {
            EpochEndOffset e = hostedOrFail(r.getSegment()).partition.endOffsetForEpoch(r.getLeaderEpoch(), r.getEpoch());
            return CompletableFuture.completedFuture(EpochEndOffsetResponse.newBuilder().setEpoch(e.epoch()).setEndOffset(e.endOffset()).build());
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(wire(e));
        }
    }

    /** The failure a CompletionException wraps, or {@code t}. */
    static Throwable unwrapped(Throwable t) {
        return t instanceof CompletionException && t.getCause() != null ? t.getCause() : t;
    }

    /** Maps replica and log errors to wire errors, with the leader's address as the hint. */
    RpcException wire(Throwable t) {
        Throwable e = unwrapped(t);
        if (e instanceof RpcException re) {
            return re;
        }
        if (e instanceof ReplicaException re) {
            String hint = re.leaderHint() >= 0 ? nodeAddresses.getOrDefault(re.leaderHint(), "") : "";
            return new RpcException(re.code().code(), re.getMessage(), hint, re.leaderEpoch(), re.isNotApplied(), re.isRolling());
        }
        if (e instanceof LogException le && le.kind() == LogException.Kind.STORAGE_ERROR && !allOnline.getAsBoolean()) {
            // A data directory failed: the controller moves the leaderships of its replicas (the heartbeat says so),
            // and the write may be retried with the same producer id and sequence at the new leader.
            return new RpcException(ErrorCode.NOT_LEADER.code(), "node " + nodeId + ": " + le.getMessage()
                    + "; its leaderships move to other replicas", "", false); // it may have been written: retried as it was
        }
        if (e instanceof LogException le) {
            ErrorCode code = switch (le.kind()) {
                case INVALID_ARGUMENT -> ErrorCode.INVALID_ARGUMENT;
                case RECORD_TOO_LARGE -> ErrorCode.RECORD_TOO_LARGE;
                case OFFSET_OUT_OF_RANGE -> ErrorCode.OFFSET_OUT_OF_RANGE;
                case CORRUPT_DATA -> ErrorCode.CORRUPT_DATA;
                case STORAGE_ERROR -> ErrorCode.STORAGE_ERROR;
                case CLOSED -> ErrorCode.UNAVAILABLE;
                default -> ErrorCode.INTERNAL;
            };
            return new RpcException(code.code(), le.getMessage());
        }
        return new RpcException(ErrorCode.INTERNAL.code(), e.toString());
    }
}
