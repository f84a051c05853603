package dev.segstore.node.server;

import dev.segstore.protocol.NodeMethods;
import com.google.protobuf.Message;
import dev.segstore.adapter.ErrorCode;
import dev.segstore.log.AppendResult;
import dev.segstore.log.LogException;
import dev.segstore.log.epoch.EpochEndOffset;
import dev.segstore.client.MetaClient;
import dev.segstore.node.replica.Partition;
import dev.segstore.node.replica.PartitionStatus;
import dev.segstore.node.replica.ReplicaException;
import dev.segstore.node.replica.Tombstones;
import dev.segstore.protocol.meta.NodeAssignments;
import dev.segstore.protocol.meta.Segment;
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
import java.nio.ByteBuffer;
import dev.segstore.protocol.rpc.RpcException;
import dev.segstore.protocol.rpc.RpcHandler;
import dev.segstore.protocol.rpc.RpcServer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.net.InetSocketAddress;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * A storage node: hosts segment replicas (one {@link Partition} over one segment log each) and serves the data
 * plane. Its parts, by the thread that runs them and the state each guards:
 * <ul>
 *   <li>the <b>control thread</b> ({@code node-control}): registration and heartbeats, whose answers the
 *       {@link AssignmentReconciler} applies (it owns the hosted-replica map and the metadata version), and the
 *       periodic ISR, roll and index ticks;</li>
 *   <li>the <b>RPC handlers</b> (this class): each data-plane request runs on its shard's owner thread
 *       ({@link ShardOwners}) against the replica the map holds, which it only reads;</li>
 *   <li>the <b>replica fetchers</b> ({@link ReplicaFetchers}, two {@code node-fetcher} threads): one fetch loop
 *       per followed replica, never two, never none ({@link LoopGuard}).</li>
 * </ul>
 * A replica's own state is its {@link Partition}'s, under the partition's monitor.
 */
