package dev.segstore.node.server;

import dev.segstore.meta.server.MetaConfig;
import dev.segstore.meta.server.MetaPeer;
import dev.segstore.meta.server.MetaServer;

import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.function.BooleanSupplier;
import java.util.function.IntFunction;
import java.util.stream.Stream;

/**
 * A whole cluster in this JVM on loopback: 3 meta-service nodes (a Raft group) and 3 storage nodes (ids 1..3,
 * 1 s replica lag limit, 200 ms heartbeats unless {@link Timings} say otherwise), all with metrics on a free port, with real RPC between all of them. Each storage node's calls to
 * its peers pass its {@link StorageNode.PeerFaults}, so tests can drop or delay them. Shared with
 * integration-tests through this module's test-jar.
 */
public final class InJvmCluster implements AutoCloseable {
    public final Path root;
    public final List<MetaServer> metas = new ArrayList<>();
    public final StorageNode[] nodes = new StorageNode[6]; // index = node id: 1..3 started, 4 and 5 if a test starts them
    public final List<String> metaAddresses;
    private final IntFunction<StorageNode.PeerFaults> faults;
    private final IntFunction<dev.segstore.log.io.LogFiles> files;
    private final dev.segstore.protocol.rpc.TlsConfig tls;
    private final Timings timings;
    /** Indexes into {@link #metas} of meta nodes stopped by {@link #stopMeta} and not started again. */
    private final java.util.Set<Integer> stoppedMetas = java.util.concurrent.ConcurrentHashMap.newKeySet();

    /**
     * The cluster's timeouts: the meta-service's Raft election timeout and storage-node session timeout, the
     * storage nodes' heartbeat period and replica lag limit. Fault runs shorten them so that a failover takes
     * a fraction of a second.
     */
    /** @param readLeaseMs the storage nodes' {@code read.lease.ms} (five heartbeats unless given) */
    public record Timings(int electionTimeoutMs, long sessionTimeoutMs, long heartbeatMs, long replicaMaxLagMs, long readLeaseMs) {
        public static final Timings DEFAULT = new Timings(600, 2_000, 200, 1_000);

        public Timings(int electionTimeoutMs, long sessionTimeoutMs, long heartbeatMs, long replicaMaxLagMs) {
            this(electionTimeoutMs, sessionTimeoutMs, heartbeatMs, replicaMaxLagMs, 5 * heartbeatMs);
        }
    }

    public InJvmCluster() throws Exception {
        this(id -> StorageNode.PeerFaults.NONE);
    }

    /** @param faults the fault rules of each storage node's calls to its peers, by node id */
    public InJvmCluster(IntFunction<StorageNode.PeerFaults> faults) throws Exception {
        this(faults, id -> dev.segstore.log.io.RealLogFiles.INSTANCE);
    }

    /**
     * @param faults the fault rules of each storage node's calls to its peers, by node id
     * @param files  the file layer each storage node's segment logs live on, by node id (disk faults)
     */
    public InJvmCluster(IntFunction<StorageNode.PeerFaults> faults, IntFunction<dev.segstore.log.io.LogFiles> files) throws Exception {
        this(faults, files, MetaConfig.DEFAULT_REPLICA_REASSIGN_AFTER_MS);
    }

    /** @param replicaReassignAfterMs the meta-service's {@code replica.reassign.after.ms} */
    public InJvmCluster(IntFunction<StorageNode.PeerFaults> faults, IntFunction<dev.segstore.log.io.LogFiles> files,
                        long replicaReassignAfterMs) throws Exception {
        this(faults, files, replicaReassignAfterMs, Timings.DEFAULT);
    }

    /** @param timings the cluster's timeouts ({@link Timings#DEFAULT}: those of the constructors above) */
    public InJvmCluster(IntFunction<StorageNode.PeerFaults> faults, IntFunction<dev.segstore.log.io.LogFiles> files,
                        long replicaReassignAfterMs, Timings timings) throws Exception {
        this(faults, files, replicaReassignAfterMs, timings, null, BATCHED_FETCHES);
    }

    /**
     * The storage nodes' {@code replica.fetch.batched} in the clusters of the public constructors: the system property
     * {@code segstore.replica.fetch.batched} (true, the nodes' default, unless set to false; a fault campaign runs with
     * one call per segment by {@code scripts/fault-campaign.sh N "" -Dsegstore.replica.fetch.batched=false}).
     */
    static final boolean BATCHED_FETCHES = !"false".equals(System.getProperty("segstore.replica.fetch.batched"));

