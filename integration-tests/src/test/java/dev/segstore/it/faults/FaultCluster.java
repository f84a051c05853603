package dev.segstore.it.faults;

import dev.segstore.client.MetaClient;
import dev.segstore.client.SegmentStorageAdapter;
import dev.segstore.it.raft.RaftLinkFaults;
import dev.segstore.meta.server.MetaConfig;
import dev.segstore.meta.server.MetaServer;
import dev.segstore.node.replica.FaultyFiles;
import dev.segstore.node.server.InJvmCluster;
import dev.segstore.node.server.StorageNode;
import dev.segstore.protocol.meta.Command;
import dev.segstore.protocol.meta.DurabilityMode;
import dev.segstore.protocol.meta.FenceNodeCommand;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * The in-JVM cluster fault runs share (3 meta + 3 storage nodes, {@link InJvmCluster}), with the handles the
 * nemesis turns: the network fault table every storage node calls its peers through, a file layer per node
 * that can fail writes or fsyncs, and the meta nodes and storage nodes to stop and start. It also holds one
 * {@link SegmentStorageAdapter} per client process name, made on first use and kept across runs (a run uses a
 * shard of its own, so no adapter has a route cached for it): separate adapters are separate brokers, which is
 * what the adapter contract's visibility rules are about.
 *
 * <p>Timeouts are shortened ({@link #TIMINGS}) so that a failover takes a fraction of a second: Raft election
 * 300 ms, storage-node session 600 ms (the least twice the election timeout allows), heartbeats every 100 ms,
 * replica lag limit 400 ms, read lease 500 ms (five heartbeats).
 *
 * <p>Thread contract: the nemesis and the runner call the fault methods from one thread at a time; the
 * adapters and the fault table are thread-safe.
 */
final class FaultCluster implements AutoCloseable {
    static final InJvmCluster.Timings TIMINGS = new InJvmCluster.Timings(300, 600, 100, 400);
    /** Client request deadline: writes held up by a fault retry until it heals, then give up as unknown. */
    static final long REQUEST_TIMEOUT_MS = 5_000;
    static final long CALL_TIMEOUT_MS = 1_000;

    final InJvmCluster cluster;
    final PeerFaultTable network;
    final MetaClient meta;
    private final FaultyFiles[] disks = new FaultyFiles[4];
    private final Set<Integer> faultyDisks = ConcurrentHashMap.newKeySet();
    private final Map<String, SegmentStorageAdapter> adapters = new ConcurrentHashMap<>();

    FaultCluster() throws Exception {
        for (int id = 1; id <= 3; id++) {
            disks[id] = new FaultyFiles();
        }
        InJvmCluster[] self = new InJvmCluster[1];
        network = new PeerFaultTable(address -> nodeOfAddress(self[0], address));
        cluster = new InJvmCluster(id -> network, id -> disks[id], MetaConfig.DEFAULT_REPLICA_REASSIGN_AFTER_MS, TIMINGS);
        self[0] = cluster;
        meta = new MetaClient(cluster.metaAddresses, CALL_TIMEOUT_MS, 2_000);
    }

    private static int nodeOfAddress(InJvmCluster cluster, String address) {
        if (cluster == null) {
            return -1;
        }
        for (int id = 1; id <= 3; id++) {
            StorageNode n = cluster.nodes[id];
            if (n != null && address.equals("127.0.0.1:" + n.port())) {
                return id;
            }
        }
        return -1;
    }

    /** The adapter of client process {@code process}, made on first use. */
    SegmentStorageAdapter adapter(String process) {
        return adapter(process, DurabilityMode.FSYNC);
    }

    /** The adapter that creates shards of {@code durability} (the engine's setting is per adapter). */
    SegmentStorageAdapter admin(DurabilityMode durability) {
        return adapter("admin-" + durability, durability);
    }

    private SegmentStorageAdapter adapter(String name, DurabilityMode durability) {
        return adapters.computeIfAbsent(name, p -> new SegmentStorageAdapter(new SegmentStorageAdapter.Settings(
                cluster.metaAddresses, REQUEST_TIMEOUT_MS, CALL_TIMEOUT_MS, durability)));
    }

    boolean nodeUp(int id) {
        return cluster.nodes[id] != null;
    }

    StorageNode node(int id) {
        return cluster.nodes[id];
    }

    void stopNode(int id) {
        cluster.stopNode(id);
    }

    /**
     * Starts node {@code id} and waits for its registration, unless a fault cuts it from the meta-service: then it
     * registers once the fault ends (waiting would hold the nemesis, which ends that fault, for 30 s).
     */
    void startNode(int id) throws Exception {
        cluster.startNode(id, !network.cutFromMeta(id));
    }

    /**
     * Crashes node {@code id} losing its page cache: the crash's instant on its file layer (nothing after it
     * reaches the disk), the node stopped, and its segment files rewritten as the crash left them (forced content
     * plus a prefix of later writes drawn from {@code random}, the last torn). {@link #startNode} starts it again
     * on the same directory. Returns what the crash lost.
     */
    FaultyFiles.CrashReport crashNode(int id, java.util.Random random) throws java.io.IOException {
        FaultyFiles.CrashReport lost = disks[id].crash(random);
        cluster.machineDown(id); // its port does not refuse: a crashed machine answers nothing, the session decides
        cluster.stopNodeAbruptly(id); // a crash saves nothing: the files are rewritten as they were at its instant
        disks[id].writeCrashImages();
        return lost;
    }

    /**
     * Node {@code id}'s machine goes down and its disk is replaced: the node stopped, its data directory deleted (every
     * log, the index), a new file layer (a new boot). {@link #startNode} starts it again on the empty directory.
     */
    void loseDisk(int id) throws java.io.IOException {
        cluster.machineDown(id); // a machine that went down: no fast fence from a refused port
        stopNode(id);
        InJvmCluster.deleteTree(cluster.dataDir(id, 0));
        disks[id] = new FaultyFiles();
    }

    /** Makes node {@code id}'s segment writes (or, {@code fsync}, its forces) fail from now on. */
    void failDisk(int id, boolean fsync) {
        faultyDisks.add(id);
        if (fsync) {
            disks[id].failForces();
        } else {
            disks[id].failWrites();
        }
    }

    /** Makes opening node {@code id}'s segment files fail from now on. */
    void failDiskOpens(int id) {
        faultyDisks.add(id);
        disks[id].failOpens();
    }

    /** Each force of node {@code id}'s segment files takes {@code delayMs} longer until {@link #healSlowDisk}. */
    void slowDisk(int id, long delayMs) {
        faultyDisks.add(id);
        disks[id].slowForces(delayMs);
    }

    void healSlowDisk(int id) {
        disks[id].slowForces(0);
        faultyDisks.remove(id);
    }

    boolean diskFailed(int id) {
        return faultyDisks.contains(id);
    }

    /** Restarts node {@code id} on a healthy file layer: its failed data directory does not come back by itself. */
    void replaceDisk(int id) throws Exception {
        if (nodeUp(id)) {
            stopNode(id);
        }
        disks[id] = new FaultyFiles();
        faultyDisks.remove(id);
        startNode(id);
    }

    /**
     * Has the controller fence storage node {@code id} now, as it does when the node's session expires: the same
     * Raft command ({@code FenceNode} of its current incarnation), proposed on the meta leader. Returns false if
     * no meta leader was elected within a second or the command failed.
     */
    boolean fence(int id) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(1);
        int leader;
        while ((leader = metaLeader()) < 0 && System.nanoTime() < deadline) {
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(5));
        }
        if (leader < 0) {
            return false;
        }
        MetaServer m = cluster.metas.get(leader);
        Optional<dev.segstore.protocol.meta.StorageNode> node = m.state().node(id);
        if (node.isEmpty()) {
            return false;
        }
        Command fence = m.state().stamped(Command.newBuilder(), System.currentTimeMillis())
                .setFenceNode(FenceNodeCommand.newBuilder().setNodeId(id).setIncarnation(node.get().getIncarnation()))
                .build();
        try {
            m.raft().propose(fence).get(2, TimeUnit.SECONDS);
            return true;
        } catch (Exception e) {
            return false;
        }
    }

    /** The index in {@code cluster.metas} of the running meta-service leader, or -1 while there is none. */
    int metaLeader() {
        for (int i = 0; i < cluster.metas.size(); i++) {
            if (cluster.metaRunning(i) && cluster.metas.get(i).isLeader()) {
                return i;
            }
        }
        return -1;
    }

    /** The Raft address ({@code ip:port}, jraft's) of meta node {@code index}. */
    String metaRaftAddress(int index) {
        return cluster.metas.get(index).config().self().raftAddress();
    }

    boolean anyMetaStopped() {
        for (int i = 0; i < cluster.metas.size(); i++) {
            if (!cluster.metaRunning(i)) {
                return true;
            }
        }
        return false;
    }

    void stopMeta(int index) {
        cluster.stopMeta(index);
    }

    void startMeta(int index) throws Exception {
        if (!cluster.metaRunning(index)) {
            cluster.startMeta(index);
        }
    }

    /**
     * Removes every fault: meta nodes started, the network whole (the Raft links between meta nodes too), nodes on failed disks restarted on healthy
     * ones, stopped nodes started. Returns what it had to do, for the run's log (empty if the schedule's own
     * ends had undone everything).
     */
    List<String> heal() throws Exception {
        List<String> done = new ArrayList<>();
        for (int i = 0; i < cluster.metas.size(); i++) {
            if (!cluster.metaRunning(i)) {
                startMeta(i);
                done.add("started meta node " + i);
            }
        }
        network.clear();
        if (!RaftLinkFaults.cutLinks().isEmpty()) {
            done.add("healed the Raft links " + RaftLinkFaults.cutLinks());
            RaftLinkFaults.healAll();
        }
        for (int id = 1; id <= 3; id++) {
            if (diskFailed(id)) {
                replaceDisk(id);
                done.add("restarted storage node " + id + " on a healthy disk");
            } else if (!nodeUp(id)) {
                startNode(id);
                done.add("started storage node " + id);
            }
        }
        return done;
    }

    /** Where node {@code id} keeps the segment log of one segment. */
    Path logDir(int id, long shardId, long sequence) {
        return cluster.root.resolve("node-" + id).resolve("logs").resolve(shardId + "-" + sequence);
    }

    @Override
    public void close() throws Exception {
        RaftLinkFaults.healAll(); // the rules are the JVM's: the next cluster starts whole
        adapters.values().forEach(SegmentStorageAdapter::close);
        meta.close();
        cluster.close();
    }
}