public final class StorageNode implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(StorageNode.class);
    /** Longest a leader holds a caught-up fetch waiting for new data when the fetcher names no wait. */
    private static final long FETCH_WAIT_MS = 200;
    /** Longest a leader holds a caught-up follower fetch, whatever the fetcher asks. */
    private static final long MAX_FETCH_WAIT_MS = 4L * ReplicaFetchers.SEALED_FETCH_WAIT_MS;
    private final NodeConfig config;
    private final DataDirectories directories;
    private final dev.segstore.node.index.NodeIndex index;
    private final MetaClient meta;
    private final MetaCalls metaCalls;
    private final RpcServer server;
    private final Map<Hosted.Key, Hosted> hosted = new ConcurrentHashMap<>();
    private final Map<Integer, String> nodeAddresses = new ConcurrentHashMap<>();
    private final ScheduledExecutorService control = controlThread();
    /** Writes and fetches for a roll's next segment that come just before this node hosts it wait for it. */
    private final ReplicaWaits replicaWaits;
    /**
     * Takes a roll's next segment ahead of the heartbeat (AssignmentReconciler#takeNext), under the reconciler's
     * monitor as the control thread's answers are: not on the control thread, which a roll keeps waiting for the
     * answer of the heartbeat the roll woke (the hint came first, and waited behind it).
     */
    private final java.util.concurrent.ExecutorService rollThread =
            java.util.concurrent.Executors.newSingleThreadExecutor(r -> daemon(r, "node-roll"));
    /** The meta call the control thread waits for now, if any: {@link #close} ends the wait (see {@link #awaitMeta}). */
    private volatile CompletableFuture<?> controlWait;
    /** How many replicas' producer states the last {@link #close} saved (tests). */
    private volatile int producerStatesSaved = -1;
    private final ReplicaFetchers fetchers;
    private final FetchManyHandler fetchMany;
    private final AssignmentReconciler reconciler;
    private final ShardOwners owners;
    private final NodeMetrics metrics;
    private volatile long incarnation = -1;
    /** This process's random id: a retried registration of it is not taken for a restart. */
    private final long instanceId = java.util.concurrent.ThreadLocalRandom.current().nextLong(1, Long.MAX_VALUE);
    /**
     * The page cache this node's segment files were written through ({@code RegisterNodeRequest.page_cache_id}),
     * read at start once the newest segment of each log was forced; "" when unknown.
     */
    private final String pageCacheId;
    private volatile int registrationFailures; // written by the control thread only
    /** When a failed registration was last logged as a warning, and the failures since (control thread only). */
    private long registrationWarnedNanos;
    private int registrationFailuresUnlogged;
    private volatile boolean closed;
    /** Set by {@link #shutdownGracefully}: the node no longer registers again (a fence then is final for it). */
    private volatile boolean shuttingDown;
    /** Counted down by {@link #close}: ends a controlled shutdown's wait. */
    private final java.util.concurrent.CountDownLatch closing = new java.util.concurrent.CountDownLatch(1);
    /** A heartbeat asked for by {@link #requestHeartbeat} waits to run on the control thread. */
    private final java.util.concurrent.atomic.AtomicBoolean heartbeatRequested = new java.util.concurrent.atomic.AtomicBoolean();
    private final int boundPort;
    /**
     * How long the meta leader may hold this node's assignment watch ({@code meta.WatchAssignments}) when nothing
     * changes: a few seconds, so a watch stuck on a deposed meta leader is given up soon, heartbeats going on meanwhile.
     */
    static final long WATCH_WAIT_MS = 5_000;
    /** Set when the meta-service does not know {@code meta.WatchAssignments} (an older one): heartbeats only. */
    private volatile boolean watchUnsupported;

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

        /**
         * Asked before every call this node makes to the meta-service (registration, heartbeat, assignment watch,
         * ISR proposal, roll, controlled shutdown; {@code method} as {@link dev.segstore.protocol.MetaMethods} names it):
         * whether its request or its answer is lost ({@link MetaCalls}). Nothing is lost by default.
         */
        default MetaDrop metaDrop(int fromNode, String method) {
            return MetaDrop.NONE;
        }
    }

    /** What the fault seam does to one call of this node to the meta-service ({@link PeerFaults#metaDrop}). */
    public enum MetaDrop {
        NONE,
        /** The request never reaches the meta-service: the call fails UNAVAILABLE at once. */
        REQUEST,
        /** The meta-service gets and applies the request; its answer never comes back: the call fails TIMEOUT. */
        ANSWER
    }


    /** The replicas' monotonic clock: when heartbeats are sent ({@code read.lease.ms} counts from there). */
    private final java.util.function.LongSupplier monotonicMs;

    private StorageNode(NodeConfig config, PeerFaults faults, dev.segstore.log.io.LogFiles files, NodeClocks clocks) throws Exception {
        this.monotonicMs = clocks.monotonicMs();
        this.config = config;
        this.owners = new ShardOwners(config.ownerThreads(), "node-" + config.nodeId() + "-owner");
        this.fetchMany = fetchManyHandler();
        this.directories = DataDirectories.open(config.dataDirs(), config.directory(), files, clocks.wallMs());
        this.pageCacheId = directories.pageCacheIdAfterForcing();
        this.metrics = new NodeMetrics(config.host(), config.metricsPort(),
                () -> hosted.values().stream().map(h -> h.partition).toList(), directories);
        this.index = new dev.segstore.node.index.NodeIndex(config.dataDir().resolve("index"));
        this.meta = new MetaClient(config.metaAddresses(), 2_000, 10_000, config.tls(), config.outgoingHost());
        this.metaCalls = new MetaCalls(config.nodeId(), faults);
        this.fetchers = new ReplicaFetchers(config.nodeId(), config.replicaMaxLagMs(), config.outgoingHost(), nodeAddresses, owners, faults,
                (key, h) -> hosted.get(key) == h && !directories.onOfflineDirectory(key.logName()), this::requestHeartbeat, config.tls(),
                config.replicaFetchBatched(), this::takeNextSegment);
        this.replicaWaits = new ReplicaWaits(owners, hosted::containsKey, () -> System.nanoTime() / 1_000_000);
        this.reconciler = new AssignmentReconciler(config, directories, index, meta, metaCalls, hosted, nodeAddresses, fetchers,
                this::requestHeartbeat, name -> metrics.forgetShard(name), () -> closed, clocks.monotonicMs(), rollThread, replicaWaits);
        this.server = new RpcServer(2, Frames.DEFAULT_MAX_FRAME_BYTES).tls(config.tls())
                .register(onOwner(NodeMethods.PRODUCE, ProduceRequest.parser(), ProduceRequest::getSegment, this::produce))
                .register(onOwner(NodeMethods.FETCH, FetchRequest.parser(), FetchRequest::getSegment, this::fetch))
                .register(RpcHandler.of(NodeMethods.FETCH_MANY, dev.segstore.protocol.node.FetchManyRequest.parser(),
                        r -> metrics.observe(NodeMethods.FETCH_MANY, false, fetchMany.handle(r))))
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
        // One watch chain for the node's life: at any time one watch call is out, or one re-arm is scheduled.
        control.schedule(this::watchAssignments, config.heartbeatMs(), TimeUnit.MILLISECONDS);
        long tick = Math.max(10, config.replicaMaxLagMs() / 2);
        control.scheduleWithFixedDelay(this::isrTick, tick, tick, TimeUnit.MILLISECONDS);
        if (config.leaderUnreachableMs() > 0) {
            long check = Math.max(50, config.leaderUnreachableMs() / 8);
            control.scheduleWithFixedDelay(this::silentLeaderTick, check, check, TimeUnit.MILLISECONDS);
        }
        control.scheduleWithFixedDelay(this::indexTick, 200, 200, TimeUnit.MILLISECONDS);
        LOG.info("Storage node {} serving on {}:{} (registered as {}:{}), data in {}, page cache {}", config.nodeId(), config.host(), boundPort,
                config.registeredHost(), config.registeredPort(boundPort), config.dataDirs(), pageCacheId.isEmpty() ? "unknown" : pageCacheId);
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
        return start(config, faults, files, NodeClocks.SYSTEM);
    }

    /** As above, on the given clocks (tests: clocks they drive, a wall clock that jumps). */
    public static StorageNode start(NodeConfig config, PeerFaults faults, dev.segstore.log.io.LogFiles files, NodeClocks clocks)
            throws Exception {
        return new StorageNode(config, faults, files, clocks);
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

    /** Replica fetch calls this node has sent as a follower: node.Fetch (one segment each) and node.FetchMany (tests). */
    public long[] replicaFetchCalls() {
        ReplicaFetchers.CallCounts c = fetchers.callCounts();
        return new long[]{c.single(), c.many()};
    }

    /** Replicas whose log was made while their roll committed, and then taken by the committed segment (tests). */
    public long preparedLogsTaken() {
        return reconciler.logs().preparedTaken();
    }

    /** Of those, replicas of a next segment whose log was made while the segment before closed ahead (tests). */
    public long aheadLogsTaken() {
        return reconciler.logs().aheadTaken();
    }

    /** Of those, logs whose epoch checkpoint was written ahead too, taken to lead or follow (tests). */
    public long aheadLogsTakenWithEpoch() {
        return reconciler.logs().aheadWithEpochTaken();
    }

    /** Records the hosted replicas' key and tag indexes took as appended, not read back from their logs (tests). */
    long indexRecordsTaken() {
        return hosted.values().stream().mapToLong(h -> h.index.recordsTaken()).sum();
    }

    /** The partition hosted for a segment, if any (tests and admin). */
    public Partition partition(long shardId, long sequence) {
        Hosted h = hosted.get(new Hosted.Key(shardId, sequence));
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
            long sentAtMs = monotonicMs.getAsLong(); // the answer's ISR memberships hold from here (read.lease.ms)
            // The logs it holds: the controller marks every assigned replica it does not hold offline (a lost log, or
            // one on a directory that is offline) before it may lead or count in an ISR.
            List<dev.segstore.protocol.meta.SegmentId> held = segmentIds(directories.logNames());
            NodeAssignments a = awaitMeta(metaCalls.call(dev.segstore.protocol.MetaMethods.REGISTER_NODE,
                    () -> meta.registerNode(config.nodeId(), config.registeredHost(), config.registeredPort(boundPort), !directories.indexDirectoryOnline(),
                            instanceId, pageCacheId, held, config.readLeaseMs(), dev.segstore.protocol.FeatureLevels.MAX)), 30);
            incarnation = a.getNode().getIncarnation();
            LOG.info("Storage node {} registered, incarnation {}, {} segment(s) assigned", config.nodeId(), incarnation, a.getSegmentsCount());
            reconciler.applyRegistration(a, sentAtMs);
            registrationWarnedNanos = 0; // a later failure (a registration after a fence) is warned of at once
            registrationFailuresUnlogged = 0;
        } catch (Exception e) {
            registrationFailures++;
            Throwable cause = e.getCause() != null ? e.getCause() : e;
            long now = System.nanoTime();
            if (registrationWarnedNanos == 0 || now - registrationWarnedNanos >= TimeUnit.SECONDS.toNanos(10)) {
                // Tried again every tick; warned at the first failure and at most every 10 s after (a refused build
                // or a meta-service that is down would otherwise log twice a second).
                LOG.warn("Storage node {}: registration with the meta-service failed ({}){}; trying again", config.nodeId(), cause.toString(),
                        registrationFailuresUnlogged == 0 ? "" : " (and " + registrationFailuresUnlogged + " times since the last warning)");
                registrationWarnedNanos = now == 0 ? 1 : now;
                registrationFailuresUnlogged = 0;
            } else {
                registrationFailuresUnlogged++;
                LOG.debug("Storage node {}: registration failed again ({})", config.nodeId(), cause.toString());
            }
        }
    }

    /**
     * The open segments this node follows whose leader has answered none of its fetches for {@code leader.unreachable.ms}
     * (since it took that leader, in that epoch): reported in heartbeats (HeartbeatRequest.unreachable_leaders).
     */
    private List<dev.segstore.protocol.meta.UnreachableLeader> silentLeaders() {
        long limitNanos = TimeUnit.MILLISECONDS.toNanos(config.leaderUnreachableMs());
        if (limitNanos == 0) {
            return List.of();
        }
        long now = System.nanoTime();
        long sinceLast = lastSilenceCheckNanos == 0 ? 0 : now - lastSilenceCheckNanos; // the first check (at start) compares with none
        lastSilenceCheckNanos = now;
        if (sinceLast > Math.max(TimeUnit.SECONDS.toNanos(1), limitNanos / 2)) {
            // Checked every heartbeat and every tick: a check this late means this process did not run (paused, or
            // starved), and its leaders' silence is counted again from now. A node back from a pause must not report
            // leaders that answered all along.
            LOG.warn("Storage node {}: this process did not run for {} ms (paused?): counting its leaders' silence again from now",
                    config.nodeId(), TimeUnit.NANOSECONDS.toMillis(sinceLast));
            hosted.values().forEach(h -> h.leaderSinceNanos = now);
            return List.of();
        }
        List<dev.segstore.protocol.meta.UnreachableLeader> out = new java.util.ArrayList<>();
        hosted.forEach((k, h) -> {
            Segment a = h.assigned;
            long silentNanos = h.leaderSilentNanos(now);
            if (a == null || a.getStatus() != dev.segstore.protocol.meta.SegmentStatus.OPEN || a.getLeader() < 0 || a.getLeader() == config.nodeId()
                    || h.partition.role() != Partition.Role.FOLLOWER || silentNanos < limitNanos || directories.onOfflineDirectory(k.logName())) {
                return;
            }
            out.add(dev.segstore.protocol.meta.UnreachableLeader.newBuilder().setShard(a.getShard()).setShardId(a.getShardId())
                    .setSequence(a.getSequence()).setLeader(a.getLeader()).setLeaderEpoch(a.getLeaderEpoch())
                    .setSilentMs(TimeUnit.NANOSECONDS.toMillis(silentNanos)).build());
        });
        return out;
    }

    /** System.nanoTime() of the last {@link #silentLeaders} check (control thread), 0 before the first. */
    private long lastSilenceCheckNanos;

    /** Segments whose silent leader was reported already (control thread), so that a new one is reported at once. */
    private final java.util.Set<String> reportedSilent = new java.util.HashSet<>();

    /** Control thread, often: a leader newly found silent is reported now, not at the next heartbeat. */
    private void silentLeaderTick() {
        java.util.Set<String> now = new java.util.HashSet<>();
        for (dev.segstore.protocol.meta.UnreachableLeader u : silentLeaders()) {
            now.add(u.getShardId() + "-" + u.getSequence() + "@" + u.getLeaderEpoch());
        }
        boolean fresh = !reportedSilent.containsAll(now);
        if (fresh) {
            LOG.warn("Storage node {}: leaders silent for {} ms or more: {}; reporting them", config.nodeId(), config.leaderUnreachableMs(), now);
        }
        reportedSilent.clear();
        reportedSilent.addAll(now);
        if (fresh) {
            heartbeat();
        }
    }

    /** How many replicas on failed data directories the last heartbeat reported (control thread; logged when it changes). */
    private int reportedOffline;

    /** The segments of replica logs named {@code names} (names that are not a replica's, Key.logName, are left out). */
    private static List<dev.segstore.protocol.meta.SegmentId> segmentIds(List<String> names) {
        List<dev.segstore.protocol.meta.SegmentId> ids = new java.util.ArrayList<>();
        for (String name : names) {
            if (Hosted.Key.isLogName(name)) {
                Hosted.Key k = Hosted.Key.parse(name);
                ids.add(dev.segstore.protocol.meta.SegmentId.newBuilder().setShardId(k.shardId()).setSequence(k.sequence()).build());
            }
        }
        return ids;
    }

    /**
     * Asks for a heartbeat now, on the control thread, besides the periodic ones: after a roll (learn the next
     * segment), after dropping a replica (a delete waits for it), and when a leader this node follows says it no
     * longer leads (a leadership moved: this node may be the new leader). Requests made while one waits to run
     * are one heartbeat.
     */
    private void requestHeartbeat() {
        if (!heartbeatRequested.compareAndSet(false, true)) {
            return;
        }
        try {
            control.execute(() -> {
                heartbeatRequested.set(false);
                heartbeat();
            });
        } catch (java.util.concurrent.RejectedExecutionException stopped) {
            heartbeatRequested.set(false); // closed
        }
    }

    /** Control thread, every heartbeat interval: registers until registered, then heartbeats. */
    private void heartbeat() {
        if (closed) {
            return;
        }
        if (!registered()) {
            if (!shuttingDown) {
                register();
            }
            return;
        }
        try {
            // Failed data directories are reported with every heartbeat: the replicas on them leave their ISRs and
            // leaderships at once; when the first one (it holds the index) failed, the controller fences this node
            // (instead of after the session timeout).
            long current = incarnation;
            long sentAtMs = monotonicMs.getAsLong(); // the answer's ISR memberships hold from here (read.lease.ms)
            List<dev.segstore.protocol.meta.SegmentId> offline = segmentIds(directories.offlineLogs());
            List<dev.segstore.protocol.meta.UnreachableLeader> silent = silentLeaders();
            if (offline.size() != reportedOffline) {
                reportedOffline = offline.size();
                LOG.error("Storage node {}: {} replica(s) on failed data directories {} are reported offline: {}", config.nodeId(),
                        offline.size(), directories.all().stream().filter(d -> !d.isOnline()).map(d -> d.root() + " (" + d.failure() + ")").toList(),
                        directories.offlineLogs());
            }
            NodeAssignments a = awaitMeta(metaCalls.call(dev.segstore.protocol.MetaMethods.HEARTBEAT,
                    () -> meta.heartbeat(config.nodeId(), current, !directories.indexDirectoryOnline(), reconciler.appliedVersion(), offline,
                            silent, dev.segstore.protocol.FeatureLevels.MAX)), 10);
            reconciler.apply(a, sentAtMs);
        } catch (Exception e) {
            Throwable cause = e.getCause() != null ? e.getCause() : e;
            if (cause instanceof RpcException re && re.code() == ErrorCode.FENCED_EPOCH.code()) {
                incarnation = -1;
                if (shuttingDown) {
                    LOG.warn("Storage node {} was fenced while shutting down; not registering again", config.nodeId());
                    return;
                }
                LOG.warn("Storage node {} was fenced; registering again", config.nodeId());
                register();
            } else if (!closed) {
                LOG.warn("Heartbeat failed: {}", cause.toString());
            }
        }
    }

    /** The single control thread; once shut down, it runs no delayed or periodic task that is still waiting. */
    private static ScheduledExecutorService controlThread() {
        java.util.concurrent.ScheduledThreadPoolExecutor e = new java.util.concurrent.ScheduledThreadPoolExecutor(1, r -> daemon(r, "node-control"));
        e.setExecuteExistingDelayedTasksAfterShutdownPolicy(false);
        e.setContinueExistingPeriodicTasksAfterShutdownPolicy(false);
        return e;
    }

    /**
     * Waits, on the control thread, up to {@code timeoutSeconds} for a meta call's answer. {@link #close} ends the
     * wait at once (CLOSED) by failing the answer, not by interrupting the thread: the control thread also reads and
     * writes log files (indexing, opening replicas), and an interrupt closes a FileChannel under the I/O it is doing
     * (ClosedByInterruptException), which took the whole data directory offline at a clean stop, so its logs were
     * not closed cleanly and no producer state was saved.
     */
    private <T> T awaitMeta(CompletableFuture<T> answer, long timeoutSeconds) throws Exception {
        controlWait = answer;
        try {
            if (closed) {
                answer.completeExceptionally(new RpcException(ErrorCode.CLOSED.code(), "storage node " + config.nodeId() + " is closing"));
            }
            return answer.get(timeoutSeconds, TimeUnit.SECONDS);
        } finally {
            controlWait = null;
        }
    }

    // ---- assignment watch (meta.WatchAssignments) ---------------------------------------------------------

    /**
     * Keeps one long poll open at the meta leader, answered as soon as a command that may change this node's
     * assignments (a roll placing a new segment here, a leadership moved to it, a fence) is applied: then the node
     * heartbeats at once, on the control thread, instead of at its next period. The watch carries no assignments;
     * only the heartbeat's answer is applied, through the reconciler's checks (versions, the read lease counted from
     * the heartbeat's send time), so a lost or spurious watch answer only moves a heartbeat. Goes through the fault
     * seam as every meta call. A meta-service without the method (an older one) answers "unknown method": the node
     * then stops watching and learns at heartbeats, as before.
     */
    private void watchAssignments() {
        if (closed || watchUnsupported) {
            return;
        }
        long current = incarnation;
        if (current < 0) {
            watchLater(); // not registered (yet, or fenced): heartbeats register it
            return;
        }
        long applied = reconciler.appliedVersion();
        long sentAt = System.nanoTime();
        CompletableFuture<dev.segstore.protocol.meta.WatchAssignmentsResponse> answer;
        try {
            answer = metaCalls.call(dev.segstore.protocol.MetaMethods.WATCH_ASSIGNMENTS,
                    () -> meta.watchAssignments(config.nodeId(), current, applied, WATCH_WAIT_MS));
        } catch (RuntimeException e) {
            LOG.debug("Storage node {}: assignment watch not sent: {}", config.nodeId(), e.toString());
            watchLater();
            return;
        }
        answer.whenComplete((r, e) -> onWatchAnswer(r, e, applied, sentAt));
    }

    private void onWatchAnswer(dev.segstore.protocol.meta.WatchAssignmentsResponse r, Throwable e, long applied, long sentAtNanos) {
        if (closed) {
            return;
        }
        if (e != null) {
            Throwable cause = unwrapped(e);
            if (cause instanceof RpcException re && re.code() == ErrorCode.INVALID_ARGUMENT.code()
                    && re.getMessage() != null && re.getMessage().contains("unknown method")) {
                watchUnsupported = true;
                LOG.info("Storage node {}: the meta-service does not know {}; learning assignments at heartbeats only",
                        config.nodeId(), dev.segstore.protocol.MetaMethods.WATCH_ASSIGNMENTS);
                return;
            }
            if (cause instanceof RpcException re && re.code() == ErrorCode.CLOSED.code()) {
                return;
            }
            LOG.debug("Storage node {}: assignment watch failed ({}); watching again in {} ms", config.nodeId(), cause.toString(),
                    config.heartbeatMs());
            watchLater();
            return;
        }
        r.getUpcomingList().forEach(reconciler::prepareLater);
        if (r.getLeaseWaitsCount() > 0) {
            try {
                control.execute(() -> reconciler.leaseWaits(r.getLeaseWaitsList()));
            } catch (java.util.concurrent.RejectedExecutionException stopped) {
                return;
            }
        }
        if (r.getChanged()) {
            LOG.debug("Storage node {}: assignments changed (metadata version {}); heartbeating now", config.nodeId(), r.getMetadataVersion());
            try {
                control.execute(() -> {
                    heartbeat();
                    if (reconciler.appliedVersion() > applied) {
                        watchAssignments();
                    } else {
                        watchLater(); // the heartbeat failed or was not newer: do not spin on the same answer
                    }
                });
            } catch (java.util.concurrent.RejectedExecutionException stopped) {
                // closed
            }
        } else if (r.getUpcomingCount() > 0 || r.getLeaseWaitsCount() > 0) {
            watchAssignments(); // told of a roll being committed, or of a lease wait's end: watching again at once
        } else if (System.nanoTime() - sentAtNanos < TimeUnit.MILLISECONDS.toNanos(WATCH_WAIT_MS / 2)) {
            watchLater(); // nothing new, early: replaced by another watch of this node id, or a leader closing
        } else {
            watchAssignments();
        }
    }

    /** Whether the node watches its assignments (false once the meta-service said it does not know the method). */
    boolean watchingAssignments() {
        return !watchUnsupported;
    }

    /** The next watch, a heartbeat period from now. */
    private void watchLater() {
        try {
            control.schedule(this::watchAssignments, config.heartbeatMs(), TimeUnit.MILLISECONDS);
        } catch (java.util.concurrent.RejectedExecutionException stopped) {
            // closed
        }
    }

    // ---- key and tag index ---------------------------------------------------------------------------------

    private void indexTick() {
        long now = System.nanoTime();
        hosted.forEach((k, h) -> {
            if (directories.onOfflineDirectory(k.logName())) {
                return; // its directory failed: nothing to index from it (the replica is reported offline)
            }
            try {
                h.index.catchUpIfDue(now);
            } catch (RuntimeException e) {
                LOG.warn("Indexing {} failed: {}", k.logName(), e.toString());
            }
        });
    }

    private CompletableFuture<Message> readIndexed(dev.segstore.protocol.node.IndexReadRequest r, boolean byKey) {
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

    private CompletableFuture<Message> offsetForTimestamp(dev.segstore.protocol.node.TimestampRequest r) {
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

    // ---- data plane ----------------------------------------------------------------------------------------

    private Hosted hostedOrFail(SegmentRef ref) {
        if (reconciler.isDeleted(ref.getShardId())) {
            // Told by the meta-service that this shard id is deleted (ids are never reused): final for this id; the
            // client reads the shard's route again, which names the new shard if the name was created again.
            throw new RpcException(ErrorCode.SHARD_NOT_FOUND.code(), "node " + config.nodeId() + ": shard id " + ref.getShardId()
                    + " is deleted", "", true);
        }
        Hosted h = hosted.get(Hosted.Key.of(ref));
        if (h == null) {
            throw new RpcException(ErrorCode.NOT_LEADER.code(), "node " + config.nodeId() + " hosts no replica of segment "
                    + ref.getShardId() + "/" + ref.getSequence(), "", -1, true, true); // rolling: may be a segment not learnt yet
        }
        return h;
    }

    private CompletableFuture<Message> produce(ProduceRequest r) {
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

    /** A roll's next segment, as a leader's fetch answer told of it (the reconciler checks it and takes it). */
    private void takeNextSegment(dev.segstore.protocol.meta.Segment segment, dev.segstore.protocol.meta.Shard shard, int fetchEpoch) {
        reconciler.hint(segment, shard, fetchEpoch);
    }

    /** The shard name of a hosted replica, for per-shard metrics. */
    private static String shardName(Hosted h) {
        dev.segstore.protocol.meta.Segment assigned = h.assigned;
        return assigned == null ? "" : assigned.getShard();
    }

    private CompletableFuture<?> fetch(FetchRequest r) {
        CompletableFuture<?> waited = replicaWaits.waitFor(Hosted.Key.of(r.getSegment()), () -> fetch(r));
        if (waited != null) {
            return waited; // a roll's next segment, about to be hosted here
        }
        try {
            Hosted h = hostedOrFail(r.getSegment());
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
                                throw wire(e);
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
            metrics.fetched(shardName(h), false, c.slice().length());
            return CompletableFuture.completedFuture(new Reply(response, attachment(c.slice())));
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(wire(e));
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
                return followerSlice(hostedOrFail(r.getSegment()), r, maxBytes, heldAgain);
            }

            @Override
            public CompletableFuture<Void> news(FetchRequest r) {
                return followerNews(hostedOrFail(r.getSegment()), r);
            }

            @Override
            public Reply reply(FetchRequest r, Partition.FollowerFetch f) {
                return followerResponse(hosted.get(Hosted.Key.of(r.getSegment())), r, f);
            }
        }, owners, this::wire, FETCH_WAIT_MS, MAX_FETCH_WAIT_MS);
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

    private CompletableFuture<Message> delete(DeleteRequest r) {
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

    /** The failure a CompletionException wraps, or {@code t}. */
    private static Throwable unwrapped(Throwable t) {
        return t instanceof CompletionException && t.getCause() != null ? t.getCause() : t;
    }

    /** Maps replica and log errors to wire errors, with the leader's address as the hint. */
    private RpcException wire(Throwable t) {
        Throwable e = unwrapped(t);
        if (e instanceof RpcException re) {
            return re;
        }
        if (e instanceof ReplicaException re) {
            String hint = re.leaderHint() >= 0 ? nodeAddresses.getOrDefault(re.leaderHint(), "") : "";
            return new RpcException(re.code().code(), re.getMessage(), hint, re.leaderEpoch(), re.isNotApplied(), re.isRolling());
        }
        if (e instanceof LogException le && le.kind() == LogException.Kind.STORAGE_ERROR && !directories.allOnline()) {
            // A data directory failed: the controller moves the leaderships of its replicas (the heartbeat says so),
            // and the write may be retried with the same producer id and sequence at the new leader.
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

    /**
     * Controlled shutdown, before {@link #close} (the launcher's SIGTERM hook calls both): asks the meta-service to
     * move every leadership this node holds to another in-sync replica and to take the node out of the ISRs
     * ({@code meta.ControlledShutdown}), applies the answer at once (the node steps down; writes waiting on it fail
     * NOT_LEADER and the client retries them at the new leader), and returns once its assignments show it leads
     * nothing. A segment with no other live in-sync replica stays with it; for those it asks again every heartbeat
     * period (a follower may have caught up and rejoined the ISR since), for at most
     * {@code controlled.shutdown.timeout.ms}; then it gives up and they move after its session expires, as when a
     * node crashes. Meanwhile the node goes on heartbeating and serving: as a follower it keeps fetching, so the ISRs
     * of the new leaders do not wait for it before they learn it left them. It does not register again if fenced.
     *
     * @return whether the node leads nothing (false also when the timeout is 0, or the node is not registered)
     */
    public boolean shutdownGracefully() {
        long timeoutMs = config.controlledShutdownTimeoutMs();
        if (closed || timeoutMs <= 0 || !registered()) {
            return false;
        }
        shuttingDown = true;
        // Before asking: the successors the hand-over elects do not wait for this node's read leases.
        reconciler.stopLeaderReads();
        long start = System.nanoTime();
        long deadline = start + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
        long led = -1;
        try {
            while (true) {
                long current = incarnation;
                if (current < 0) {
                    LOG.warn("Storage node {} was fenced while shutting down: its leaderships moved with the fence", config.nodeId());
                    return false;
                }
                try {
                    long sentAtMs = monotonicMs.getAsLong();
                    NodeAssignments a = metaCalls.call(dev.segstore.protocol.MetaMethods.CONTROLLED_SHUTDOWN,
                            () -> meta.controlledShutdown(config.nodeId(), current)).get(remaining(deadline), TimeUnit.NANOSECONDS);
                    control.submit(() -> reconciler.apply(a, sentAtMs)).get(remaining(deadline), TimeUnit.NANOSECONDS);
                    led = a.getSegmentsList().stream().filter(x -> x.getLeader() == config.nodeId()).count();
                    if (led == 0) {
                        LOG.info("Storage node {} handed over its leaderships in {} ms; stopping", config.nodeId(),
                                (System.nanoTime() - start) / 1_000_000);
                        return true;
                    }
                    LOG.info("Storage node {} still leads {} segment(s) that have no other live in-sync replica; asking again",
                            config.nodeId(), led);
                } catch (java.util.concurrent.ExecutionException e) {
                    Throwable cause = e.getCause();
                    if (cause instanceof RpcException re && re.code() == ErrorCode.FENCED_EPOCH.code()) {
                        LOG.warn("Storage node {}: {}; stopping", config.nodeId(), re.getMessage());
                        return false;
                    }
                    LOG.warn("Storage node {}: controlled shutdown request failed ({}); trying again", config.nodeId(), cause.toString());
                }
                if (closing.await(Math.min(config.heartbeatMs(), remaining(deadline) / 1_000_000), TimeUnit.MILLISECONDS)) {
                    return false;
                }
                if (remaining(deadline) <= 0) {
                    break;
                }
            }
        } catch (java.util.concurrent.TimeoutException e) {
            // the deadline passed while waiting for an answer
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        } catch (java.util.concurrent.RejectedExecutionException e) {
            return false; // closed meanwhile
        }
        LOG.warn("Storage node {}: controlled shutdown gave up after {} ms ({} segment(s) still led: they move once its session expires)",
                config.nodeId(), timeoutMs, led < 0 ? "unknown" : led);
        return false;
    }

    private static long remaining(long deadlineNanos) {
        return Math.max(0, deadlineNanos - System.nanoTime());
    }

    /**
     * Keeps each replica's producer state in the index (clean stops only), so that after a restart a leader
     * recognises retries of batches from before it without reading its log back (a read of the whole log, seconds
     * on a large one, for the first retry of a batch it does not know). The states are taken once no more appends
     * come (owners closed); each log is then closed (flushed and forced), and a state is saved only if its log
     * closed cleanly at the end the state names: a state never describes bytes that did not reach the disk.
     */
    private void saveProducerStates() {
        Map<Hosted.Key, byte[]> states = new java.util.HashMap<>();
        Map<Hosted.Key, java.util.concurrent.CompletableFuture<Void>> closing = new java.util.HashMap<>();
        hosted.forEach((key, h) -> {
            byte[] state = h.partition.producerSnapshot();
            if (state != null) {
                states.put(key, state);
                closing.put(key, h.partition.log().closeAsync());
            }
        });
        int saved = 0;
        for (Map.Entry<Hosted.Key, byte[]> e : states.entrySet()) {
            Hosted.Key key = e.getKey();
            try {
                closing.get(key).join();
                index.saveProducerState(key.shardId(), key.sequence(), e.getValue());
                saved++;
            } catch (org.rocksdb.RocksDBException | RuntimeException ex) {
                LOG.warn("Storage node {}: the producer state of {} is not saved: {}", config.nodeId(), key.logName(), ex.toString());
            }
        }
        producerStatesSaved = saved;
        LOG.info("Storage node {}: saved the producer state of {} of {} replicas", config.nodeId(), saved, hosted.size());
    }

    /** How many replicas' producer states the last close saved, or -1 before any (tests). */
    int producerStatesSaved() {
        return producerStatesSaved;
    }

    /**
     * Stops as a killed process would, as far as this node's own state goes: as {@link #close()}, without saving the
     * replicas' producer state (test harnesses that crash a node and then rewrite its files as the crash left them).
     */
    public void closeAbruptly() {
        saveStatesAtClose = false;
        close();
    }

    private volatile boolean saveStatesAtClose = true;

    @Override
    public void close() {
        closed = true;
        closing.countDown();
        CompletableFuture<?> waiting = controlWait;
        if (waiting != null) {
            waiting.completeExceptionally(new RpcException(ErrorCode.CLOSED.code(), "storage node " + config.nodeId() + " is closing"));
        }
        control.shutdown(); // not shutdownNow: no interrupt (awaitMeta says why)
        try {
            // A heartbeat applying assignments may be using the index and the logs: let it end (its meta call is
            // failed above) before they close under it (a RocksDB call after close crashes the JVM).
            if (!control.awaitTermination(10, TimeUnit.SECONDS)) {
                LOG.warn("Storage node {}: the control thread did not stop within 10 s; closing anyway", config.nodeId());
            }
            rollThread.shutdown(); // the same for a next segment being opened
            if (!rollThread.awaitTermination(10, TimeUnit.SECONDS)) {
                LOG.warn("Storage node {}: the roll thread did not stop within 10 s; closing anyway", config.nodeId());
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        replicaWaits.close(); // nothing is hosted any more: requests waiting for a replica are answered now
        fetchers.close();
        server.close();
        owners.close();
        if (saveStatesAtClose) {
            saveProducerStates();
        }
        metrics.close();
        meta.close();
        directories.close();
        index.close();
        LOG.info("Storage node {} stopped", config.nodeId());
    }
}