    /**
     * The storage nodes' {@code segment.close.ahead} (docs/architecture.md, "Close ahead"): the system property
     * {@code segstore.segment.close.ahead} (true, the nodes' default, unless set to false), or as a test sets it ({@link #withCloseAhead}). The
     * clusters of processes (integration-tests: ProcessCluster, ProcCluster) write it into their nodes' files too.
     */
    public static final boolean CLOSE_AHEAD = !"false".equals(System.getProperty("segstore.segment.close.ahead"));
    private final boolean closeAhead;

    /** A cluster whose storage nodes fetch as followers in batches per leader node ({@code replica.fetch.batched=true}). */
    public static InJvmCluster withBatchedFetches(IntFunction<StorageNode.PeerFaults> faults) throws Exception {
        return new InJvmCluster(faults, id -> dev.segstore.log.io.RealLogFiles.INSTANCE, MetaConfig.DEFAULT_REPLICA_REASSIGN_AFTER_MS,
                Timings.DEFAULT, null, true);
    }

    /** A cluster with these faults and timings, its follower fetches batched per leader node or not. */
    public static InJvmCluster withTimings(IntFunction<StorageNode.PeerFaults> faults, Timings timings, boolean batchedFetches) throws Exception {
        return new InJvmCluster(faults, id -> dev.segstore.log.io.RealLogFiles.INSTANCE, MetaConfig.DEFAULT_REPLICA_REASSIGN_AFTER_MS,
                timings, null, batchedFetches);
    }

    /** As {@link #withTimings(IntFunction, Timings, boolean)}, its storage nodes closing segments ahead or not. */
    public static InJvmCluster withTimings(IntFunction<StorageNode.PeerFaults> faults, Timings timings, boolean batchedFetches,
                                           boolean closeAhead) throws Exception {
        return new InJvmCluster(faults, id -> dev.segstore.log.io.RealLogFiles.INSTANCE, MetaConfig.DEFAULT_REPLICA_REASSIGN_AFTER_MS,
                timings, null, batchedFetches, closeAhead);
    }

    /** A cluster whose meta and storage nodes all serve and call with TLS {@code tls} (one identity for all). */
    public static InJvmCluster withTls(dev.segstore.protocol.rpc.TlsConfig tls) throws Exception {
        return new InJvmCluster(id -> StorageNode.PeerFaults.NONE, id -> dev.segstore.log.io.RealLogFiles.INSTANCE,
                MetaConfig.DEFAULT_REPLICA_REASSIGN_AFTER_MS, Timings.DEFAULT, tls, BATCHED_FETCHES);
    }

    /** A cluster with these faults and timings, its storage nodes closing segments ahead ({@code segment.close.ahead}) or not. */
    public static InJvmCluster withCloseAhead(IntFunction<StorageNode.PeerFaults> faults, Timings timings, boolean closeAhead) throws Exception {
        return new InJvmCluster(faults, id -> dev.segstore.log.io.RealLogFiles.INSTANCE, MetaConfig.DEFAULT_REPLICA_REASSIGN_AFTER_MS,
                timings, null, BATCHED_FETCHES, closeAhead);
    }

    private InJvmCluster(IntFunction<StorageNode.PeerFaults> faults, IntFunction<dev.segstore.log.io.LogFiles> files,
                         long replicaReassignAfterMs, Timings timings, dev.segstore.protocol.rpc.TlsConfig tls, boolean batchedFetches)
            throws Exception {
        this(faults, files, replicaReassignAfterMs, timings, tls, batchedFetches, CLOSE_AHEAD);
    }

