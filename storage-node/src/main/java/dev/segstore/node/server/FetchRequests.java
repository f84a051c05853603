package dev.segstore.node.server;

import dev.segstore.node.replica.Partition;
import dev.segstore.node.replica.Tombstones;
import dev.segstore.protocol.node.FetchManyRequest;
import dev.segstore.protocol.node.FetchRequest;
import dev.segstore.protocol.node.FetchResponse;
import dev.segstore.protocol.node.SegmentRef;
import dev.segstore.protocol.rpc.Attachment;
import dev.segstore.protocol.rpc.Reply;
import dev.segstore.protocol.rpc.RpcException;

import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

/**
 * The storage node's fetches: {@code node.Fetch}, a consumer's read or a follower's fetch (long polled when it is
 * caught up), on its shard's owner thread (StorageNode's {@code onOwner}); and {@code node.FetchMany}, many follower
 * fetches in one call ({@link FetchManyHandler}), which takes each entry on its shard's owner thread itself.
 */
final class FetchRequests {
    /** Longest a leader holds a caught-up fetch waiting for new data when the fetcher names no wait. */
    private static final long FETCH_WAIT_MS = 200;
    /** Longest a leader holds a caught-up follower fetch, whatever the fetcher asks. */
    private static final long MAX_FETCH_WAIT_MS = 4L * ReplicaFetchers.SEALED_FETCH_WAIT_MS;
    private final ShardOwners owners;
    private final NodeMetrics metrics;
    /** Writes and fetches for a roll's next segment that come just before this node hosts it wait for it. */
    private final ReplicaWaits replicaWaits;
    private final Map<Hosted.Key, Hosted> hosted;
    /** The replica a request names, or its failure (ReplicaRequests#hostedOrFail). */
    private final Function<SegmentRef, Hosted> hostedOrFail;
    /** Replica and log errors as wire errors (ReplicaRequests#wire). */
    private final Function<Throwable, RpcException> wire;
    private final FetchManyHandler fetchMany;

    /** {@code hosted}: the node's hosted-replica map itself (not a copy). */
    FetchRequests(ShardOwners owners, NodeMetrics metrics, ReplicaWaits replicaWaits, Map<Hosted.Key, Hosted> hosted,
                  Function<SegmentRef, Hosted> hostedOrFail, Function<Throwable, RpcException> wire) {
        this.owners = owners;
        this.metrics = metrics;
        this.replicaWaits = replicaWaits;
        this.hosted = hosted;
        this.hostedOrFail = hostedOrFail;
        this.wire = wire;
        this.fetchMany = fetchManyHandler();
    }

    /** node.FetchMany, on the event loop: the handler takes each entry on its shard's owner thread. */
    CompletableFuture<Reply> fetchMany(FetchManyRequest r) {
        return fetchMany.handle(r);
    }

    CompletableFuture<?> fetch(FetchRequest r) {
        CompletableFuture<?> waited = replicaWaits.waitFor(Hosted.Key.of(r.getSegment()), () -> fetch(r));
        if (waited != null) {
            return waited; // a roll's next segment, about to be hosted here
        }
        try {
            Hosted h = hostedOrFail.apply(r.getSegment());
            if (r.getReplicaId() >= 0) {
                Partition.FollowerFetch f = followerSlice(h, r, Math.max(1, r.getMaxBytes()), false);
                if (f.slice().isEmpty() && f.tombstones().offsets().isEmpty() && !nextSegmentDue(h, r)) {
                    f.slice().close();
                    // Long poll: a caught-up follower waits here for new data or deletes (or its wait) instead of asking again.
                    long wait = r.getMaxWaitMs() > 0 ? Math.min(r.getMaxWaitMs(), MAX_FETCH_WAIT_MS) : FETCH_WAIT_MS;
                    return followerNews(h, r)
                            .completeOnTimeout(null, wait, TimeUnit.MILLISECONDS)
                            .thenApplyAsync(v -> followerResponse(h, r, followerSlice(h, r, Math.max(1, r.getMaxBytes()), true)),
                                    owners.of(r.getSegment().getShardId()))
                            .exceptionally(e -> {
                                throw wire.apply(e);
                            });
                }
                return CompletableFuture.completedFuture(followerResponse(h, r, f));
            }
            int maxRecords = r.getMaxRecords() <= 0 ? 500 : r.getMaxRecords();
            Partition.ConsumerSlice c = h.partition.readForConsumer(r.getOffset(), maxRecords,
                    Math.max(1, r.getMaxBytes() <= 0 ? ReplicaFetchers.FETCH_MAX_BYTES : r.getMaxBytes()), Hosted.Key.routeEpoch(r.getSegment()));
            FetchResponse response = FetchResponse.newBuilder().setHighWatermark(c.highWatermark())
                    .setLogEndOffset(h.partition.log().logEndOffset()).setNextOffset(c.nextOffset()).addAllDeleted(c.deleted())
                    .setSealed(c.sealedEnd() >= 0).setSealedEnd(Math.max(0, c.sealedEnd())).build();
            metrics.fetched(ReplicaRequests.shardName(h), false, c.slice().length());
            return CompletableFuture.completedFuture(new Reply(response, attachment(c.slice())));
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(wire.apply(e));
        }
    }

