package dev.segstore.node.server;

import dev.segstore.protocol.NodeMethods;
import com.google.protobuf.ByteString;
import com.google.protobuf.Message;
import dev.segstore.adapter.ErrorCode;
import dev.segstore.log.AppendRecord;
import dev.segstore.log.AppendResult;
import dev.segstore.log.Durability;
import dev.segstore.log.LogDirectory;
import dev.segstore.log.LogException;
import dev.segstore.log.epoch.EpochEndOffset;
import dev.segstore.client.MetaClient;
import dev.segstore.node.replica.IsrProposer;
import dev.segstore.node.replica.LeaderEndPoint;
import dev.segstore.node.replica.Partition;
import dev.segstore.node.replica.PartitionStatus;
import dev.segstore.node.replica.ReplicaConfig;
import dev.segstore.node.replica.ReplicaException;
import dev.segstore.node.replica.Tombstones;
import dev.segstore.protocol.meta.DurabilityMode;
import dev.segstore.protocol.meta.NodeAssignments;
import dev.segstore.protocol.meta.ProposeIsrRequest;
import dev.segstore.protocol.meta.Segment;
import dev.segstore.protocol.meta.Shard;
import dev.segstore.protocol.node.DeleteRequest;
import dev.segstore.protocol.node.DeleteResponse;
import dev.segstore.protocol.node.EpochEndOffsetRequest;
import dev.segstore.protocol.node.EpochEndOffsetResponse;
import dev.segstore.protocol.node.FetchRequest;
import dev.segstore.protocol.node.FetchResponse;
import dev.segstore.protocol.node.ProduceRequest;
import dev.segstore.protocol.node.ProduceResponse;
import dev.segstore.protocol.node.SegmentRef;
import dev.segstore.protocol.rpc.Frames;
import dev.segstore.protocol.rpc.Attachment;
import dev.segstore.protocol.rpc.Reply;
import dev.segstore.protocol.rpc.RpcClient;
import java.nio.ByteBuffer;
import dev.segstore.protocol.rpc.RpcException;
import dev.segstore.protocol.rpc.RpcHandler;
import dev.segstore.protocol.rpc.RpcServer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.net.InetSocketAddress;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * A storage node: hosts segment replicas (one {@link Partition} over one segment log each), serves the data
 * plane, and follows the meta-service's assignments, which it receives with every heartbeat: it becomes
 * leader or follower of each segment as told, creates replicas it is given and deletes those taken away.
 * Followers fetch from their leaders on a small pool of fetcher threads.
 */
