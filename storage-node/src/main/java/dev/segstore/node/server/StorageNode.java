package dev.segstore.node.server;

import dev.segstore.protocol.NodeMethods;
import com.google.protobuf.Message;
import dev.segstore.client.MetaClient;
import dev.segstore.node.replica.Partition;
import dev.segstore.protocol.node.DeleteRequest;
import dev.segstore.protocol.node.EpochEndOffsetRequest;
import dev.segstore.protocol.node.FetchRequest;
import dev.segstore.protocol.node.ProduceRequest;
import dev.segstore.protocol.node.SegmentRef;
import dev.segstore.protocol.rpc.Frames;
import dev.segstore.protocol.rpc.RpcHandler;
import dev.segstore.protocol.rpc.RpcServer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.net.InetSocketAddress;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * A storage node: hosts segment replicas (one {@link Partition} over one segment log each) and serves the data
 * plane. Its parts, by the thread that runs them and the state each guards:
 * <ul>
 *   <li>the <b>control thread</b> ({@code node-control}): registration and heartbeats ({@link NodeSession}), whose
 *       answers the {@link AssignmentReconciler} applies (it owns the hosted-replica map and the metadata version),
 *       and the periodic ISR, roll and index ticks;</li>
 *   <li>the <b>RPC handlers</b> ({@link ReplicaRequests}, {@link FetchRequests}): each data-plane request runs on its
 *       shard's owner thread ({@link ShardOwners}) against the replica the map holds, which it only reads;</li>
 *   <li>the <b>replica fetchers</b> ({@link ReplicaFetchers}, two {@code node-fetcher} threads): one fetch loop
 *       per followed replica, never two, never none ({@link LoopGuard}).</li>
 * </ul>
 * A replica's own state is its {@link Partition}'s, under the partition's monitor.
 */