    private InJvmCluster(IntFunction<StorageNode.PeerFaults> faults, IntFunction<dev.segstore.log.io.LogFiles> files,
                         long replicaReassignAfterMs, Timings timings, dev.segstore.protocol.rpc.TlsConfig tls, boolean batchedFetches,
                         boolean closeAhead) throws Exception {
        this.batchedFetches = batchedFetches;
        this.closeAhead = closeAhead;
        if (!closeAhead) {
            System.out.println("InJvmCluster: storage nodes with segment.close.ahead=false");
        }
        if (!batchedFetches) {
            System.out.println("InJvmCluster: storage nodes with replica.fetch.batched=false");
        }
        this.faults = faults;
        this.files = files;
        this.timings = timings;
        this.tls = tls;
        root = Files.createTempDirectory("segstore-cluster-");
        List<MetaPeer> peers = new ArrayList<>();
        // A port found free can be taken by another socket before we bind it: pick new ports and try again.
        for (int attempt = 1; metas.isEmpty(); attempt++) {
            peers.clear();
            for (int i = 0; i < 3; i++) {
                peers.add(new MetaPeer("127.0.0.1", freePort(), freePort()));
            }
            try {
                for (int i = 0; i < 3; i++) {
                    metas.add(MetaServer.start(new MetaConfig(peers.get(i), peers, root.resolve("a" + attempt + "-meta-" + i),
                            timings.electionTimeoutMs(), 300, timings.sessionTimeoutMs(), 0,
                            replicaReassignAfterMs, tls)));
                }
            } catch (Exception e) {
                metas.forEach(MetaServer::close);
                metas.clear();
                if (attempt == 3) {
                    throw e;
                }
            }
        }
        metas.forEach(m -> m.probeStorageNodesWith(this::probe));
        metaAddresses = peers.stream().map(MetaPeer::rpcAddress).toList();
        waitFor("a meta leader", 30_000, () -> metas.stream().anyMatch(MetaServer::isLeader));
        for (int id = 1; id <= 3; id++) {
            startNode(id);
        }
    }

    /** Starts storage node {@code id} (again) on its data directory; port 0: it binds a free port and registers it. */
    public StorageNode startNode(int id) throws Exception {
        return startNode(id, true);
    }

    /**
     * As {@link #startNode(int)}; {@code awaitRegistration} false returns once the node serves, without waiting
     * for its registration (a fault test whose node cannot reach the meta-service yet).
     */
    public StorageNode startNode(int id, boolean awaitRegistration) throws Exception {
        return startNode(id, awaitRegistration, 1);
    }

    /** The {@code index.queue.max.bytes} of the storage nodes started from now on, by node id. */
    public volatile java.util.function.IntToLongFunction indexQueueMaxBytes = id -> NodeConfig.DEFAULT_INDEX_QUEUE_MAX_BYTES;

    /** Data directory {@code k} (0-based) of storage node {@code id}: the first is {@code node-<id>}. */
    public Path dataDir(int id, int k) {
        return k == 0 ? root.resolve("node-" + id) : root.resolve("node-" + id + "-dir" + k);
    }

    /** As above, with {@code dataDirs} data directories ({@link #dataDir}; the first one is the one of one-directory starts). */
    public StorageNode startNode(int id, boolean awaitRegistration, int dataDirs) throws Exception {
        List<Path> dirs = new ArrayList<>();
        for (int k = 0; k < dataDirs; k++) {
            dirs.add(dataDir(id, k));
        }
        // The lease in the first configuration built: one of a heartbeat longer than the default lease is refused.
        nodes[id] = StorageNode.start(new NodeConfig(id, "127.0.0.1", 0, dirs.get(0), metaAddresses,
                timings.heartbeatMs(), timings.replicaMaxLagMs(),
                dev.segstore.log.DirectoryConfig.DEFAULT, dev.segstore.log.LogConfig.DEFAULT, NodeConfig.DEFAULT_OWNER_THREADS, 0,
                NodeConfig.DEFAULT_CONTROLLED_SHUTDOWN_TIMEOUT_MS, null, -1, false, tls, timings.readLeaseMs(), dirs.subList(1, dirs.size()))
                        .withReplicaFetchBatched(batchedFetches).withSegmentCloseAhead(closeAhead).withIndexQueueMaxBytes(indexQueueMaxBytes.applyAsLong(id)),
                faults.apply(id), files.apply(id));
        StorageNode started = nodes[id];
        machinesDown.remove(started.port());
        if (awaitRegistration) {
            waitFor("storage node " + id + " to register", 30_000, started::registered);
        }
        return started;
    }

    /** The storage nodes' {@code replica.fetch.batched}. */
    private final boolean batchedFetches;

    /** Ports of storage nodes whose machine is down ({@link #machineDown}). */
    private final java.util.Set<Integer> machinesDown = java.util.concurrent.ConcurrentHashMap.newKeySet();

    /**
     * Storage node {@code id} is on a machine that goes down (a crash, power lost): from now until a node starts
     * on its port again, the controllers' probe of that port times out, as for a host that is gone, instead of
     * being refused as for a dead process on a live host. Call before stopping the node.
     */
    public void machineDown(int id) {
        machinesDown.add(nodes[id].port());
    }

    /** The controllers' probe of a storage node's port (Controller.connectionClosed): a machine down times out. */
    private void probe(String host, int port, int timeoutMs) throws java.io.IOException {
        if (machinesDown.contains(port)) {
            throw new java.net.SocketTimeoutException("connect timed out (test: the machine of port " + port + " is down)");
        }
        dev.segstore.meta.server.Controller.CONNECT.connect(host, port, timeoutMs);
    }

