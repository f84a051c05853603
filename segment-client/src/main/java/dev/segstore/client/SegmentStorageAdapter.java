package dev.segstore.client;

import dev.segstore.adapter.AbstractStorageAdapter;
import dev.segstore.adapter.ErrorCode;
import dev.segstore.adapter.NewRecord;
import dev.segstore.adapter.StoredRecord;
import dev.segstore.adapter.ShardConfig;
import dev.segstore.adapter.ShardFilter;
import dev.segstore.adapter.ShardInfo;
import dev.segstore.adapter.StorageException;
import dev.segstore.protocol.NodeMethods;
import dev.segstore.protocol.meta.DurabilityMode;
import dev.segstore.protocol.meta.GroupOffset;
import dev.segstore.protocol.meta.Segment;
import dev.segstore.protocol.meta.SegmentStatus;
import dev.segstore.protocol.meta.Shard;
import dev.segstore.protocol.meta.ShardRoute;
import dev.segstore.protocol.meta.ShardSettings;
import dev.segstore.protocol.node.DeleteRequest;
import dev.segstore.protocol.node.DeleteResponse;
import dev.segstore.protocol.rpc.Frames;
import dev.segstore.protocol.rpc.TlsConfig;
import dev.segstore.protocol.rpc.RpcClient;
import dev.segstore.protocol.rpc.RpcException;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;

import static dev.segstore.client.RouteCache.openSegment;
import static dev.segstore.client.RouteCache.ref;
import static dev.segstore.client.RouteCache.segmentFor;
import static dev.segstore.client.ShardRetries.closedBefore;

/**
 * The {@code segment} engine: the replicated cluster behind {@link dev.segstore.adapter.StorageAdapter}.
 *
 * <ul>
 *   <li><b>Routes.</b> A shard's route (its segments, their offset ranges, leaders and epochs) comes from the
 *       meta-service and is cached here; it is dropped and fetched again when a node answers NOT_LEADER,
 *       FENCED_EPOCH or "no replica here", and storage-node addresses are learnt from the meta-service too; a
 *       write refused by a roll whose answer names the next segment (rpc.proto, {@code Error.next_segment}) keeps
 *       it and takes that segment into it instead ({@link RouteCache#adoptNext}). A route
 *       is also known old when a node says that the segment the route calls open is sealed (node.proto,
 *       {@code sealed}): then no read, look-up or delete answers from it; a fresh route is read and the operation
 *       goes on in the later segments ({@link RouteCache#past}).</li>
 *   <li><b>Writes</b> go to the leader of the open segment with a producer id and a sequence per shard
 *       ({@link ProducerSequence}: a fresh id before the int32 sequences would wrap); a retry re-sends the same
 *       id and sequence, so the leader (or a new leader, which learnt the producer state by replication) answers
 *       it with the original offsets instead of appending again.</li>
 *   <li><b>Retries.</b> Retriable errors (not leader, stale epoch, not enough replicas, unavailable, timeout,
 *       overloaded) are retried with a growing pause until {@code request.timeout.ms}; then the last error is
 *       returned.</li>
 *   <li><b>Close</b> waits for operations in flight up to one call timeout ({@code call.timeout.ms}); retries
 *       waiting for their pause are not sent. Every operation's future completes: with its outcome if it came
 *       within that grace, else with CLOSED, or OUTCOME_UNKNOWN for a write an attempt of which went out.</li>
 *   <li><b>Reads</b> walk the segments in offset order; a sealed segment is read from a random member of its
 *       ISR (spreading reads), the open one from its leader; a member behind the seal (high watermark below the
 *       sealed end) that cannot answer in full is followed by a read from the route's leader, then from the other
 *       ISR members; if none can, the read is retried with a fresh route. Nodes skip deleted records and say
 *       where to go on.</li>
 * </ul>
 * The parts are classes of this package: {@link RouteCache} (routes), {@link ShardRetries} (retries),
 * {@link BatchWriter} (writes), {@link SegmentReads} (reads) and {@link NodeCalls} (calls to storage nodes); the
 * deletes, the shard and group calls and the close are here. docs/architecture.md ("The segment engine") has the
 * whole picture.
 */