    /**
     * A follower's fetch as the leader takes it: its epoch checked, its offset counted as its progress if it holds;
     * {@code heldAgain}: taken again after a long poll (not a request that arrived now).
     */
    private static Partition.FollowerFetch followerSlice(Hosted h, FetchRequest r, int maxBytes, boolean heldAgain) {
        return h.partition.fetchSliceForFollower(r.getReplicaId(), r.getLeaderEpoch(), r.getOffset(), r.getTombstoneFrom(), maxBytes,
                heldAgain);
    }

    /** node.FetchMany (node.proto): many follower fetches in one call, each entry taken as node.Fetch takes it. */
    private FetchManyHandler fetchManyHandler() {
        return new FetchManyHandler(new FetchManyHandler.Leader() {
            @Override
            public Partition.FollowerFetch slice(FetchRequest r, int maxBytes, boolean heldAgain) {
                return followerSlice(hostedOrFail.apply(r.getSegment()), r, maxBytes, heldAgain);
            }

            @Override
            public CompletableFuture<Void> news(FetchRequest r) {
                return followerNews(hostedOrFail.apply(r.getSegment()), r);
            }

            @Override
            public Reply reply(FetchRequest r, Partition.FollowerFetch f) {
                return followerResponse(hosted.get(Hosted.Key.of(r.getSegment())), r, f);
            }
        }, owners, wire, FETCH_WAIT_MS, MAX_FETCH_WAIT_MS);
    }

    /**
     * A follower's answer: the watermarks and tombstones in the message, the batches as its attachment, sent
     * from the log file without copying (rpc.proto); the slice is released once sent.
     */
    private Reply followerResponse(Hosted h, FetchRequest r, Partition.FollowerFetch f) {
        metrics.fetched("", true, f.slice().length());
        Tombstones.Slice t = f.tombstones();
        FetchResponse.Builder response = FetchResponse.newBuilder()
                .setHighWatermark(f.highWatermark()).setLogEndOffset(f.leaderLogEnd())
                .setTombstoneBase(t.base()).addAllTombstones(t.offsets()).setTombstoneEnd(t.end()).setTombstoneWatermark(t.watermark());
        Hosted.NextSegment next = h == null ? null : h.next;
        if (next != null && next.isFor(r.getReplicaId())) {
            // In every answer, not only the first: an answer can be lost (the follower ignores what it holds already).
            next.markSent(r.getReplicaId());
            response.setNextSegment(next.segment()).setNextShard(next.shard());
        }
        return new Reply(response.build(), attachment(f.slice()));
    }

    /**
     * Completes when there is something new for follower fetch {@code r} (a long poll waits on it): data or deletes
     * beyond it, a role change, or the next segment of a roll that this follower holds a replica of and was not sent
     * yet (it has nothing else to wait for: the segment is sealed, or about to be). That last is checked once the wait
     * is registered, so a seal (which wakes the waits) between the check and the wait cannot leave the fetch held.
     */
    private static CompletableFuture<Void> followerNews(Hosted h, FetchRequest r) {
        CompletableFuture<Void> news = h.partition.awaitDataAfter(r.getOffset(), r.getTombstoneFrom());
        if (nextSegmentDue(h, r)) {
            news.complete(null);
        }
        return news;
    }

    /** Whether follower {@code r} holds a replica of the segment after this rolled one and was not sent it yet. */
    private static boolean nextSegmentDue(Hosted h, FetchRequest r) {
        Hosted.NextSegment next = h.next;
        return next != null && next.dueTo(r.getReplicaId());
    }

    /** Batches to send from the log file without copying; the slice is released once sent. */
    private static Attachment attachment(dev.segstore.log.FileSlice slice) {
        return new Attachment() {
            @Override
            public int length() {
                return slice.length();
            }

            @Override
            public long transferTo(long from, long count, java.nio.channels.WritableByteChannel target) throws java.io.IOException {
                return slice.transferTo(from, count, target);
            }

            @Override
            public void release() {
                slice.close();
            }
        };
    }
}