public final class StorageNode implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(StorageNode.class);
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
    /** How many replicas' producer states the last {@link #close} saved (tests). */
    private volatile int producerStatesSaved = -1;
    private final ReplicaFetchers fetchers;
    private final ReplicaRequests replicaRequests;
    private final FetchRequests fetchRequests;
    private final AssignmentReconciler reconciler;
    private final ShardOwners owners;
    private final NodeMetrics metrics;
    private volatile boolean closed;
    private final int boundPort;
    /**
     * Registration, heartbeats, the assignment watch and the controlled shutdown: made once the server is bound, in the
     * constructor; volatile because {@link #requestHeartbeat} may be called before that, from another thread.
     */
    private volatile NodeSession session;

    private static Thread daemon(Runnable r, String name) {
        Thread t = new Thread(r, name);
        t.setDaemon(true);
        return t;
    }

    /** The single control thread; once shut down, it runs no delayed or periodic task that is still waiting. */
    private static ScheduledExecutorService controlThread() {
        java.util.concurrent.ScheduledThreadPoolExecutor e = new java.util.concurrent.ScheduledThreadPoolExecutor(1, r -> daemon(r, "node-control"));
        e.setExecuteExistingDelayedTasksAfterShutdownPolicy(false);
        e.setContinueExistingPeriodicTasksAfterShutdownPolicy(false);
        return e;
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

    private StorageNode(NodeConfig config, PeerFaults faults, dev.segstore.log.io.LogFiles files, NodeClocks clocks) throws Exception {
        this.config = config;
        this.owners = new ShardOwners(config.ownerThreads(), "node-" + config.nodeId() + "-owner");
        this.directories = DataDirectories.open(config.dataDirs(), config.directory(), files, clocks.wallMs());
        String pageCacheId = directories.pageCacheIdAfterForcing();
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
        this.replicaRequests = new ReplicaRequests(config.nodeId(), hosted, nodeAddresses, replicaWaits, metrics, directories::allOnline,
                reconciler::isDeleted);
        this.fetchRequests = new FetchRequests(owners, metrics, replicaWaits, hosted, replicaRequests::hostedOrFail, replicaRequests::wire);
        this.server = new RpcServer(2, Frames.DEFAULT_MAX_FRAME_BYTES).tls(config.tls())
                .register(onOwner(NodeMethods.PRODUCE, ProduceRequest.parser(), ProduceRequest::getSegment, replicaRequests::produce))
                .register(onOwner(NodeMethods.FETCH, FetchRequest.parser(), FetchRequest::getSegment, fetchRequests::fetch))
                .register(RpcHandler.of(NodeMethods.FETCH_MANY, dev.segstore.protocol.node.FetchManyRequest.parser(),
                        r -> metrics.observe(NodeMethods.FETCH_MANY, false, fetchRequests.fetchMany(r))))
                .register(onOwner(NodeMethods.EPOCH_END_OFFSET, EpochEndOffsetRequest.parser(), EpochEndOffsetRequest::getSegment,
                        replicaRequests::epochEndOffset))
                .register(onOwner(NodeMethods.READ_BY_KEY, dev.segstore.protocol.node.IndexReadRequest.parser(),
                        dev.segstore.protocol.node.IndexReadRequest::getSegment, r -> replicaRequests.readIndexed(r, true)))
                .register(onOwner(NodeMethods.READ_BY_TAG, dev.segstore.protocol.node.IndexReadRequest.parser(),
                        dev.segstore.protocol.node.IndexReadRequest::getSegment, r -> replicaRequests.readIndexed(r, false)))
                .register(onOwner(NodeMethods.OFFSET_FOR_TIMESTAMP, dev.segstore.protocol.node.TimestampRequest.parser(),
                        dev.segstore.protocol.node.TimestampRequest::getSegment, replicaRequests::offsetForTimestamp))
                .register(onOwner(NodeMethods.DELETE, DeleteRequest.parser(), DeleteRequest::getSegment, replicaRequests::delete))
                .register(onOwner(NodeMethods.REPLICA_STATUS, dev.segstore.protocol.node.ReplicaStatusRequest.parser(),
                        dev.segstore.protocol.node.ReplicaStatusRequest::getSegment, replicaRequests::replicaStatus));
        InetSocketAddress bound = server.start(config.host(), config.port());
        this.boundPort = bound.getPort();
        this.session = new NodeSession(config, clocks.monotonicMs(), directories, meta, metaCalls, reconciler, hosted, control,
                () -> closed, pageCacheId, boundPort);
        // The first tick registers, and ticks go on registering until it succeeds: a node started while the
        // meta-service has no leader yet (a whole cluster started at once, a slow election) waits for it.
        control.scheduleWithFixedDelay(session::heartbeat, 0, config.heartbeatMs(), TimeUnit.MILLISECONDS);
        // One watch chain for the node's life: at any time one watch call is out, or one re-arm is scheduled.
        control.schedule(session::watchAssignments, config.heartbeatMs(), TimeUnit.MILLISECONDS);
        long tick = Math.max(10, config.replicaMaxLagMs() / 2);
        control.scheduleWithFixedDelay(this::isrTick, tick, tick, TimeUnit.MILLISECONDS);
        if (config.leaderUnreachableMs() > 0) {
            long check = Math.max(50, config.leaderUnreachableMs() / 8);
            control.scheduleWithFixedDelay(session::silentLeaderTick, check, check, TimeUnit.MILLISECONDS);
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
        return session.registered();
    }

    /** Failed registration attempts since the node started (each is retried on the next tick). */
    public int registrationFailures() {
        return session.registrationFailures();
    }

    /**
     * Asks for a heartbeat now, on the control thread ({@link NodeSession#requestHeartbeat}). The fetchers and the
     * reconciler are handed this before the session is made; they ask only for replicas, which are hosted once the
     * node registered. One asked before the session exists is not needed: the session's first heartbeat is scheduled
     * at once when it is made.
     */
    private void requestHeartbeat() {
        NodeSession s = session;
        if (s != null) {
            s.requestHeartbeat();
        }
    }

    /** Whether the node watches its assignments (false once the meta-service said it does not know the method). */
    boolean watchingAssignments() {
        return session.watchingAssignments();
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

    /** A roll's next segment, as a leader's fetch answer told of it (the reconciler checks it and takes it). */
    private void takeNextSegment(dev.segstore.protocol.meta.Segment segment, dev.segstore.protocol.meta.Shard shard, int fetchEpoch) {
        reconciler.hint(segment, shard, fetchEpoch);
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
        return session.shutdownGracefully();
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
        closed = true; // before the session reads its waits (NodeSession#endWaits)
        session.endWaits();
        control.shutdown(); // not shutdownNow: no interrupt (NodeSession#awaitMeta says why)
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