public final class SegmentStorageAdapter extends AbstractStorageAdapter {
    public static final String STORAGE_TYPE = "segment";

    /** The engine's settings (from the broker's configuration, see docs/configuration.md). */
    public record Settings(List<String> metaAddresses, long requestTimeoutMs, long callTimeoutMs, DurabilityMode durability,
                           TlsConfig tls, WriteCoalescing coalescing) {
        public Settings {
            metaAddresses = List.copyOf(metaAddresses);
            if (metaAddresses.isEmpty()) {
                throw StorageException.invalidArgument("setting segment.meta.addresses", "needs at least one host:port", "");
            }
            if (coalescing == null) {
                coalescing = WriteCoalescing.DEFAULT;
            }
        }

        /** With the default write coalescing. */
        public Settings(List<String> metaAddresses, long requestTimeoutMs, long callTimeoutMs, DurabilityMode durability, TlsConfig tls) {
            this(metaAddresses, requestTimeoutMs, callTimeoutMs, durability, tls, WriteCoalescing.DEFAULT);
        }

        /** Without TLS. */
        public Settings(List<String> metaAddresses, long requestTimeoutMs, long callTimeoutMs, DurabilityMode durability) {
            this(metaAddresses, requestTimeoutMs, callTimeoutMs, durability, null);
        }

        /** These settings, calling the cluster over TLS with {@code tls} (null: plain TCP; docs/security.md). */
        public Settings withTls(TlsConfig tls) {
            return new Settings(metaAddresses, requestTimeoutMs, callTimeoutMs, durability, tls, coalescing);
        }

        /** These settings with {@code coalescing} of single-record writes. */
        public Settings withCoalescing(WriteCoalescing coalescing) {
            return new Settings(metaAddresses, requestTimeoutMs, callTimeoutMs, durability, tls, coalescing);
        }

        public static Settings of(String... metaAddresses) {
            return new Settings(List.of(metaAddresses), 30_000, 5_000, DurabilityMode.FSYNC);
        }
    }

    /**
     * How concurrent single-record writes to one shard are coalesced into batches ({@link WriteCoalescer};
     * {@code segment.write.coalesce.*} settings, docs/configuration.md).
     *
     * @param maxInFlight batches of one shard out at once before writes wait to be coalesced; 0: every write is
     *                    its own request
     * @param maxRecords  records in one coalesced batch at most
     * @param maxBytes    record bytes in one coalesced batch at most (a larger single record goes alone)
     */
    public record WriteCoalescing(int maxInFlight, int maxRecords, long maxBytes) {
        /** 8 batches out, each up to 1,000 records and 1 MiB. */
        public static final WriteCoalescing DEFAULT = new WriteCoalescing(8, 1_000, 1 << 20);
        /** Off: every write is a request of its own. */
        public static final WriteCoalescing OFF = new WriteCoalescing(0, 1, 1);

        public WriteCoalescing {
            if (maxInFlight < 0 || maxRecords < 1 || maxRecords > dev.segstore.adapter.Limits.MAX_BATCH_RECORDS || maxBytes < 1
                    || maxBytes > dev.segstore.adapter.Limits.MAX_BATCH_BYTES) {
                throw StorageException.invalidArgument("setting segment.write.coalesce.*", "max.in.flight >= 0, max.records in 1.."
                        + dev.segstore.adapter.Limits.MAX_BATCH_RECORDS + ", max.bytes in 1.." + dev.segstore.adapter.Limits.MAX_BATCH_BYTES,
                        maxInFlight + ", " + maxRecords + ", " + maxBytes);
            }
        }
    }