    /** Stops storage node {@code id} (its data stays). */
    public void stopNode(int id) {
        nodes[id].close();
        nodes[id] = null;
    }

    /** Stops storage node {@code id} as a killed process: nothing saved for its next start ({@link StorageNode#closeAbruptly}). */
    public void stopNodeAbruptly(int id) {
        nodes[id].closeAbruptly();
        nodes[id] = null;
    }

    /** Stops storage node {@code id} as its SIGTERM hook does: a controlled shutdown, then close (its data stays). */
    public void stopNodeGracefully(int id) {
        nodes[id].shutdownGracefully();
        stopNode(id);
    }

    /** Closes meta node {@code index} (of {@link #metas}; its Raft data stays) until {@link #startMeta}. */
    public void stopMeta(int index) {
        if (stoppedMetas.add(index)) {
            metas.get(index).close();
        }
    }

    /** Starts meta node {@code index} again, stopped by {@link #stopMeta}, on its ports and data directory. */
    public MetaServer startMeta(int index) throws Exception {
        MetaServer started = MetaServer.start(metas.get(index).config());
        started.probeStorageNodesWith(this::probe);
        metas.set(index, started);
        stoppedMetas.remove(index);
        return started;
    }

    /** Whether meta node {@code index} is running (not stopped by {@link #stopMeta}). */
    public boolean metaRunning(int index) {
        return !stoppedMetas.contains(index);
    }

    /** "127.0.0.1:port" of a running storage node. */
    public String address(int id) {
        return "127.0.0.1:" + nodes[id].port();
    }

    /**
     * The value of a sample on storage node {@code id}'s Prometheus endpoint: {@code sample} is the metric name
     * with its labels as the text format prints them (for example {@code m_total{method="x",result="ok"}}).
     * NaN when the endpoint does not show it.
     */
    public double metric(int id, String sample) throws IOException, InterruptedException {
        return scrape(nodes[id].metricsPort(), sample);
    }

    /** As {@link #metric}, on the meta-service leader's endpoint (NaN while there is no leader). */
    public double metaLeaderMetric(String sample) throws IOException, InterruptedException {
        for (MetaServer m : metas) {
            if (m.isLeader()) {
                return scrape(m.metricsPort(), sample);
            }
        }
        return Double.NaN;
    }

    /** As {@link #metric}, summed over every running meta node (a sample a node does not have counts 0). */
    public double metaMetricSum(String sample) throws IOException, InterruptedException {
        double sum = 0;
        for (int i = 0; i < metas.size(); i++) {
            if (!metaRunning(i)) {
                continue;
            }
            double v = scrape(metas.get(i).metricsPort(), sample);
            sum += Double.isNaN(v) ? 0 : v;
        }
        return sum;
    }

    private static double scrape(int port, String sample) throws IOException, InterruptedException {
        java.net.http.HttpResponse<String> r = java.net.http.HttpClient.newHttpClient().send(java.net.http.HttpRequest.newBuilder(
                java.net.URI.create("http://127.0.0.1:" + port + "/metrics")).build(), java.net.http.HttpResponse.BodyHandlers.ofString());
        for (String line : r.body().split("\n")) {
            if (line.startsWith(sample + " ")) {
                return Double.parseDouble(line.substring(sample.length() + 1).trim());
            }
        }
        return Double.NaN;
    }

    public static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    /** Closes what a cluster test opened, in the order given, skipping what is null (a set-up that failed half-way). */
    public static void closeAll(AutoCloseable... resources) throws Exception {
        for (AutoCloseable r : resources) {
            if (r != null) {
                r.close();
            }
        }
    }

    public static void waitFor(String what, long timeoutMs, BooleanSupplier condition) {
        long end = System.nanoTime() + timeoutMs * 1_000_000L;
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > end) {
                throw new AssertionError("timed out waiting for " + what);
            }
            // Poll, not spin: on 2 cores a spinning test thread takes CPU from the cluster it waits for.
            java.util.concurrent.locks.LockSupport.parkNanos(1_000_000L);
        }
    }

    @Override
    public void close() throws IOException {
        for (StorageNode n : nodes) {
            if (n != null) {
                n.close();
            }
        }
        for (int i = 0; i < metas.size(); i++) {
            if (metaRunning(i)) {
                metas.get(i).close();
            }
        }
        deleteTree(root);
    }

    /** Deletes {@code dir} and everything in it, if it exists. */
    public static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }
}
