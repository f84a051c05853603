package dev.segstore.it.faults;

import dev.segstore.client.MetaClient;
import dev.segstore.client.SegmentStorageAdapter;
import dev.segstore.it.proxy.ProxyNetwork;
import dev.segstore.it.raft.FaultyRaftRpcFactory;
import dev.segstore.it.raft.RaftLinkFaults;
import dev.segstore.node.replica.ControlledFaultyFiles;
import dev.segstore.node.server.InJvmCluster;
import dev.segstore.protocol.NodeMethods;
import dev.segstore.protocol.meta.DescribeClusterResponse;
import dev.segstore.protocol.meta.DurabilityMode;
import dev.segstore.protocol.meta.NodeState;
import dev.segstore.protocol.node.ReplicaStatusRequest;
import dev.segstore.protocol.node.ReplicaStatusResponse;
import dev.segstore.protocol.node.SegmentRef;
import dev.segstore.protocol.rpc.Frames;
import dev.segstore.protocol.rpc.RpcClient;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * A cluster of processes for fault runs (issue 12, process part): 3 meta-service JVMs and 3 storage-node JVMs
 * started from the test class path, each on a loopback address of its own, with every connection that can be
 * cut going through a {@link ProxyNetwork} proxy the harness controls:
 * <ul>
 *   <li>storage node {@code id} binds {@code 127.0.0.1<id>:port} and registers its proxy's address
 *       ({@code advertised.host/port}), so clients and its peers reach it through the proxy; it binds its own
 *       outgoing connections to {@code 127.0.0.1<id>} ({@code bind.outgoing}), so proxies see it is the source;</li>
 *   <li>meta node {@code i} (0..2) runs on {@code 127.0.0.2<i+1>}; its RPC server listens on a port of its own
 *       ({@code rpc.bind.port}) behind a proxy on the RPC port {@code peers} names, so the leader hints clients
 *       follow lead through the proxy too. Storage nodes' {@code meta.addresses} and the clients' name the
 *       proxies;</li>
 *   <li>Raft between meta nodes does not go through proxies (jraft binds its port on every address and its
 *       connections leave from an address it chooses, and a peer is known by one ip:port on every member, so a
 *       per-link proxy could not tell who connects: docs/fault-proxy.md); its links are cut in jraft's transport
 *       instead: every meta process runs the test class path's {@link FaultyRaftRpcFactory} and polls the control
 *       file {@value RaftLinkFaults#CONTROL} in its data directory ({@link #cutRaftLinks}).</li>
 * </ul>
 * The test JVM's clients connect from 127.0.0.1 ({@link ProxyNetwork#CLIENT}); the harness's own calls (routes,
 * the meta leader, replica status) leave from {@link #HARNESS_HOST}, which no rule names.
 *
 * <p>Processes are stopped by their own handle and PID (never by name). The cluster's directory keeps every
 * process's data and its {@code process.log}; it is deleted on {@link #close()} unless {@link #keep()} was
 * called (a run failed).
 */
final class ProcCluster implements AutoCloseable {
    static final String HARNESS_HOST = "127.0.0.30";
    static final int ELECTION_MS = 600;
    static final int SESSION_MS = 1_500;
    static final long REQUEST_TIMEOUT_MS = 5_000;
    static final long CALL_TIMEOUT_MS = 1_000;

    final Path root;
    final ProxyNetwork network = new ProxyNetwork();
    final Process[] metas = new Process[3];
    final Process[] nodes = new Process[4]; // by node id 1..3
    final boolean[] paused = new boolean[7]; // metas 0..2 at 0..2, nodes at 3 + id
    private final String[] metaProxies = new String[3];
    private final String[] nodeReal = new String[4];
    private final String[] metaReal = new String[3];
    /** Each meta node's Raft address ({@code ip:port}, jraft's PeerId). */
    private final String[] metaRaft = new String[3];
    /** The meta <-> meta Raft links cut now (every meta process's control file holds them). */
    private final java.util.Set<RaftLinkFaults.Link> raftLinks = new java.util.LinkedHashSet<>();
    final MetaClient harness;
    private final RpcClient status = new RpcClient(1, Frames.DEFAULT_MAX_FRAME_BYTES, HARNESS_HOST);
    private final Map<String, SegmentStorageAdapter> adapters = new ConcurrentHashMap<>();
    private final Thread reaper = new Thread(this::destroyAll, "proc-cluster-reaper");
    private boolean keep;
    /** Each storage node's disk mode (its file layer's control file), by id; "none" when healthy. */
    private final String[] diskModes = {"none", "none", "none", "none"};

    static String metaHost(int i) {
        return "127.0.0.2" + (i + 1);
    }

    static String nodeHost(int id) {
        return "127.0.0.1" + id;
    }

    static String metaName(int i) {
        return "meta-" + i;
    }

    static String nodeName(int id) {
        return "node-" + id;
    }

    /**
     * Starts a cluster in {@code root}. Ports are found free before the processes bind them, so another socket can
     * take one in between and a process then ends at start ("Address already in use"): a cluster where a process
     * ends before it is healthy is stopped and started again on new ports in a fresh directory, at most 3 times.
     */
    static ProcCluster start(Path root) throws Exception {
        for (int attempt = 1; ; attempt++) {
            Path dir = attempt == 1 ? root : root.resolveSibling(root.getFileName() + "-attempt-" + attempt);
            try {
                return new ProcCluster(dir);
            } catch (EndedAtStart e) {
                if (attempt == 3) {
                    throw new AssertionError("the process cluster did not start, 3 times", e);
                }
                System.out.printf("a process ended at start (%s), trying again on new ports%n", e.getMessage());
            }
        }
    }

    /** A process of a cluster being started ended before the cluster was healthy. */
    static final class EndedAtStart extends Exception {
        EndedAtStart(String message) {
            super(message);
        }
    }

    private ProcCluster(Path root) throws Exception {
        this.root = Files.createDirectories(root.toAbsolutePath()); // processes run in their own directories
        Runtime.getRuntime().addShutdownHook(reaper);
        for (int i = 0; i < 3; i++) {
            network.source(metaName(i), metaHost(i));
        }
        for (int id = 1; id <= 3; id++) {
            network.source(nodeName(id), nodeHost(id));
        }
        network.source("harness", HARNESS_HOST);
        try {
            List<String> peers = new ArrayList<>();
            int[] bind = new int[3];
            for (int i = 0; i < 3; i++) {
                int raft = freePort(); // jraft binds it on every address
                int advertised = freePort(metaHost(i));
                bind[i] = freePort(metaHost(i));
                peers.add(metaHost(i) + ":" + raft + ":" + advertised);
                metaRaft[i] = metaHost(i) + ":" + raft;
                metaProxies[i] = metaHost(i) + ":" + advertised;
                metaReal[i] = metaHost(i) + ":" + bind[i];
                network.proxy(metaName(i), new InetSocketAddress(metaHost(i), advertised), new InetSocketAddress(metaHost(i), bind[i]));
            }
            for (int i = 0; i < 3; i++) {
                Path dir = Files.createDirectories(root.resolve(metaName(i)));
                Files.writeString(dir.resolve("meta.properties"), String.join("\n",
                        "self=" + peers.get(i), "peers=" + String.join(",", peers), "data.dir=data", "rpc.bind.port=" + bind[i],
                        "election.timeout.ms=" + ELECTION_MS, "snapshot.interval.secs=300", "session.timeout.ms=" + SESSION_MS, ""));
                startMeta(i);
            }
            for (int id = 1; id <= 3; id++) {
                int port = freePort(nodeHost(id));
                nodeReal[id] = nodeHost(id) + ":" + port;
                var proxy = network.proxy(nodeName(id), new InetSocketAddress("127.0.0.1", 0), new InetSocketAddress(nodeHost(id), port));
                Path dir = Files.createDirectories(root.resolve(nodeName(id)));
                Files.writeString(dir.resolve("node.properties"), String.join("\n",
                        "node.id=" + id, "host=" + nodeHost(id), "port=" + port, "data.dir=data",
                        "advertised.host=127.0.0.1", "advertised.port=" + proxy.address().getPort(), "bind.outgoing=true",
                        "meta.addresses=" + String.join(",", metaProxies), "heartbeat.ms=200", "replica.max.lag.ms=1000", "read.lease.ms=1000",
                        "controlled.shutdown.timeout.ms=5000", "segment.close.ahead=" + dev.segstore.node.server.InJvmCluster.CLOSE_AHEAD,
                        // Test only: segment logs on the layer whose disk faults the control file sets (setDisk).
                        "test.log.files.class=" + ControlledFaultyFiles.class.getName(), ""));
                startNode(id);
            }
            harness = new MetaClient(List.of(metaProxies), 1_000, 3_000, HARNESS_HOST);
            String[] ended = {null};
            try {
                InJvmCluster.waitFor("the process cluster to be healthy or a process of it to end", 120_000, () -> {
                    for (String name : allNames()) {
                        if (!isUp(name)) {
                            ended[0] = name + " ended";
                            return true;
                        }
                    }
                    return unhealthy() == null;
                });
            } catch (AssertionError timedOut) {
                throw new AssertionError(timedOut.getMessage() + " (" + unhealthy() + ")", timedOut);
            }
            if (ended[0] != null) {
                throw new EndedAtStart(ended[0]);
            }
        } catch (Exception | Error e) {
            System.out.println("the process cluster did not start:\n" + report());
            destroyAll();
            network.close();
            throw e;
        }
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    private static int freePort(String host) throws IOException {
        try (ServerSocket s = new ServerSocket()) {
            s.bind(new InetSocketAddress(host, 0));
            return s.getLocalPort();
        }
    }

    List<String> metaAddresses() {
        return List.of(metaProxies);
    }

    /** The adapter of client process {@code name} (a broker of its own), made on first use and kept. */
    SegmentStorageAdapter adapter(String name) {
        return adapter(name, DurabilityMode.FSYNC);
    }

    SegmentStorageAdapter admin(DurabilityMode durability) {
        return adapter("admin-" + durability, durability);
    }

    private SegmentStorageAdapter adapter(String name, DurabilityMode durability) {
        return adapters.computeIfAbsent(name, p -> new SegmentStorageAdapter(new SegmentStorageAdapter.Settings(
                metaAddresses(), REQUEST_TIMEOUT_MS, CALL_TIMEOUT_MS, durability)));
    }

    void startMeta(int i) throws IOException {
        metas[i] = start(root.resolve(metaName(i)), "dev.segstore.meta.server.MetaServerMain", "meta.properties",
                "-D" + RaftLinkFaults.FILE_PROPERTY + "=" + raftControl(i));
        paused[i] = false;
    }

    void startNode(int id) throws IOException {
        nodes[id] = start(root.resolve(nodeName(id)), "dev.segstore.node.server.StorageNodeMain", "node.properties", null);
        paused[3 + id] = false;
    }

    /** Starts {@code mainClass} in {@code dir}; {@code property}, if not null, is one more {@code -D} option. */
    private Process start(Path dir, String mainClass, String config, String property) throws IOException {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Path logback = Path.of("..", "config", "logback.xml").toAbsolutePath().normalize();
        List<String> command = new ArrayList<>(List.of(java, "-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
                "-Dlogback.configurationFile=" + logback));
        // A safety bug put back on purpose (storage-node InjectedBug, test only), to show the campaign finds it.
        String bug = System.getProperty("segstore.testonly.bug", "");
        if (!bug.isBlank()) {
            command.add("-Dsegstore.testonly.bug=" + bug);
        }
        if (property != null) {
            command.add(property);
        }
        command.addAll(List.of("-cp", System.getProperty("java.class.path"), mainClass, "--config", dir.resolve(config).toString()));
        return new ProcessBuilder(command)
                .directory(dir.toFile())
                .redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(dir.resolve("process.log").toFile()))
                .start();
    }

    /** The process of a named endpoint ("meta-1", "node-2"). */
    Process process(String name) {
        return name.startsWith("meta-") ? metas[Integer.parseInt(name.substring(5))] : nodes[Integer.parseInt(name.substring(5))];
    }

    private int pausedSlot(String name) {
        return name.startsWith("meta-") ? Integer.parseInt(name.substring(5)) : 3 + Integer.parseInt(name.substring(5));
    }

    boolean isPaused(String name) {
        return paused[pausedSlot(name)];
    }

    boolean isUp(String name) {
        Process p = process(name);
        return p != null && p.isAlive();
    }

    /** kill -9, by the process's own handle. */
    void kill(String name) throws InterruptedException {
        Process p = process(name);
        p.destroyForcibly();
        if (!p.waitFor(30, TimeUnit.SECONDS)) {
            throw new AssertionError(name + " (pid " + p.pid() + ") did not die");
        }
        paused[pausedSlot(name)] = false;
    }

    /** SIGTERM (a controlled shutdown for a storage node); returns once the process ended (SIGKILL after 30 s). */
    void terminate(String name) throws InterruptedException {
        Process p = process(name);
        p.destroy();
        if (!p.waitFor(30, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            p.waitFor(30, TimeUnit.SECONDS);
        }
        paused[pausedSlot(name)] = false;
    }

    /** SIGSTOP (as a long GC pause or a hung host), by PID. */
    void pause(String name) throws IOException, InterruptedException {
        signal(process(name), "STOP");
        paused[pausedSlot(name)] = true;
    }

    /** SIGCONT. */
    void resume(String name) throws IOException, InterruptedException {
        signal(process(name), "CONT");
        paused[pausedSlot(name)] = false;
    }

    private static void signal(Process p, String signal) throws IOException, InterruptedException {
        Process kill = new ProcessBuilder("kill", "-" + signal, Long.toString(p.pid())).inheritIO().start();
        if (!kill.waitFor(30, TimeUnit.SECONDS) || kill.exitValue() != 0) {
            throw new AssertionError("kill -" + signal + " " + p.pid() + " failed");
        }
    }

    void restart(String name) throws IOException {
        if (name.startsWith("meta-")) {
            startMeta(Integer.parseInt(name.substring(5)));
        } else {
            startNode(Integer.parseInt(name.substring(5)));
        }
    }

    /** Meta node {@code i}'s Raft address ({@code ip:port}). */
    String metaRaft(int i) {
        return metaRaft[i];
    }

    /** Meta node {@code i}'s Raft link control file, in its data directory. */
    private Path raftControl(int i) {
        return root.resolve(metaName(i)).resolve("data").resolve(RaftLinkFaults.CONTROL);
    }

    /** Cuts {@code links} (each one direction between meta nodes); every meta process applies it within tens of ms. */
    void cutRaftLinks(java.util.Collection<RaftLinkFaults.Link> links) throws IOException {
        raftLinks.addAll(links);
        writeRaftLinks();
    }

    /** Heals {@code links}. */
    void healRaftLinks(java.util.Collection<RaftLinkFaults.Link> links) throws IOException {
        links.forEach(raftLinks::remove);
        writeRaftLinks();
    }

    /** The meta <-> meta Raft links cut now. */
    java.util.Set<RaftLinkFaults.Link> raftLinks() {
        return java.util.Collections.unmodifiableSet(new java.util.LinkedHashSet<>(raftLinks)); // in the order cut, as heal() names them
    }

    private void writeRaftLinks() throws IOException {
        for (int i = 0; i < 3; i++) {
            RaftLinkFaults.write(raftControl(i), raftLinks); // a process that is down reads it when it starts
        }
    }

    /** Node {@code id}'s data directory. */
    Path dataDir(int id) {
        return root.resolve(nodeName(id)).resolve("data");
    }

    /**
     * Sets storage node {@code id}'s disk mode ({@link ControlledFaultyFiles}: "none", "write-eio", "write-enospc",
     * "fsync-eio", "open-eio", "slow-fsync MS", "crash SEED"); its layer reads it within tens of ms.
     */
    void setDisk(int id, String mode) throws IOException {
        ControlledFaultyFiles.set(dataDir(id), mode);
        diskModes[id] = mode;
    }

    String diskMode(int id) {
        return diskModes[id];
    }

    /** Whether a disk mode makes I/O fail (the node's directory may be offline: it must start again once healed). */
    static boolean failing(String mode) {
        return mode.startsWith("write-") || mode.startsWith("fsync-") || mode.startsWith("open-") || mode.startsWith("crash");
    }

    /**
     * Crashes storage node {@code id} losing its page cache (disk mode "crash SEED": its layer cuts each segment
     * file to what was forced plus a random prefix of the later writes, then halts the JVM), waits for the process
     * to end (kill -9 after 10 s), and sets the disk healthy again for its next start. Returns how it ended.
     */
    String crashLosingPageCache(int id, long seed) throws IOException, InterruptedException {
        Process p = nodes[id];
        setDisk(id, "crash " + seed);
        String how;
        if (p.waitFor(10, TimeUnit.SECONDS)) {
            how = "halted with exit code " + p.exitValue();
        } else {
            p.destroyForcibly();
            p.waitFor(30, TimeUnit.SECONDS);
            how = "did not halt in 10 s: killed -9 (nothing lost)";
        }
        paused[3 + id] = false;
        setDisk(id, "none");
        return how;
    }

    /**
     * Removes every fault: the network whole (the meta <-> meta Raft links too), paused processes continued, ended ones started again. Returns what
     * it had to do (empty if the schedule's own ends had undone everything).
     */
    List<String> heal() throws IOException, InterruptedException {
        List<String> done = new ArrayList<>();
        network.heal();
        if (!raftLinks.isEmpty()) {
            done.add("healed the Raft links " + raftLinks);
            healRaftLinks(List.copyOf(raftLinks));
        }
        for (int id = 1; id <= 3; id++) {
            String mode = diskModes[id];
            if (!mode.equals("none")) {
                setDisk(id, "none");
                done.add("healed the disk of " + nodeName(id) + " (" + mode + ")");
                if (failing(mode) && isUp(nodeName(id))) {
                    kill(nodeName(id)); // its data directory may have gone offline: it starts again below
                }
            }
        }
        for (String name : allNames()) {
            if (isPaused(name)) {
                resume(name);
                done.add("continued " + name);
            }
            if (!isUp(name)) {
                restart(name);
                done.add("started " + name);
            }
        }
        return done;
    }

    static List<String> allNames() {
        return List.of(metaName(0), metaName(1), metaName(2), nodeName(1), nodeName(2), nodeName(3));
    }

    /** The meta-service as the harness sees it, or null if it did not answer. */
    DescribeClusterResponse describe() {
        try {
            return harness.describeCluster().get(3, TimeUnit.SECONDS);
        } catch (Exception e) {
            return null;
        }
    }

    /** The index of the meta leader (by the RPC address it is known by), or -1 if none answers. */
    int metaLeader() {
        DescribeClusterResponse d = describe();
        if (d == null) {
            return -1;
        }
        for (int i = 0; i < 3; i++) {
            if (metaProxies[i].equals(d.getLeader())) {
                return i;
            }
        }
        return -1;
    }

    /**
     * Whether meta node {@code i} serves as a member of the group: asked directly (not through its proxy), it
     * answers, or refuses NOT_LEADER naming a leader (it has heard from one). A process that runs may not yet:
     * a restarted JVM takes seconds to start Raft, and until then the group has one member fewer than it seems.
     */
    boolean metaServes(int i) {
        try {
            status.call(metaReal[i], dev.segstore.protocol.MetaMethods.DESCRIBE_CLUSTER, dev.segstore.protocol.meta.Empty.getDefaultInstance(),
                    DescribeClusterResponse.parser(), 1_000).get(2, TimeUnit.SECONDS);
            return true;
        } catch (java.util.concurrent.ExecutionException e) {
            return e.getCause() instanceof dev.segstore.protocol.rpc.RpcException re
                    && re.code() == dev.segstore.adapter.ErrorCode.NOT_LEADER.code() && !re.leaderHint().isEmpty();
        } catch (Exception e) {
            return false;
        }
    }

    /**
     * Null if every process runs, unpaused, every meta node serves in the group ({@link #metaServes}), and the
     * meta leader counts three live storage nodes; else what is not so.
     */
    String unhealthy() {
        for (String name : allNames()) {
            if (!isUp(name)) {
                return name + " is not running";
            }
            if (isPaused(name)) {
                return name + " is paused";
            }
        }
        for (int i = 0; i < 3; i++) {
            if (!metaServes(i)) {
                return metaName(i) + " does not serve in the group yet";
            }
        }
        DescribeClusterResponse d = describe();
        if (d == null) {
            return "the meta-service does not answer";
        }
        long alive = d.getNodesList().stream().filter(n -> n.getState() == NodeState.ALIVE).count();
        return alive == 3 ? null : alive + " live storage nodes";
    }

    void awaitHealthy(long timeoutMs) {
        String[] last = {""};
        try {
            InJvmCluster.waitFor("the process cluster to be healthy", timeoutMs, () -> (last[0] = unhealthy()) == null);
        } catch (AssertionError e) {
            throw new AssertionError(e.getMessage() + " (" + last[0] + ")\n" + report(), e);
        }
    }

    /** A replica's status, asked of the node directly (not through its proxy), or null if it does not answer. */
    ReplicaStatusResponse replicaStatus(int node, long shardId, long sequence) {
        try {
            return status.call(nodeReal[node], NodeMethods.REPLICA_STATUS, ReplicaStatusRequest.newBuilder()
                    .setSegment(SegmentRef.newBuilder().setShardId(shardId).setSequence(sequence)).build(),
                    ReplicaStatusResponse.parser(), 1_000).get(2, TimeUnit.SECONDS);
        } catch (Exception e) {
            return null;
        }
    }

    /** Where node {@code id} keeps the segment log of one segment. */
    Path logDir(int id, long shardId, long sequence) {
        return root.resolve(nodeName(id)).resolve("data").resolve("logs").resolve(shardId + "-" + sequence);
    }

    /** The length of every process's log now: {@link #logsSince} copies what comes after. */
    Map<String, Long> logMarks() {
        Map<String, Long> marks = new ConcurrentHashMap<>();
        for (String name : allNames()) {
            Path log = root.resolve(name).resolve("process.log");
            try {
                marks.put(name, Files.exists(log) ? Files.size(log) : 0L);
            } catch (IOException e) {
                marks.put(name, 0L);
            }
        }
        return marks;
    }

    /** Copies each process's log lines written since {@code marks} to {@code dir/<name>.log}. */
    void logsSince(Map<String, Long> marks, Path dir) throws IOException {
        Files.createDirectories(dir);
        for (String name : allNames()) {
            Path log = root.resolve(name).resolve("process.log");
            if (!Files.exists(log)) {
                continue;
            }
            try (RandomAccessFile f = new RandomAccessFile(log.toFile(), "r")) {
                long from = Math.min(marks.getOrDefault(name, 0L), f.length());
                byte[] bytes = new byte[(int) Math.min(f.length() - from, 64L << 20)];
                f.seek(from);
                f.readFully(bytes);
                Files.write(dir.resolve(name + ".log"), bytes);
            }
        }
    }

    /** Each process: alive, paused or its exit code, and the last lines of its log. */
    String report() {
        StringBuilder out = new StringBuilder();
        for (String name : allNames()) {
            Process p = process(name);
            out.append("--- ").append(name).append(": ").append(p == null ? "not started"
                    : p.isAlive() ? (isPaused(name) ? "paused" : "alive") + " (pid " + p.pid() + ")" : "ended with exit code " + p.exitValue()).append('\n');
            Path log = root.resolve(name).resolve("process.log");
            try {
                List<String> lines = Files.exists(log) ? Files.readAllLines(log, StandardCharsets.UTF_8) : List.of();
                lines.subList(Math.max(0, lines.size() - 15), lines.size()).forEach(l -> out.append("    ").append(l).append('\n'));
            } catch (IOException | java.io.UncheckedIOException e) {
                out.append("    (log unreadable: ").append(e).append(")\n");
            }
        }
        return out.toString();
    }

    /** Keeps the cluster's directory (logs and data of every process) when it closes. */
    void keep() {
        keep = true;
    }

    /** Stops every process: SIGCONT if paused, SIGTERM, SIGKILL after 20 s. */
    void destroyAll() {
        List<Process> all = new ArrayList<>();
        for (String name : allNames()) {
            Process p = process(name);
            if (p != null && p.isAlive()) {
                if (isPaused(name)) {
                    try {
                        resume(name);
                    } catch (Exception | AssertionError e) {
                        p.destroyForcibly();
                    }
                }
                all.add(p);
                p.destroy();
            }
        }
        for (Process p : all) {
            try {
                if (!p.waitFor(20, TimeUnit.SECONDS)) {
                    p.destroyForcibly();
                }
            } catch (InterruptedException e) {
                p.destroyForcibly();
                Thread.currentThread().interrupt();
            }
        }
    }

    @Override
    public void close() throws IOException {
        adapters.values().forEach(SegmentStorageAdapter::close);
        if (harness != null) {
            harness.close();
        }
        status.close();
        destroyAll();
        network.close();
        try {
            Runtime.getRuntime().removeShutdownHook(reaper);
        } catch (IllegalStateException shuttingDown) {
            // the hook runs anyway
        }
        if (!keep) {
            InJvmCluster.deleteTree(root);
        }
    }
}