    private final Settings settings;
    private final MetaClient meta;
    /** Per shard name, the coalescer of its single-record writes. */
    private final Map<String, WriteCoalescer> coalescers = new ConcurrentHashMap<>();
    private final RpcClient nodes;
    /** Calls to the storage nodes over {@link #nodes}, and the nodes' addresses. */
    private final NodeCalls calls;
    /** The cached routes of shards. */
    private final RouteCache routes;
    /** Connections kept open to the replicas of the open segments in {@link #routes}. */
    private final ReplicaConnections replicaConnections;
    private final RetryScheduler retryScheduler = new RetryScheduler("segment-client-retry");
    private final InFlightOperations operations = new InFlightOperations();
    /** Runs operations against their shard's route, retrying with a fresh one (on {@link #retryScheduler}). */
    private final ShardRetries retries;
    /** The reads, each a walk over a route's segments. */
    private final SegmentReads reads;
    /** The batch writes, with each shard's producer id and sequences. */
    private final BatchWriter batchWriter;

    public SegmentStorageAdapter(Settings settings) {
        this(settings, 0);
    }

    /** As above, each shard's first producer id starting at sequence {@code firstSequence}: tests start near the wrap. */
    SegmentStorageAdapter(Settings settings, int firstSequence) {
        super(STORAGE_TYPE);
        this.settings = settings;
        this.meta = new MetaClient(settings.metaAddresses(), settings.callTimeoutMs(), settings.requestTimeoutMs(), settings.tls());
        this.nodes = new RpcClient(2, Frames.DEFAULT_MAX_FRAME_BYTES, settings.tls());
        this.calls = new NodeCalls(meta, nodes, settings.callTimeoutMs());
        this.replicaConnections = new ReplicaConnections(nodes, calls::address, System::nanoTime);
        this.routes = new RouteCache(meta, replicaConnections);
        // The retries' closed flag is this adapter's: close() sets it before doClose() runs the retries waiting.
        this.retries = new ShardRetries(routes, retryScheduler, operations, settings.requestTimeoutMs(), this::isClosed,
                calls::forgetAddresses);
        this.reads = new SegmentReads(routes, calls);
        this.batchWriter = new BatchWriter(meta, routes, replicaConnections, calls, retries, retryScheduler, this::isClosed,
                firstSequence);
    }

    // ---- shards --------------------------------------------------------------------------------------------

    @Override
    protected CompletableFuture<Void> doCreateShard(ShardConfig config) {
        ShardSettings s = ShardSettings.newBuilder().setReplicaCount(config.replicaCount())
                .setMinInSyncReplicas(config.minInSyncReplicas()).setSegmentBytes(config.segmentBytes())
                .setRetentionMs(config.retentionMs()).setDurability(settings.durability()).build();
        return tracked("createShard('" + config.name() + "')", meta.createShard(config.name(), s).handle((route, e) -> {
            if (e != null) {
                throw storageError(e);
            }
            if (route.getSegmentsCount() > 0) {
                // A retried create that was applied, its shard deleted since, answers a route of nothing: not cached.
                routes.created(config.name(), route);
            }
            return null;
        }));
    }

    @Override
    protected CompletableFuture<Void> doDeleteShard(String shard) {
        return tracked("deleteShard('" + shard + "')", meta.deleteShard(shard).handle((r, e) -> {
            routes.drop(shard);
            batchWriter.forget(shard);
            if (e != null) {
                throw storageError(e);
            }
            return null;
        }));
    }

    @Override
    protected CompletableFuture<List<ShardInfo>> doListShards(ShardFilter filter) {
        return tracked("listShards", meta.listShards(filter.namePrefix()).handle((r, e) -> {
            if (e != null) {
                throw storageError(e);
            }
            return r.getShardsList();
        }).thenCompose(shards -> {
            List<CompletableFuture<Optional<ShardInfo>>> infos = new ArrayList<>();
            for (Shard s : shards) {
                infos.add(shardInfo(s));
            }
            return CompletableFuture.allOf(infos.toArray(CompletableFuture[]::new)).thenApply(v -> infos.stream()
                    .map(CompletableFuture::join).flatMap(Optional::stream).sorted(Comparator.comparing(ShardInfo::name)).toList());
        }));
    }

