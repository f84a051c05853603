package dev.segstore.client;

import dev.segstore.protocol.meta.Segment;
import dev.segstore.protocol.meta.SegmentStatus;
import dev.segstore.protocol.meta.ShardRoute;
import dev.segstore.protocol.node.SegmentRef;
import dev.segstore.adapter.ErrorCode;
import dev.segstore.adapter.StorageException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.Collection;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The segment engine's cached shard routes (docs/architecture.md, "The segment engine"): each read once from the
 * meta-service and kept until an answer shows it may be stale ({@link #drop}); refreshed past a roll a node reports
 * ({@link #past}); moved forward, without the meta-service, by the next segment a refused write was told of
 * ({@link #adoptNext}). Each route read tells {@link ReplicaConnections} of its open segment's replicas. Thread-safe.
 * Its static helpers ({@link #openSegment}, {@link #segmentFor}, {@link #ref}) read a route for the adapter's parts.
 */
final class RouteCache {
    private static final Logger LOG = LoggerFactory.getLogger(RouteCache.class);

    private final MetaClient meta;
    private final ReplicaConnections replicaConnections;
    private final Map<String, CompletableFuture<ShardRoute>> routes = new ConcurrentHashMap<>();
    /** Per shard name, the id of the shard the last route read named (group-offset commits carry it). */
    private final Map<String, Long> knownShardIds = new ConcurrentHashMap<>();

    RouteCache(MetaClient meta, ReplicaConnections replicaConnections) {
        this.meta = meta;
        this.replicaConnections = replicaConnections;
    }

    /** The shard's route: the cached one, else one read from the meta-service (a failed read is not cached). */
    CompletableFuture<ShardRoute> getOrRead(String shard) {
        CompletableFuture<ShardRoute> cached = routes.computeIfAbsent(shard, s -> meta.route(s).handle((r, e) -> {
            if (e != null) {
                throw SegmentStorageAdapter.storageError(e);
            }
            replicaConnections.routeRead(r); // once per read, not per use of the cached route
            return r;
        }));
        cached.whenComplete((r, e) -> {
            if (e != null) {
                routes.remove(shard, cached); // a failed look-up is not cached
            } else {
                knownShardIds.put(shard, r.getShard().getShardId());
            }
        });
        return cached;
    }

    /** The route the meta-service answered a shard's creation with. */
    void created(String shard, ShardRoute route) {
        routes.put(shard, CompletableFuture.completedFuture(route));
        knownShardIds.put(shard, route.getShard().getShardId());
    }

    /** The cached route of {@code shard} (done or being read), or null: reads nothing ({@link #getOrRead} does). */
    CompletableFuture<ShardRoute> cached(String shard) {
        return routes.get(shard);
    }

    /** Every cached route (done or being read). */
    Collection<CompletableFuture<ShardRoute>> all() {
        return routes.values();
    }

    /** Drops the shard's route: it may be stale, the next use reads it again. */
    void drop(String shard) {
        routes.remove(shard);
    }

    /** Drops the shard's route if it is still {@code cached} (another call may have read a newer one meanwhile). */
    void drop(String shard, CompletableFuture<ShardRoute> cached) {
        routes.remove(shard, cached);
    }

    /** The id of the shard the last route read for {@code shard} named, kept after the route is dropped; 0 if none. */
    long knownShardId(String shard) {
        return knownShardIds.getOrDefault(shard, 0L);
    }

    /**
     * A route newer than the roll that sealed segment {@code sequence}, after a node said that segment is sealed
     * while the cached route still calls it open: the cached route if another call refreshed it meanwhile, else
     * one read from the meta-service (after a ReadIndex barrier, so it holds every roll committed before the node
     * answered: a node learns a seal only from a committed roll). Fails UNAVAILABLE, which the retry loop retries
     * with a fresh route, if the answer is still older (it should not be).
     */
    CompletableFuture<ShardRoute> past(String shard, long sequence) {
        CompletableFuture<ShardRoute> cached = routes.get(shard);
        if (cached != null && cached.isDone() && !cached.isCompletedExceptionally() && opensAfter(cached.join(), sequence)) {
            return cached;
        }
        if (cached != null) {
            routes.remove(shard, cached);
        }
        LOG.debug("Shard {}: segment {} is sealed, the cached route calls it open: refreshing the route", shard, sequence);
        return getOrRead(shard).thenApply(fresh -> {
            if (!opensAfter(fresh, sequence)) {
                throw new StorageException(ErrorCode.UNAVAILABLE, "shard '" + shard + "': segment " + sequence
                        + " is sealed, but the meta-service's route still calls it open");
            }
            return fresh;
        });
    }

    /** Whether the route's open segment comes after segment {@code sequence} (so that one is sealed, or dropped). */
    private static boolean opensAfter(ShardRoute route, long sequence) {
        return route.getSegmentsCount() > 0 && route.getSegments(route.getSegmentsCount() - 1).getSequence() > sequence;
    }

    /**
     * Takes the next segment a refused write was told of (rpc.proto, {@code Error.next_segment}: the leader that
     * rolled had it from the controller's committed answer) into the cached route of {@code shard}: the cached
     * route's open segment, the one before it, becomes sealed where the next one starts, and the next one is the
     * open segment, as the meta-service's route would now say. Returns false, changing nothing, when there is no
     * cached route to build on (none, or one being read) or it does not end with the segment before it (another
     * shard of the name, another roll): the caller then reads the route again. True also when the cached route
     * already goes past it (another write took it first).
     */
    boolean adoptNext(String shard, Segment next) {
        boolean[] adopted = {false};
        routes.computeIfPresent(shard, (name, cached) -> {
            if (!cached.isDone() || cached.isCompletedExceptionally()) {
                return cached;
            }
            ShardRoute r = cached.join();
            int n = r.getSegmentsCount();
            if (n == 0 || r.getShard().getShardId() != next.getShardId()) {
                return cached;
            }
            Segment last = r.getSegments(n - 1);
            if (last.getSequence() >= next.getSequence()) {
                adopted[0] = true;
                return cached;
            }
            if (last.getSequence() != next.getSequence() - 1 || last.getStatus() != SegmentStatus.OPEN
                    || next.getStatus() != SegmentStatus.OPEN || next.getStartOffset() < last.getStartOffset()) {
                return cached;
            }
            ShardRoute patched = r.toBuilder()
                    .setSegments(n - 1, last.toBuilder().setStatus(SegmentStatus.SEALED).setEndOffset(next.getStartOffset()))
                    .addSegments(next).build();
            replicaConnections.routeRead(patched);
            adopted[0] = true;
            return CompletableFuture.completedFuture(patched);
        });
        return adopted[0];
    }

    // ---- a route's segments --------------------------------------------------------------------------------

    /** The route's open segment, its last; fails UNAVAILABLE when the route has no segment yet. */
    static Segment openSegment(ShardRoute route) {
        if (route.getSegmentsCount() == 0) {
            throw new StorageException(ErrorCode.UNAVAILABLE, "shard '" + route.getShard().getName() + "' has no segment yet");
        }
        return route.getSegments(route.getSegmentsCount() - 1);
    }

    /**
     * The segment holding {@code offset}: a sealed one whose range holds it, or the open one (any not sealed) when
     * the offset is at or past its start, its end not being known yet. Null when none does: the offset is below the
     * oldest segment's start, or at or past the end of a route whose last segment is sealed.
     */
    static Segment segmentFor(ShardRoute route, long offset) {
        for (Segment s : route.getSegmentsList()) {
            boolean sealed = s.getStatus() == SegmentStatus.SEALED;
            if (offset >= s.getStartOffset() && (!sealed || offset < s.getEndOffset())) {
                return s;
            }
        }
        return null;
    }

    /**
     * The segment as requests name it. Requests about a segment the route calls open go to its leader, and name the
     * route's leader epoch: a replica that is not that leader refuses to answer reads from its own, lagging, high
     * watermark (node.proto, {@code route_epoch}). Reads of a sealed segment go to any ISR member and name none.
     */
    static SegmentRef ref(Segment s) {
        SegmentRef.Builder b = SegmentRef.newBuilder().setShardId(s.getShardId()).setSequence(s.getSequence());
        return s.getStatus() == SegmentStatus.SEALED ? b.build() : b.setRouteEpoch(s.getLeaderEpoch()).build();
    }
}