public final class StorageNode implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(StorageNode.class);
    private static final int FETCH_MAX_BYTES = 1 << 20;
    private static final long FETCH_IDLE_MS = 10;
    /** Longest a leader holds a caught-up fetch waiting for new data when the fetcher names no wait. */
    private static final long FETCH_WAIT_MS = 200;
    /**
     * How long a follower of an open segment lets the leader hold its fetch: new data or a delete wakes the fetch
     * at once, so the wait costs no latency; it bounds the idle traffic (one fetch per segment per wait: 200 ms
     * made 315 fetches a second on a node leading 34 idle segments).
     */
    private static final int OPEN_FETCH_WAIT_MS = 1_000;
    /**
     * How long a follower of a sealed segment lets the leader hold its fetch: only deletes are new there, and
     * a delete wakes the fetch at once, so a long wait costs no latency and keeps idle segments quiet.
     */
    private static final int SEALED_FETCH_WAIT_MS = 2_000;

    /** One hosted replica and what the node last applied of its assignment. */
    private static final class Hosted {
        final Partition partition;
        final ReplicaIndex index;
        volatile Segment assigned;
        /** Whether a fetch loop runs for this replica: set by whoever starts one, cleared by the loop as it ends. */
        final java.util.concurrent.atomic.AtomicBoolean fetching = new java.util.concurrent.atomic.AtomicBoolean();

        Hosted(Partition partition, ReplicaIndex index) {
            this.partition = partition;
            this.index = index;
        }
    }

    private record Key(long shardId, long sequence) {
        static Key of(SegmentRef r) {
            return new Key(r.getShardId(), r.getSequence());
        }

        static Key of(Segment s) {
            return new Key(s.getShardId(), s.getSequence());
        }

        String logName() {
            return shardId + "-" + sequence;
        }
    }

    private final NodeConfig config;
    private final LogDirectory directory;
    private final dev.segstore.node.index.NodeIndex index;
    private final MetaClient meta;
    private final RpcServer server;
    private final RpcClient peers = new RpcClient(2, Frames.DEFAULT_MAX_FRAME_BYTES);
    private final Map<Key, Hosted> hosted = new ConcurrentHashMap<>();
    private final Map<Integer, String> nodeAddresses = new ConcurrentHashMap<>();
    private final ScheduledExecutorService control = Executors.newSingleThreadScheduledExecutor(r -> daemon(r, "node-control"));
    private final ScheduledExecutorService fetchers = Executors.newScheduledThreadPool(2, r -> daemon(r, "node-fetcher"));
    private final ShardOwners owners;
    private final NodeMetrics metrics;
    private volatile long incarnation = -1;
    /** The newest metadata version applied (control thread): older assignments are ignored. */
    private long metadataVersion = -1;
    private volatile int registrationFailures; // written by the control thread only
    private volatile boolean closed;
    private final int boundPort;

    private static Thread daemon(Runnable r, String name) {
        Thread t = new Thread(r, name);
        t.setDaemon(true);
        return t;
    }

    /**
     * The transport seam for fault tests: asked before every call this node makes to another storage node;
     * {@link #drop} true fails the call UNAVAILABLE (as a lost network would), and {@link #delayMs} holds it
     * back that long before it is sent (a slow link or a slow follower).
     */
    @FunctionalInterface
    public interface PeerFaults {
        PeerFaults NONE = (from, to, method) -> false;

        boolean drop(int fromNode, String toAddress, String method);

        default long delayMs(int fromNode, String toAddress, String method) {
            return 0;
        }
    }

    private final PeerFaults faults;

    private StorageNode(NodeConfig config, PeerFaults faults, dev.segstore.log.io.LogFiles files) throws Exception {
        this.config = config;
        this.faults = faults;
        this.owners = new ShardOwners(config.ownerThreads(), "node-" + config.nodeId() + "-owner");
        this.metrics = new NodeMetrics(config.host(), config.metricsPort(),
                () -> hosted.values().stream().map(h -> h.partition).toList());
        this.directory = LogDirectory.open(config.dataDir().resolve("logs"), config.directory(), files, System::currentTimeMillis);
        this.index = new dev.segstore.node.index.NodeIndex(config.dataDir().resolve("index"));
        this.meta = new MetaClient(config.metaAddresses(), 2_000, 10_000);
        this.server = new RpcServer(2, Frames.DEFAULT_MAX_FRAME_BYTES)
                .register(onOwner(NodeMethods.PRODUCE, ProduceRequest.parser(), ProduceRequest::getSegment, this::produce))
                .register(onOwner(NodeMethods.FETCH, FetchRequest.parser(), FetchRequest::getSegment, this::fetch))
                .register(onOwner(NodeMethods.EPOCH_END_OFFSET, EpochEndOffsetRequest.parser(), EpochEndOffsetRequest::getSegment,
                        this::epochEndOffset))
                .register(onOwner(NodeMethods.READ_BY_KEY, dev.segstore.protocol.node.IndexReadRequest.parser(),
                        dev.segstore.protocol.node.IndexReadRequest::getSegment, r -> readIndexed(r, true)))
                .register(onOwner(NodeMethods.READ_BY_TAG, dev.segstore.protocol.node.IndexReadRequest.parser(),
                        dev.segstore.protocol.node.IndexReadRequest::getSegment, r -> readIndexed(r, false)))
                .register(onOwner(NodeMethods.OFFSET_FOR_TIMESTAMP, dev.segstore.protocol.node.TimestampRequest.parser(),
                        dev.segstore.protocol.node.TimestampRequest::getSegment, this::offsetForTimestamp))
                .register(onOwner(NodeMethods.DELETE, DeleteRequest.parser(), DeleteRequest::getSegment, this::delete))
                .register(onOwner(NodeMethods.REPLICA_STATUS, dev.segstore.protocol.node.ReplicaStatusRequest.parser(),
                        dev.segstore.protocol.node.ReplicaStatusRequest::getSegment, this::replicaStatus));
        InetSocketAddress bound = server.start(config.host(), config.port());
        this.boundPort = bound.getPort();
        // The first tick registers, and ticks go on registering until it succeeds: a node started while the
        // meta-service has no leader yet (a whole cluster started at once, a slow election) waits for it.
        control.scheduleWithFixedDelay(this::heartbeat, 0, config.heartbeatMs(), TimeUnit.MILLISECONDS);
        long tick = Math.max(10, config.replicaMaxLagMs() / 2);
        control.scheduleWithFixedDelay(this::isrTick, tick, tick, TimeUnit.MILLISECONDS);
        control.scheduleWithFixedDelay(this::indexTick, 200, 200, TimeUnit.MILLISECONDS);
        LOG.info("Storage node {} serving on {}:{}, data in {}", config.nodeId(), config.host(), boundPort, config.dataDir());
    }

    /**
     * A data-plane method: each request runs on its shard's owner thread (ShardOwners), not on the event loop,
     * and is counted (and, but for long-polled follower fetches, timed) in the node's metrics.
     */
    private <Q extends Message> RpcHandler<Q> onOwner(String method, com.google.protobuf.Parser<Q> parser,
                                                      java.util.function.Function<Q, SegmentRef> segment,
                                                      java.util.function.Function<Q, CompletableFuture<?>> handle) {
        return RpcHandler.of(method, parser, r -> {
            boolean replicaFetch = r instanceof FetchRequest f && f.getReplicaId() >= 0;
            CompletableFuture<Object> answer = owners.run(segment.apply(r).getShardId(), () -> handle.apply(r).thenApply(x -> x));
            return metrics.observe(replicaFetch ? "node.ReplicaFetch" : method, !replicaFetch, answer);
        });
    }

    public static StorageNode start(NodeConfig config) throws Exception {
        return start(config, PeerFaults.NONE);
    }

    /** Starts a node whose calls to other storage nodes pass through {@code faults} (tests). */
    public static StorageNode start(NodeConfig config, PeerFaults faults) throws Exception {
        return start(config, faults, dev.segstore.log.io.RealLogFiles.INSTANCE);
    }

    /** Starts a node whose segment logs live on {@code files} (tests: a file layer that injects disk faults). */
    public static StorageNode start(NodeConfig config, PeerFaults faults, dev.segstore.log.io.LogFiles files) throws Exception {
        return new StorageNode(config, faults, files);
    }

    private <R extends Message> CompletableFuture<R> callPeer(String address, String method, Message request,
                                                             com.google.protobuf.Parser<R> parser) {
        return throughFaults(address, method, () -> peers.call(address, method, request, parser, 5_000));
    }

    /** Makes a call to another storage node unless the fault rules drop it (then it fails UNAVAILABLE). */
    private <T> CompletableFuture<T> throughFaults(String address, String method, java.util.function.Supplier<CompletableFuture<T>> call) {
        if (faults.drop(config.nodeId(), address, method)) {
            return CompletableFuture.failedFuture(new RpcException(ErrorCode.UNAVAILABLE.code(), "dropped by the fault rules"));
        }
        long delay = faults.delayMs(config.nodeId(), address, method);
        if (delay > 0) {
            return CompletableFuture.supplyAsync(call, CompletableFuture.delayedExecutor(delay, TimeUnit.MILLISECONDS)).thenCompose(f -> f);
        }
        return call.get();
    }

    public int port() {
        return boundPort;
    }

    /** The port of this node's Prometheus endpoint, or -1 when it has none. */
    public int metricsPort() {
        return metrics.port();
    }

    public int nodeId() {
        return config.nodeId();
    }

    /** The partition hosted for a segment, if any (tests and admin). */
    public Partition partition(long shardId, long sequence) {
        Hosted h = hosted.get(new Key(shardId, sequence));
        return h == null ? null : h.partition;
    }

    // ---- meta-service: registration, heartbeats, assignments ----------------------------------------------

    /** Whether the node has registered with the meta-service (it serves no replica before). */
    public boolean registered() {
        return incarnation >= 0;
    }

    /** Failed registration attempts since the node started (each is retried on the next tick). */
    public int registrationFailures() {
        return registrationFailures;
    }

    private void register() {
        try {
            NodeAssignments a = meta.registerNode(config.nodeId(), config.host(), boundPort, !directory.isOnline()).get(30, TimeUnit.SECONDS);
            incarnation = a.getNode().getIncarnation();
            LOG.info("Storage node {} registered, incarnation {}, {} segment(s) assigned", config.nodeId(), incarnation, a.getSegmentsCount());
            apply(a);
        } catch (Exception e) {
            registrationFailures++;
            Throwable cause = e.getCause() != null ? e.getCause() : e;
            LOG.warn("Storage node {}: registration with the meta-service failed ({}); trying again", config.nodeId(), cause.toString());
        }
    }

    /** Control thread, every heartbeat interval: registers until registered, then heartbeats. */
    private void heartbeat() {
        if (closed) {
            return;
        }
        if (!registered()) {
            register();
            return;
        }
        try {
            // A failed data directory is reported with every heartbeat: the controller fences this node at once
            // (its leaderships move, it leaves every ISR) instead of after the session timeout.
            NodeAssignments a = meta.heartbeat(config.nodeId(), incarnation, !directory.isOnline()).get(10, TimeUnit.SECONDS);
            apply(a);
        } catch (Exception e) {
            Throwable cause = e.getCause() != null ? e.getCause() : e;
            if (cause instanceof RpcException re && re.code() == ErrorCode.FENCED_EPOCH.code()) {
                LOG.warn("Storage node {} was fenced; registering again", config.nodeId());
                incarnation = -1;
                register();
            } else {
                LOG.warn("Heartbeat failed: {}", cause.toString());
            }
        }
    }

    /**
     * Reconciles hosted replicas with the assignments (control thread). An answer older than one applied
     * already (a lower metadata version: a deposed meta leader's, or one overtaken on the way) is ignored, and
     * a replica is deleted only on the word of an answer at least as new as the metadata that created it.
     */
    private synchronized void apply(NodeAssignments a) {
        if (closed) {
            return;
        }
        if (a.getMetadataVersion() < metadataVersion) {
            LOG.warn("Storage node {}: ignoring assignments at metadata version {}, older than {} applied already",
                    config.nodeId(), a.getMetadataVersion(), metadataVersion);
            return;
        }
        metadataVersion = a.getMetadataVersion();
        for (dev.segstore.protocol.meta.StorageNode n : a.getNodesList()) {
            nodeAddresses.put(n.getNodeId(), n.getHost() + ":" + n.getPort());
        }
        Map<Long, Shard> shards = new ConcurrentHashMap<>();
        a.getShardsList().forEach(s -> shards.put(s.getShardId(), s));
        Set<Key> assigned = new HashSet<>();
        for (Segment s : a.getSegmentsList()) {
            Key key = Key.of(s);
            assigned.add(key);
            Shard shard = shards.get(s.getShardId());
            Hosted h;
            try {
                h = hosted.computeIfAbsent(key, k -> open(k, s, shard));
            } catch (RuntimeException e) {
                LOG.error("Segment {}: cannot open the replica: {}", key.logName(), e.toString());
                continue;
            }
            Segment before = h.assigned;
            h.assigned = s;
            int me = config.nodeId();
            boolean epochChanged = before == null || before.getLeaderEpoch() != s.getLeaderEpoch();
            try {
                // The role first, then the seal: a follower takes a seal only once it has truncated against its
                // leader (a deposed leader may hold records past the seal point).
                if (s.getLeader() == me && (epochChanged || h.partition.role() != Partition.Role.LEADER)) {
                    h.partition.becomeLeader(s.getLeaderEpoch(), s.getReplicasList(), s.getIsrList(), s.getIsrVersion());
                } else if (s.getLeader() == me) {
                    h.partition.onControllerIsr(s.getLeaderEpoch(), s.getIsrList(), s.getIsrVersion());
                } else if (s.getLeader() >= 0 && (epochChanged || h.partition.role() != Partition.Role.FOLLOWER)) {
                    h.partition.becomeFollower(s.getLeaderEpoch(), s.getLeader());
                }
                if (s.getStatus() == dev.segstore.protocol.meta.SegmentStatus.SEALED) {
                    h.partition.markSealed(s.getEndOffset());
                }
                if (h.partition.role() == Partition.Role.FOLLOWER) {
                    startFetching(key, h);
                }
            } catch (RuntimeException e) {
                // One replica that cannot take its assignment (a damaged log, a refused epoch) must not keep the
                // others from theirs: it is tried again at the next heartbeat.
                LOG.warn("Segment {}: assignment not applied: {}", key.logName(), e.toString());
            }
        }
        for (Key k : List.copyOf(hosted.keySet())) {
            Hosted h = hosted.get(k);
            if (!assigned.contains(k) && h.assigned.getCreatedVersion() > a.getMetadataVersion()) {
                LOG.warn("Segment {} is missing from assignments at metadata version {}, older than its creation at {}: kept",
                        k.logName(), a.getMetadataVersion(), h.assigned.getCreatedVersion());
            } else if (!assigned.contains(k)) {
                Hosted gone = hosted.remove(k);
                LOG.info("Segment {} is no longer assigned here: deleting the replica", k.logName());
                gone.partition.becomeFollower(Integer.MAX_VALUE, -1);
                directory.deleteLog(k.logName());
                try {
                    index.dropSegment(k.shardId(), k.sequence());
                } catch (org.rocksdb.RocksDBException e) {
                    LOG.warn("Dropping the index of {} failed: {}", k.logName(), e.toString());
                }
            }
        }
    }

    private Hosted open(Key key, Segment s, Shard shard) {
        int minIsr = shard == null ? 1 : Math.max(1, shard.getSettings().getMinInSyncReplicas());
        Durability durability = shard != null && shard.getSettings().getDurability() == DurabilityMode.PAGE_CACHE
                ? Durability.PAGE_CACHE : Durability.FSYNC;
        ReplicaConfig rc = new ReplicaConfig(minIsr, config.replicaMaxLagMs(), durability);
        IsrProposer proposer = (epoch, version, isr) -> meta.proposeIsr(ProposeIsrRequest.newBuilder()
                .setShard(s.getShard()).setSequence(s.getSequence()).setLeader(config.nodeId()).setLeaderEpoch(epoch)
                .setIsrVersion(version).addAllNewIsr(isr).build())
                .thenApply(r -> new IsrProposer.Committed(r.getSegment().getIsrList(), r.getSegment().getIsrVersion()))
                .exceptionally(e -> {
                    throw asReplicaException(e);
                });
        Partition p = new Partition(s.getShard() + "/" + s.getSequence() + "@" + config.nodeId(),
                directory.openLog(key.logName(), config.log(), s.getStartOffset()),
                new Tombstones(index.tombstoneStore(key.shardId(), key.sequence(), durability == Durability.FSYNC)),
                config.nodeId(), rc, System::currentTimeMillis, proposer);
        long segmentBytes = shard == null || shard.getSettings().getSegmentBytes() <= 0 ? Long.MAX_VALUE : shard.getSettings().getSegmentBytes();
        long segmentMs = shard == null || shard.getSettings().getSegmentMs() <= 0 ? Long.MAX_VALUE : shard.getSettings().getSegmentMs();
        if (shard != null && shard.getSettings().getRetentionMs() > 0) {
            // Retention drops sealed segments only: a segment also rolls once retention_ms old, so a record lives
            // about 2 x retention_ms at most, not segment_ms (7 days by default) on a quiet shard.
            segmentMs = Math.min(segmentMs, shard.getSettings().getRetentionMs());
        }
        p.configureRoll(segmentBytes, segmentMs, (epoch, end) -> meta.rollSegment(dev.segstore.protocol.meta.RollSegmentRequest.newBuilder()
                .setShard(s.getShard()).setSequence(s.getSequence()).setLeader(config.nodeId()).setLeaderEpoch(epoch)
                .setEndOffset(end).build()).thenApply(route -> {
                    LOG.info("Segment {}/{} sealed at {}; the next segment opens on nodes {}", s.getShard(), s.getSequence(), end,
                            route.getSegments(route.getSegmentsCount() - 1).getReplicasList());
                    control.execute(this::heartbeat); // learn the next segment now, not at the next heartbeat
                    return null;
                }));
        ReplicaIndex replicaIndex = new ReplicaIndex(index, key.shardId(), key.sequence(), p);
        replicaIndex.resetTo(p.log().logEndOffset());
        return new Hosted(p, replicaIndex);
    }

    // ---- key and tag index ---------------------------------------------------------------------------------

    private void indexTick() {
        hosted.forEach((k, h) -> {
            try {
                h.index.catchUp();
            } catch (RuntimeException e) {
                LOG.warn("Indexing {} failed: {}", k.logName(), e.toString());
            }
        });
    }

    private CompletableFuture<Message> readIndexed(dev.segstore.protocol.node.IndexReadRequest r, boolean byKey) {
        try {
            return CompletableFuture.completedFuture(hostedOrFail(r.getSegment()).index.read(r, byKey));
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(wire(e));
        }
    }

    private CompletableFuture<Message> offsetForTimestamp(dev.segstore.protocol.node.TimestampRequest r) {
        try {
            Hosted h = hostedOrFail(r.getSegment());
            java.util.OptionalLong o = h.partition.log().offsetForTimestamp(r.getTimestamp(), h.partition.highWatermark());
            return CompletableFuture.completedFuture(dev.segstore.protocol.node.TimestampResponse.newBuilder()
                    .setFound(o.isPresent()).setOffset(o.orElse(-1)).build());
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(wire(e));
        }
    }

    private void isrTick() {
        for (Hosted h : hosted.values()) {
            try {
                h.partition.maybeShrinkIsr();
                h.partition.maybeRetryRoll();
            } catch (RuntimeException e) {
                LOG.warn("ISR check failed: {}", e.toString());
            }
        }
    }

    // ---- followers -----------------------------------------------------------------------------------------

    /** Starts the replica's fetch loop unless one runs. */
    private void startFetching(Key key, Hosted h) {
        if (h.fetching.compareAndSet(false, true)) {
            try {
                fetchers.execute(() -> fetchLoop(key, h));
            } catch (java.util.concurrent.RejectedExecutionException closing) {
                h.fetching.set(false);
            }
        }
    }

    private boolean shouldFetch(Key key, Hosted h) {
        return !closed && hosted.get(key) == h && h.partition.role() == Partition.Role.FOLLOWER;
    }

    /**
     * Ends the fetch loop. The flag is cleared before the state is read again: a role change that saw the old
     * loop still running (and so started none) is seen here, and the loop starts again.
     */
    private void stopFetching(Key key, Hosted h) {
        h.fetching.set(false);
        if (shouldFetch(key, h)) {
            startFetching(key, h);
        }
    }

    private void fetchLoop(Key key, Hosted h) {
        // Followers of sealed segments go on fetching too (long-polled): deletes still reach them.
        if (!shouldFetch(key, h)) {
            stopFetching(key, h);
            return;
        }
        CompletableFuture<Integer> round;
        try {
            // Held fetches stay well within the lag limit, or the leader would take a quiet follower for a
            // lagging one; a sealed segment's, where only deletes are new, may wait longer.
            int wait = (int) Math.min(h.partition.sealedEnd() >= 0 ? SEALED_FETCH_WAIT_MS : OPEN_FETCH_WAIT_MS, config.replicaMaxLagMs() / 3);
            LeaderEndPoint leader = remoteLeader(key, h.assigned.getLeader(), wait);
            if (h.partition.needsTruncation()) {
                long end = h.partition.truncateToLeader(leader);
                h.index.resetTo(end);
            }
            round = h.partition.fetchOnceAsync(leader, FETCH_MAX_BYTES);
        } catch (RuntimeException e) {
            round = CompletableFuture.failedFuture(e);
        }
        // The fetch runs without a fetcher thread (it may be held at the leader); the next round is scheduled
        // when it completes: at once after news, after a short pause when it failed or came back empty.
        round.whenComplete((taken, e) -> {
            long delay = e == null && taken > 0 ? 0 : e == null ? FETCH_IDLE_MS : 100;
            if (e != null) {
                LOG.debug("Fetch for {} failed: {}", key.logName(), e.toString());
            }
            try {
                fetchers.schedule(() -> fetchLoop(key, h), delay, TimeUnit.MILLISECONDS);
            } catch (java.util.concurrent.RejectedExecutionException closing) {
                h.fetching.set(false);
            }
        });
    }

    private LeaderEndPoint remoteLeader(Key key, int leaderId, int maxWaitMs) {
        String address = nodeAddresses.get(leaderId);
        if (address == null) {
            throw new ReplicaException(ErrorCode.UNAVAILABLE, "no address known for node " + leaderId);
        }
        SegmentRef ref = SegmentRef.newBuilder().setShardId(key.shardId()).setSequence(key.sequence()).build();
        return new LeaderEndPoint() {
            @Override
            public CompletableFuture<EpochEndOffset> endOffsetForEpoch(int leaderEpoch, int epoch) {
                return callPeer(address, NodeMethods.EPOCH_END_OFFSET, EpochEndOffsetRequest.newBuilder().setSegment(ref)
                                .setLeaderEpoch(leaderEpoch).setEpoch(epoch).build(), EpochEndOffsetResponse.parser())
                        .thenApply(r -> new EpochEndOffset(r.getEpoch(), r.getEndOffset()))
                        .exceptionally(e -> {
                            throw asReplicaException(e);
                        });
            }

            @Override
            public CompletableFuture<FetchResult> fetch(int followerId, int leaderEpoch, long fetchOffset, long tombstoneFrom, int maxBytes) {
                FetchRequest request = FetchRequest.newBuilder().setSegment(ref).setReplicaId(followerId)
                        .setLeaderEpoch(leaderEpoch).setOffset(fetchOffset).setTombstoneFrom(tombstoneFrom)
                        .setMaxWaitMs(maxWaitMs).setMaxBytes(maxBytes).build();
                return throughFaults(address, NodeMethods.FETCH,
                        () -> peers.callWithAttachment(address, NodeMethods.FETCH, request, FetchResponse.parser(), 5_000)).thenApplyAsync(a -> {
                    FetchResponse r = a.message();
                    // The batches come as the answer's attachment (zero-copy on the leader's side).
                    return new FetchResult(a.attachment(), r.getHighWatermark(), r.getLogEndOffset(),
                            new Tombstones.Slice(r.getTombstoneBase(), r.getTombstonesList(), r.getTombstoneEnd(), r.getTombstoneWatermark()));
                }, owners.of(key.shardId())) // the follower's append (and its checksum checks) runs on the shard's owner
                        .exceptionally(e -> {
                            throw asReplicaException(e);
                        });
            }
        };
    }

    // ---- data plane ----------------------------------------------------------------------------------------

    private Hosted hostedOrFail(SegmentRef ref) {
        Hosted h = hosted.get(Key.of(ref));
        if (h == null) {
            throw new RpcException(ErrorCode.NOT_LEADER.code(), "node " + config.nodeId() + " hosts no replica of segment "
                    + ref.getShardId() + "/" + ref.getSequence(), "", true);
        }
        return h;
    }

    private CompletableFuture<Message> produce(ProduceRequest r) {
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
                        metrics.produced((int) (a.lastOffset() - a.baseOffset() + 1), r.getSerializedSize());
                        return ProduceResponse.newBuilder().setBaseOffset(a.baseOffset()).setLastOffset(a.lastOffset()).build();
                    })
                    .exceptionally(e -> {
                        throw wire(e);
                    });
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(wire(e));
        }
    }

    private CompletableFuture<?> fetch(FetchRequest r) {
        try {
            Hosted h = hostedOrFail(r.getSegment());
            if (r.getReplicaId() >= 0) {
                Partition.FollowerFetch f = h.partition.fetchSliceForFollower(r.getReplicaId(), r.getLeaderEpoch(), r.getOffset(),
                        r.getTombstoneFrom(), Math.max(1, r.getMaxBytes()));
                if (f.slice().isEmpty() && f.tombstones().offsets().isEmpty()) {
                    f.slice().close();
                    // Long poll: a caught-up follower waits here for new data or deletes (or its wait) instead of asking again.
                    long wait = r.getMaxWaitMs() > 0 ? Math.min(r.getMaxWaitMs(), 4 * SEALED_FETCH_WAIT_MS) : FETCH_WAIT_MS;
                    return h.partition.awaitDataAfter(r.getOffset(), r.getTombstoneFrom())
                            .completeOnTimeout(null, wait, TimeUnit.MILLISECONDS)
                            .thenApplyAsync(v -> followerResponse(h.partition.fetchSliceForFollower(r.getReplicaId(), r.getLeaderEpoch(),
                                    r.getOffset(), r.getTombstoneFrom(), Math.max(1, r.getMaxBytes()))), owners.of(r.getSegment().getShardId()))
                            .exceptionally(e -> {
                                throw wire(e);
                            });
                }
                return CompletableFuture.completedFuture(followerResponse(f));
            }
            int maxRecords = r.getMaxRecords() <= 0 ? 500 : r.getMaxRecords();
            Partition.ConsumerSlice c = h.partition.readForConsumer(r.getOffset(), maxRecords,
                    Math.max(1, r.getMaxBytes() <= 0 ? FETCH_MAX_BYTES : r.getMaxBytes()));
            FetchResponse response = FetchResponse.newBuilder().setHighWatermark(c.highWatermark())
                    .setLogEndOffset(h.partition.log().logEndOffset()).setNextOffset(c.nextOffset()).addAllDeleted(c.deleted()).build();
            metrics.fetched(false, c.slice().length());
            return CompletableFuture.completedFuture(new Reply(response, attachment(c.slice())));
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(wire(e));
        }
    }

    /**
     * A follower's answer: the watermarks and tombstones in the message, the batches as its attachment, sent
     * from the log file without copying (rpc.proto); the slice is released once sent.
     */
    private Reply followerResponse(Partition.FollowerFetch f) {
        metrics.fetched(true, f.slice().length());
        Tombstones.Slice t = f.tombstones();
        FetchResponse response = FetchResponse.newBuilder()
                .setHighWatermark(f.highWatermark()).setLogEndOffset(f.leaderLogEnd())
                .setTombstoneBase(t.base()).addAllTombstones(t.offsets()).setTombstoneEnd(t.end()).setTombstoneWatermark(t.watermark())
                .build();
        return new Reply(response, attachment(f.slice()));
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

    private CompletableFuture<Message> delete(DeleteRequest r) {
        try {
            Hosted h = hostedOrFail(r.getSegment());
            List<Long> offsets;
            if (r.getByKey()) {
                if (r.getKey().isEmpty()) {
                    throw new RpcException(ErrorCode.INVALID_ARGUMENT.code(), "a delete by key needs a key");
                }
                offsets = h.index.liveOffsetsByKey(r.getKey());
            } else {
                if (r.getOffsetsCount() == 0) {
                    throw new RpcException(ErrorCode.INVALID_ARGUMENT.code(), "a delete needs at least one offset, or a key");
                }
                offsets = r.getOffsetsList();
            }
            return h.partition.delete(offsets)
                    .<Message>thenApply(n -> DeleteResponse.newBuilder().setDeleted(n).build())
                    .exceptionally(e -> {
                        throw wire(e);
                    });
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(wire(e));
        }
    }

    private CompletableFuture<Message> replicaStatus(dev.segstore.protocol.node.ReplicaStatusRequest r) {
        try {
            PartitionStatus st = hostedOrFail(r.getSegment()).partition.status();
            dev.segstore.protocol.node.ReplicaStatusResponse.Builder b = dev.segstore.protocol.node.ReplicaStatusResponse.newBuilder()
                    .setNodeId(config.nodeId()).setRole(st.role().name()).setLeaderEpoch(st.leaderEpoch())
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

    private CompletableFuture<Message> epochEndOffset(EpochEndOffsetRequest r) {
        try {
            EpochEndOffset e = hostedOrFail(r.getSegment()).partition.endOffsetForEpoch(r.getLeaderEpoch(), r.getEpoch());
            return CompletableFuture.completedFuture(EpochEndOffsetResponse.newBuilder().setEpoch(e.epoch()).setEndOffset(e.endOffset()).build());
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(wire(e));
        }
    }

    /**
     * A peer's or the controller's error as the replica layer reads it: a wire error keeps its code (the
     * replica acts on OFFSET_OUT_OF_RANGE, FENCED_EPOCH, INVALID_ARGUMENT); anything else stays as it is, which
     * the replica takes as an unknown outcome.
     */
    private static RuntimeException asReplicaException(Throwable t) {
        Throwable e = t instanceof CompletionException && t.getCause() != null ? t.getCause() : t;
        if (e instanceof RpcException re) {
            return new ReplicaException(ErrorCode.fromCode(re.code()), re.getMessage());
        }
        return e instanceof RuntimeException r ? r : new CompletionException(e);
    }

    /** Maps replica and log errors to wire errors, with the leader's address as the hint. */
    private RpcException wire(Throwable t) {
        Throwable e = t instanceof CompletionException && t.getCause() != null ? t.getCause() : t;
        if (e instanceof RpcException re) {
            return re;
        }
        if (e instanceof ReplicaException re) {
            String hint = re.leaderHint() >= 0 ? nodeAddresses.getOrDefault(re.leaderHint(), "") : "";
            return new RpcException(re.code().code(), re.getMessage(), hint, re.leaderEpoch(), re.isNotApplied());
        }
        if (e instanceof LogException le && le.kind() == LogException.Kind.STORAGE_ERROR && !directory.isOnline()) {
            // The data directory failed: the controller moves this node's leaderships (the heartbeat says so), and
            // the write may be retried with the same producer id and sequence at the new leader.
            return new RpcException(ErrorCode.NOT_LEADER.code(), "node " + config.nodeId() + ": " + le.getMessage()
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

    @Override
    public void close() {
        closed = true;
        control.shutdownNow();
        fetchers.shutdownNow();
        server.close();
        owners.close();
        metrics.close();
        peers.close();
        meta.close();
        directory.close();
        index.close();
        LOG.info("Storage node {} stopped", config.nodeId());
    }
}