    /**
     * What listShards says of a shard the meta-service listed: its config from its route, and its log end. Empty
     * when the shard was deleted after the list was read (its route is gone): the list leaves it out, as a list
     * read after the delete would. The list and the routes are separate meta-service reads, so a list is not a
     * snapshot: a shard created meanwhile is missing, one re-created meanwhile is shown as it is now. The settings
     * are the list's (a cached route may be older than an alter-shard), unless the route names a newer shard.
     */
    private CompletableFuture<Optional<ShardInfo>> shardInfo(Shard listed) {
        String shard = listed.getName();
        return retries.withRoute("listShards", shard, route -> reads.logEndOffset(shard, route).thenApply(end -> {
            Shard s = route.getShard().getShardId() == listed.getShardId() ? listed : route.getShard();
            return Optional.of(new ShardInfo(config(s), s.getCreatedAtMs(), end));
        }))
                .exceptionally(e -> {
                    StorageException se = storageError(e);
                    if (se.code() == ErrorCode.SHARD_NOT_FOUND) {
                        return Optional.empty();
                    }
                    throw se;
                });
    }

    private static ShardConfig config(Shard s) {
        ShardSettings st = s.getSettings();
        return new ShardConfig(s.getName(), st.getReplicaCount(), st.getMinInSyncReplicas(), st.getSegmentBytes(),
                st.getRetentionMs(), STORAGE_TYPE);
    }

    // ---- writes --------------------------------------------------------------------------------------------

    @Override
    protected CompletableFuture<Long> doWrite(String shard, NewRecord record) {
        if (settings.coalescing().maxInFlight() == 0) {
            return super.doWrite(shard, record);
        }
        return coalescers.computeIfAbsent(shard, k -> new WriteCoalescer(settings.coalescing(), records -> doBatchWrite(shard, records)))
                .write(record);
    }

    @Override
    protected CompletableFuture<List<Long>> doBatchWrite(String shard, List<NewRecord> records) {
        return batchWriter.write(shard, records);
    }

    // ---- reads ---------------------------------------------------------------------------------------------

    @Override
    protected CompletableFuture<List<StoredRecord>> doReadByOffset(String shard, long offset, int limit) {
        // Below the oldest segment retention left, records are gone: the read starts at the oldest one kept.
        return retries.withRoute("readByOffset", shard,
                route -> reads.readFrom(route, Math.max(offset, route.getSegments(0).getStartOffset()), limit, new ArrayList<>()));
    }

    @Override
    protected CompletableFuture<List<StoredRecord>> doReadByTag(String shard, String tag, long offset, int limit) {
        return retries.withRoute("readByTag", shard, route -> reads.tagRead(shard, route, -1, tag, offset, limit, new ArrayList<>()));
    }

    @Override
    protected CompletableFuture<Optional<StoredRecord>> doReadByKey(String shard, String key) {
        return retries.withRoute("readByKey", shard, route -> reads.keyRead(shard, route, route.getSegmentsCount() - 1, key));
    }

    @Override
    protected CompletableFuture<OptionalLong> doGetOffsetByTimestamp(String shard, long timestamp) {
        return retries.withRoute("getOffsetByTimestamp", shard, route -> reads.timestampRead(shard, route, -1, timestamp));
    }

    // ---- deletes -------------------------------------------------------------------------------------------

    @Override
    protected CompletableFuture<Boolean> doDeleteByOffset(String shard, long offset) {
        // An attempt that failed after it may have reached the leader may have deleted the record: a later attempt
        // then finds it deleted and cannot tell by whom, so "false" (already deleted) would not be known.
        java.util.concurrent.atomic.AtomicBoolean mayHaveDeleted = new java.util.concurrent.atomic.AtomicBoolean();
        return retries.withRoute("deleteByOffset", shard, route -> deleteAt(shard, route, offset).whenComplete((r, e) -> {
            if (e != null && !notApplied(e)) {
                mayHaveDeleted.set(true);
            }
        })).handle((r, e) -> {
            if (e != null) {
                StorageException se = storageError(e);
                if (se.code() == ErrorCode.OFFSET_OUT_OF_RANGE) {
                    throw new StorageException(ErrorCode.OFFSET_OUT_OF_RANGE, "shard '" + shard + "' holds no record at offset "
                            + offset + " (" + se.getMessage() + ")");
                }
                throw se;
            }
            if (r.getDeleted() == 0 && mayHaveDeleted.get()) {
                throw new StorageException(ErrorCode.OUTCOME_UNKNOWN, "shard '" + shard + "': the record at offset " + offset
                        + " is deleted, but whether by this call is unknown: an earlier attempt, whose answer was lost, may have deleted it");
            }
            return r.getDeleted() > 0;
        });
    }

    private CompletableFuture<DeleteResponse> deleteAt(String shard, ShardRoute route, long offset) {
        if (offset < route.getSegments(0).getStartOffset()) {
            // dropped by retention with its segment: nothing live there to delete
            return CompletableFuture.completedFuture(DeleteResponse.newBuilder().setDeleted(0).build());
        }
        Segment found = segmentFor(route, offset);
        Segment seg = found != null ? found : openSegment(route); // at or past the end: the open segment's leader says so
        DeleteRequest req = DeleteRequest.newBuilder().setSegment(ref(seg)).addOffsets(offset).build();
        return calls.callNode(seg.getLeader(), NodeMethods.DELETE, req, DeleteResponse.parser()).thenCompose(r -> {
            if (r.getSealed() && r.getDeleted() == 0 && offset >= r.getSealedEnd() && seg.getStatus() != SegmentStatus.SEALED) {
                // The route calls the segment open, but it was sealed below the offset: the offset is in a later one.
                return routes.past(shard, seg.getSequence()).thenCompose(fresh -> deleteAt(shard, fresh, offset));
            }
            return CompletableFuture.completedFuture(r);
        });
    }

    @Override
    protected CompletableFuture<Long> doDeleteByKey(String shard, String key) {
        // One delete per segment. A segment that answered is not asked again when another one failed and the
        // attempt is retried (its answer would then be 0, its records being deleted already): answers are kept
        // by segment sequence across attempts.
        // A segment whose attempt failed after it may have reached the leader may have deleted records then: its
        // later answer does not count those, so the total would not be known.
        Map<Long, Long> deleted = new ConcurrentHashMap<>();
        java.util.Set<Long> uncertain = ConcurrentHashMap.newKeySet();
        return retries.withRoute("deleteByKey", shard, route -> deleteKeyIn(shard, route, key, deleted, uncertain)).thenApply(v -> {
            if (!uncertain.isEmpty()) {
                throw new StorageException(ErrorCode.OUTCOME_UNKNOWN, "shard '" + shard + "': key '" + key + "' is deleted, but how"
                        + " many records this call deleted is unknown: an earlier attempt in segment(s) " + uncertain
                        + ", whose answer was lost, may have deleted some");
            }
            return deleted.values().stream().mapToLong(Long::longValue).sum();
        });
    }

    /**
     * Deletes the key in every segment of {@code route} not answered yet; when the segment the route calls open
     * says it is sealed, goes on with the later segments of a fresh route.
     */
    private CompletableFuture<Void> deleteKeyIn(String shard, ShardRoute route, String key, Map<Long, Long> deleted, java.util.Set<Long> uncertain) {
        Segment open = openSegment(route);
        java.util.concurrent.atomic.AtomicBoolean stale = new java.util.concurrent.atomic.AtomicBoolean();
        List<CompletableFuture<Void>> parts = new ArrayList<>();
        for (Segment seg : route.getSegmentsList()) {
            if (deleted.containsKey(seg.getSequence())) {
                continue;
            }
            parts.add(calls.callNode(seg.getLeader(), NodeMethods.DELETE, DeleteRequest.newBuilder().setSegment(ref(seg))
                    .setByKey(true).setKey(key).build(), DeleteResponse.parser()).whenComplete((r, e) -> {
                        if (e != null && !notApplied(e)) {
                            uncertain.add(seg.getSequence());
                        }
                    }).thenAccept(r -> {
                        deleted.put(seg.getSequence(), r.getDeleted());
                        if (r.getSealed() && seg.getStatus() != SegmentStatus.SEALED) {
                            stale.set(true);
                        }
                    }));
        }
        return CompletableFuture.allOf(parts.toArray(CompletableFuture[]::new)).thenCompose(v -> stale.get()
                ? routes.past(shard, open.getSequence()).thenCompose(fresh -> deleteKeyIn(shard, fresh, key, deleted, uncertain))
                : CompletableFuture.completedFuture(null));
    }

    // ---- consumer groups -----------------------------------------------------------------------------------

    @Override
    protected CompletableFuture<OptionalLong> doGetOffsetByGroup(String group, String shard) {
        return tracked("getOffsetByGroup('" + group + "', '" + shard + "')", meta.offset(group, shard).handle((r, e) -> {
            if (e != null) {
                throw storageError(e);
            }
            return r.getFound() ? OptionalLong.of(r.getOffset()) : OptionalLong.empty();
        }));
    }

    @Override
    protected CompletableFuture<Void> doCommitOffset(String group, String shard, long offset) {
        // With the id of the shard this adapter's route names, when it has one: an offset read from a shard that
        // was deleted since must not land in a new shard of the same name (the meta-service refuses it then).
        // The id is the one of the last route read for this name, kept after the route is dropped: a retry of a
        // refused commit is refused again, until a read or write of this adapter has read the new shard's route.
        CompletableFuture<ShardRoute> cached = routes.cached(shard);
        long shardId = routes.knownShardId(shard);
        return tracked("commitOffset('" + group + "', '" + shard + "')", meta.commitOffsets(List.of(GroupOffset.newBuilder()
                .setGroup(group).setShard(shard).setShardId(shardId).setOffset(offset).build())).handle((r, e) -> {
                    if (e != null) {
                        StorageException se = storageError(e);
                        if (se.code() == ErrorCode.SHARD_NOT_FOUND && cached != null) {
                            routes.drop(shard, cached); // the next operation reads the current shard's route
                        }
                        throw se;
                    }
                    return null;
                }));
    }

    /**
     * Waits for the operations in flight, a bounded time, then completes every one still pending (the contract:
     * close waits for operations in flight, and no future is left incomplete):
     * <ol>
     *   <li>retries waiting for their pause run now and, seeing the adapter closed, send nothing: their
     *       operations fail with their closing error ({@link ShardRetries#closedBefore}; OUTCOME_UNKNOWN for a
     *       write that may have been stored). An attempt that fails from now on is not retried either;</li>
     *   <li>attempts on the wire get one call timeout ({@code call.timeout.ms}) to be answered: their real
     *       outcome;</li>
     *   <li>then the connections and the meta-service client close, failing what is still out, and whatever
     *       is left completes with its closing error.</li>
     * </ol>
     */
    @Override
    protected void doClose() {
        retryScheduler.close();
        operations.awaitAll(settings.callTimeoutMs());
        nodes.close();
        meta.close();
        operations.completeAll();
    }

    /** Tracks an operation until it completes; pending when the adapter closes, it fails CLOSED. */
    private <T> CompletableFuture<T> tracked(String what, CompletableFuture<T> operation) {
        return operations.track(operation, () -> closedBefore(what, null));
    }

    /** Whether a connection to the storage node at {@code address} is open now (tests). */
    boolean connectedTo(String address) {
        return nodes.connected(address);
    }

    /** Whether {@code t} is a node's refusal of a request before it took effect (rpc.proto, {@code Error.not_applied}). */
    static boolean notApplied(Throwable t) {
        return unwrap(t) instanceof RpcException re && re.notApplied();
    }

    /** {@code t} without the CompletionException and ExecutionException wrappers around it. */
    static Throwable unwrap(Throwable t) {
        Throwable e = t;
        while ((e instanceof CompletionException || e instanceof java.util.concurrent.ExecutionException) && e.getCause() != null) {
            e = e.getCause();
        }
        return e;
    }

    /** Any failure as the adapter's error: wire codes keep their meaning. */
    static StorageException storageError(Throwable t) {
        Throwable e = unwrap(t);
        if (e instanceof StorageException se) {
            return se;
        }
        if (e instanceof RpcException re) {
            ErrorCode code = ErrorCode.fromCode(re.code());
            return new StorageException(code == null ? ErrorCode.INTERNAL : code, re.getMessage());
        }
        return new StorageException(ErrorCode.INTERNAL, "segment engine failed: " + e, e);
    }
}
