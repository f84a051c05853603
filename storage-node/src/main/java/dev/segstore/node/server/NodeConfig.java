package dev.segstore.node.server;

import dev.segstore.log.DirectoryConfig;
import dev.segstore.log.FlushPolicy;
import dev.segstore.log.LogConfig;
import dev.segstore.log.LogException;
import dev.segstore.protocol.rpc.TlsConfig;

import java.io.IOException;
import java.io.Reader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Properties;
import java.util.Set;

/**
 * Configuration of one storage node, read from a properties file by {@link #load}; keys, defaults and ranges
 * are in this one place and in docs/configuration.md.
 *
 * @param nodeId          the node's id, >= 0, unique in the cluster
 * @param host            address to bind and to register (clients and peers connect to it)
 * @param port            data-plane RPC port
 * @param dataDir         the first data directory (each has its own I/O thread); it also holds the node's key and tag
 *                        index, so its failure takes the whole node offline
 * @param metaAddresses   RPC addresses of the meta-service nodes
 * @param heartbeatMs     heartbeat period to the meta-service (well below its session timeout)
 * @param replicaMaxLagMs a follower not caught up for this long leaves the ISR
 * @param directory       the data directory's write queue and flush policy ({@code log.*} keys)
 * @param log             segment file size and index interval of every replica's log
 * @param ownerThreads    threads that run the shards' requests, each shard on one of them chosen by hashing
 * @param metricsPort     port of the Prometheus endpoint ({@code /metrics}) on {@code host}; -1: none, 0: any free
 * @param controlledShutdownTimeoutMs how long a node stopping on purpose ({@link StorageNode#shutdownGracefully})
 *                        waits for the meta-service to move its leaderships before it stops anyway; 0: it does not
 *                        ask (it stops at once, and its leaderships move after the session timeout)
 * @param advertisedHost  the host the node registers (what clients and peers connect to); null: {@code host}.
 *                        Differs from {@code host} when something stands in between (a proxy, a NAT)
 * @param advertisedPort  the port the node registers; -1: the port it bound
 * @param bindOutgoing    whether the node's own connections (to the meta-service and to its peers) leave from
 *                        {@code host} rather than from the address the OS picks, so that the other end (or a
 *                        proxy) sees which node connects: several nodes on one machine, each on its own address
 * @param tls             TLS ({@code tls.*} keys, docs/security.md) on the data-plane port and on this node's calls to
 *                        its peers and the meta-service, or null: plain TCP
 * @param readLeaseMs     how long an assignment that lists this node in a sealed segment's ISR lets it serve that
 *                        segment's reads, counted from when the heartbeat that brought it was sent; and how long a
 *                        leader holds the acknowledgement of deletes after its ISR lost a member (so a member that
 *                        was dropped without hearing of it stops serving first). The same on every node
 *                        ({@code read.lease.ms}; docs/architecture.md, "closed with a read lease")
 * @param moreDataDirs    the other data directories ({@code data.dirs} lists {@code dataDir} first, then these): each
 *                        fails on its own, its replicas going offline while the node serves the others
 *                        ({@link DataDirectories})
 * @param leaderUnreachableMs a follower of an open segment whose leader has answered none of its fetches for this
 *                        long reports it in its heartbeats; once every other ISR member does, the controller moves
 *                        the leadership ({@code leader.unreachable.ms}; 0: never reported)
 * @param replicaFetchBatched whether this node's follower fetches to one leader node go in the calls of one fetch
 *                        session ({@code node.FetchMany}: each entry parked at the leader until it has news) rather than
 *                        one long-polled call per segment ({@code replica.fetch.batched}, default true: 1,000 idle shards
 *                        cost a third, written at once the same; docs/benchmarks.md)
 * @param segmentCloseAhead whether a segment's leader asks the controller to close it ahead of its end and hands the shard
 *                        over to the next segment without waiting for the seal to commit ({@code segment.close.ahead},
 *                        default true since 2026-12-05; docs/architecture.md, "Close ahead")
 * @param indexQueueMaxBytes estimated heap bytes of appended keys and tags the replicas' key and tag indexes may queue
 *                        together until their catch-ups take them, rather than read the records back from the logs
 *                        ({@code index.queue.max.bytes}, default 64 MiB; 0: every record is read back; {@link AppendedKeys})
 */
public record NodeConfig(int nodeId, String host, int port, Path dataDir, List<String> metaAddresses,
                         long heartbeatMs, long replicaMaxLagMs, DirectoryConfig directory, LogConfig log, int ownerThreads,
                         int metricsPort, long controlledShutdownTimeoutMs, String advertisedHost, int advertisedPort,
                         boolean bindOutgoing, TlsConfig tls, long readLeaseMs, List<Path> moreDataDirs, long leaderUnreachableMs,
                         boolean replicaFetchBatched, boolean segmentCloseAhead, long indexQueueMaxBytes) {
    /** Owner threads when not set: one per core, at least 2. */
    public static final int DEFAULT_OWNER_THREADS = Math.max(2, Runtime.getRuntime().availableProcessors());
    /** 10 s: moving leaderships takes one meta command; the rest is margin for a busy meta-service or a failover. */
    public static final long DEFAULT_CONTROLLED_SHUTDOWN_TIMEOUT_MS = 10_000;
    /**
     * 64 MiB: about two seconds of keys and tags at this machine's highest write rates; a replica's catch-up takes them once
     * 2,000 records wait or about a second after they were first seen (ReplicaIndex).
     */
    public static final long DEFAULT_INDEX_QUEUE_MAX_BYTES = 64L << 20;
    /** 3 s: six default heartbeats, half the meta-service's default session timeout. */
    public static final long DEFAULT_READ_LEASE_MS = dev.segstore.node.replica.ReplicaConfig.DEFAULT_READ_LEASE_MS;

    private static final Set<String> KEYS = keys();

    private static Set<String> keys() {
        Set<String> k = new java.util.HashSet<>(Set.of("node.id", "host", "port", "data.dir", "meta.addresses",
                "heartbeat.ms", "replica.max.lag.ms", "log.queue.max.bytes", "log.queue.max.appends",
                "log.flush.max.wait.ms", "log.flush.max.unsynced.bytes", "log.background.flush.ms",
                "log.background.flush.bytes", "log.file.bytes", "data.dirs", "leader.unreachable.ms", "log.index.interval.bytes", "owner.threads", "metrics.port",
                "controlled.shutdown.timeout.ms", "advertised.host", "advertised.port", "bind.outgoing", "read.lease.ms", "replica.fetch.batched", "segment.close.ahead",
                "index.queue.max.bytes",
                TestLogFiles.KEY)); // test-only: read by StorageNodeMain (TestLogFiles), not part of the record
        k.addAll(TlsConfig.KEYS);
        return Set.copyOf(k);
    }

    /** With the segment log's default directory and log settings. */
    public NodeConfig(int nodeId, String host, int port, Path dataDir, List<String> metaAddresses, long heartbeatMs,
                      long replicaMaxLagMs) {
        this(nodeId, host, port, dataDir, metaAddresses, heartbeatMs, replicaMaxLagMs, DirectoryConfig.DEFAULT, LogConfig.DEFAULT,
                DEFAULT_OWNER_THREADS, -1);
    }

    /** With the default {@code controlled.shutdown.timeout.ms}. */
    public NodeConfig(int nodeId, String host, int port, Path dataDir, List<String> metaAddresses, long heartbeatMs,
                      long replicaMaxLagMs, DirectoryConfig directory, LogConfig log, int ownerThreads, int metricsPort) {
        this(nodeId, host, port, dataDir, metaAddresses, heartbeatMs, replicaMaxLagMs, directory, log, ownerThreads, metricsPort,
                DEFAULT_CONTROLLED_SHUTDOWN_TIMEOUT_MS);
    }

    /** Registering the address it binds, its connections leaving from where the OS picks, without TLS. */
    public NodeConfig(int nodeId, String host, int port, Path dataDir, List<String> metaAddresses, long heartbeatMs,
                      long replicaMaxLagMs, DirectoryConfig directory, LogConfig log, int ownerThreads, int metricsPort,
                      long controlledShutdownTimeoutMs) {
        this(nodeId, host, port, dataDir, metaAddresses, heartbeatMs, replicaMaxLagMs, directory, log, ownerThreads, metricsPort,
                controlledShutdownTimeoutMs, null, -1, false);
    }

    /** Without TLS. */
    public NodeConfig(int nodeId, String host, int port, Path dataDir, List<String> metaAddresses, long heartbeatMs,
                      long replicaMaxLagMs, DirectoryConfig directory, LogConfig log, int ownerThreads, int metricsPort,
                      long controlledShutdownTimeoutMs, String advertisedHost, int advertisedPort, boolean bindOutgoing) {
        this(nodeId, host, port, dataDir, metaAddresses, heartbeatMs, replicaMaxLagMs, directory, log, ownerThreads, metricsPort,
                controlledShutdownTimeoutMs, advertisedHost, advertisedPort, bindOutgoing, null, DEFAULT_READ_LEASE_MS);
    }

    /** With one data directory. */
    public NodeConfig(int nodeId, String host, int port, Path dataDir, List<String> metaAddresses, long heartbeatMs, long replicaMaxLagMs,
                      DirectoryConfig directory, LogConfig log, int ownerThreads, int metricsPort, long controlledShutdownTimeoutMs,
                      String advertisedHost, int advertisedPort, boolean bindOutgoing, TlsConfig tls, long readLeaseMs) {
        this(nodeId, host, port, dataDir, metaAddresses, heartbeatMs, replicaMaxLagMs, directory, log, ownerThreads, metricsPort,
                controlledShutdownTimeoutMs, advertisedHost, advertisedPort, bindOutgoing, tls, readLeaseMs, List.of());
    }

    /** 2 s: two long-polled fetch rounds (1 s each) with no answer at all. */
    public static final long DEFAULT_LEADER_UNREACHABLE_MS = 2_000;

    /** With the default {@code leader.unreachable.ms}. */
    public NodeConfig(int nodeId, String host, int port, Path dataDir, List<String> metaAddresses, long heartbeatMs, long replicaMaxLagMs,
                      DirectoryConfig directory, LogConfig log, int ownerThreads, int metricsPort, long controlledShutdownTimeoutMs,
                      String advertisedHost, int advertisedPort, boolean bindOutgoing, TlsConfig tls, long readLeaseMs, List<Path> moreDataDirs) {
        this(nodeId, host, port, dataDir, metaAddresses, heartbeatMs, replicaMaxLagMs, directory, log, ownerThreads, metricsPort,
                controlledShutdownTimeoutMs, advertisedHost, advertisedPort, bindOutgoing, tls, readLeaseMs, moreDataDirs,
                DEFAULT_LEADER_UNREACHABLE_MS);
    }

    /** With follower fetches in fetch sessions (the default of {@code replica.fetch.batched}: true). */
    public NodeConfig(int nodeId, String host, int port, Path dataDir, List<String> metaAddresses, long heartbeatMs, long replicaMaxLagMs,
                      DirectoryConfig directory, LogConfig log, int ownerThreads, int metricsPort, long controlledShutdownTimeoutMs,
                      String advertisedHost, int advertisedPort, boolean bindOutgoing, TlsConfig tls, long readLeaseMs, List<Path> moreDataDirs,
                      long leaderUnreachableMs) {
        this(nodeId, host, port, dataDir, metaAddresses, heartbeatMs, replicaMaxLagMs, directory, log, ownerThreads, metricsPort,
                controlledShutdownTimeoutMs, advertisedHost, advertisedPort, bindOutgoing, tls, readLeaseMs, moreDataDirs,
                leaderUnreachableMs, true);
    }

    /** With close ahead (the default of {@code segment.close.ahead}: true). */
    public NodeConfig(int nodeId, String host, int port, Path dataDir, List<String> metaAddresses, long heartbeatMs, long replicaMaxLagMs,
                      DirectoryConfig directory, LogConfig log, int ownerThreads, int metricsPort, long controlledShutdownTimeoutMs,
                      String advertisedHost, int advertisedPort, boolean bindOutgoing, TlsConfig tls, long readLeaseMs, List<Path> moreDataDirs,
                      long leaderUnreachableMs, boolean replicaFetchBatched) {
        this(nodeId, host, port, dataDir, metaAddresses, heartbeatMs, replicaMaxLagMs, directory, log, ownerThreads, metricsPort,
                controlledShutdownTimeoutMs, advertisedHost, advertisedPort, bindOutgoing, tls, readLeaseMs, moreDataDirs,
                leaderUnreachableMs, replicaFetchBatched, true, DEFAULT_INDEX_QUEUE_MAX_BYTES);
    }

    /** This configuration with {@code segment.close.ahead} = {@code closeAhead}. */
    public NodeConfig withSegmentCloseAhead(boolean closeAhead) {
        return new NodeConfig(nodeId, host, port, dataDir, metaAddresses, heartbeatMs, replicaMaxLagMs, directory, log, ownerThreads,
                metricsPort, controlledShutdownTimeoutMs, advertisedHost, advertisedPort, bindOutgoing, tls, readLeaseMs, moreDataDirs,
                leaderUnreachableMs, replicaFetchBatched, closeAhead, indexQueueMaxBytes);
    }

    /** This configuration with {@code index.queue.max.bytes} = {@code bytes}. */
    public NodeConfig withIndexQueueMaxBytes(long bytes) {
        return new NodeConfig(nodeId, host, port, dataDir, metaAddresses, heartbeatMs, replicaMaxLagMs, directory, log, ownerThreads,
                metricsPort, controlledShutdownTimeoutMs, advertisedHost, advertisedPort, bindOutgoing, tls, readLeaseMs, moreDataDirs,
                leaderUnreachableMs, replicaFetchBatched, segmentCloseAhead, bytes);
    }

    /** This configuration with {@code replica.fetch.batched} = {@code batched}. */
    public NodeConfig withReplicaFetchBatched(boolean batched) {
        return new NodeConfig(nodeId, host, port, dataDir, metaAddresses, heartbeatMs, replicaMaxLagMs, directory, log, ownerThreads,
                metricsPort, controlledShutdownTimeoutMs, advertisedHost, advertisedPort, bindOutgoing, tls, readLeaseMs, moreDataDirs,
                leaderUnreachableMs, batched, segmentCloseAhead, indexQueueMaxBytes);
    }

    /** This configuration with {@code leader.unreachable.ms} = {@code ms} (0: never reported). */
    public NodeConfig withLeaderUnreachableMs(long ms) {
        return new NodeConfig(nodeId, host, port, dataDir, metaAddresses, heartbeatMs, replicaMaxLagMs, directory, log, ownerThreads,
                metricsPort, controlledShutdownTimeoutMs, advertisedHost, advertisedPort, bindOutgoing, tls, readLeaseMs, moreDataDirs, ms, replicaFetchBatched, segmentCloseAhead, indexQueueMaxBytes);
    }

    /** Every data directory: {@code dataDir} first. */
    public List<Path> dataDirs() {
        List<Path> all = new java.util.ArrayList<>();
        all.add(dataDir);
        all.addAll(moreDataDirs);
        return List.copyOf(all);
    }

    /** This configuration with the data directories {@code dirs} (the first holds the index). */
    public NodeConfig withDataDirs(List<Path> dirs) {
        return new NodeConfig(nodeId, host, port, dirs.get(0), metaAddresses, heartbeatMs, replicaMaxLagMs, directory, log, ownerThreads,
                metricsPort, controlledShutdownTimeoutMs, advertisedHost, advertisedPort, bindOutgoing, tls, readLeaseMs,
                dirs.subList(1, dirs.size()), leaderUnreachableMs, replicaFetchBatched, segmentCloseAhead, indexQueueMaxBytes);
    }

    /** This configuration with TLS {@code tls} (null: none). */
    public NodeConfig withTls(TlsConfig tls) {
        return new NodeConfig(nodeId, host, port, dataDir, metaAddresses, heartbeatMs, replicaMaxLagMs, directory, log, ownerThreads,
                metricsPort, controlledShutdownTimeoutMs, advertisedHost, advertisedPort, bindOutgoing, tls, readLeaseMs, moreDataDirs, leaderUnreachableMs, replicaFetchBatched, segmentCloseAhead, indexQueueMaxBytes);
    }

    /** This configuration with {@code read.lease.ms} = {@code readLeaseMs}. */
    public NodeConfig withReadLeaseMs(long readLeaseMs) {
        return new NodeConfig(nodeId, host, port, dataDir, metaAddresses, heartbeatMs, replicaMaxLagMs, directory, log, ownerThreads,
                metricsPort, controlledShutdownTimeoutMs, advertisedHost, advertisedPort, bindOutgoing, tls, readLeaseMs, moreDataDirs, leaderUnreachableMs, replicaFetchBatched, segmentCloseAhead, indexQueueMaxBytes);
    }

    public NodeConfig {
        metaAddresses = List.copyOf(metaAddresses);
        moreDataDirs = moreDataDirs == null ? List.of() : List.copyOf(moreDataDirs);
        if (dataDir == null) {
            throw new IllegalArgumentException("a data directory is required");
        }
        if (leaderUnreachableMs != 0 && leaderUnreachableMs < 1_000) {
            throw new IllegalArgumentException("leader.unreachable.ms = " + leaderUnreachableMs + " must be 0 (off) or >= 1000 (a follower's"
                    + " fetch is held at its leader up to 1 s when there is nothing new)");
        }
        java.util.Set<Path> distinct = new java.util.HashSet<>();
        distinct.add(dataDir.toAbsolutePath().normalize());
        for (Path d : moreDataDirs) {
            if (!distinct.add(d.toAbsolutePath().normalize())) {
                throw new IllegalArgumentException("data.dirs names " + d + " twice");
            }
        }
        advertisedHost = advertisedHost == null || advertisedHost.isBlank() ? null : advertisedHost.trim();
        if (advertisedPort < -1 || advertisedPort == 0 || advertisedPort > 65535) {
            throw new IllegalArgumentException("advertised.port = " + advertisedPort + " must be in 1..65535");
        }
        if (nodeId < 0) {
            throw new IllegalArgumentException("node.id = " + nodeId + " must be >= 0");
        }
        if (port < 0 || port > 65535) {
            throw new IllegalArgumentException("port = " + port + " must be in 0..65535");
        }
        if (metaAddresses.isEmpty()) {
            throw new IllegalArgumentException("meta.addresses must list at least one meta-service node");
        }
        if (heartbeatMs < 10 || replicaMaxLagMs < 10) {
            throw new IllegalArgumentException("heartbeat.ms and replica.max.lag.ms must be >= 10");
        }
        if (readLeaseMs <= heartbeatMs) {
            throw new IllegalArgumentException("read.lease.ms = " + readLeaseMs + " must be > heartbeat.ms = " + heartbeatMs
                    + " (several heartbeats: a node serves sealed reads only while a recent one confirmed its ISR membership)");
        }
        if (metricsPort < -1 || metricsPort > 65535) {
            throw new IllegalArgumentException("metrics.port = " + metricsPort + " must be in 0..65535 (or -1: none)");
        }
        if (ownerThreads < 1 || ownerThreads > 1024) {
            throw new IllegalArgumentException("owner.threads = " + ownerThreads + " must be in 1..1024");
        }
        if (controlledShutdownTimeoutMs < 0) {
            throw new IllegalArgumentException("controlled.shutdown.timeout.ms = " + controlledShutdownTimeoutMs + " must be >= 0 (0: none)");
        }
        if (directory == null || log == null) {
            throw new IllegalArgumentException("directory and log settings are required");
        }
        if (indexQueueMaxBytes < 0) {
            throw new IllegalArgumentException("index.queue.max.bytes = " + indexQueueMaxBytes + " must be >= 0 (0: every record read back)");
        }
    }

    /** The host the node registers: {@code advertised.host}, else {@code host}. */
    public String registeredHost() {
        return advertisedHost == null ? host : advertisedHost;
    }

    /** The port the node registers: {@code advertised.port}, else the port it bound ({@code boundPort}). */
    public int registeredPort(int boundPort) {
        return advertisedPort < 0 ? boundPort : advertisedPort;
    }

    /** The local address the node's outgoing connections are bound to, or null (the OS picks). */
    public String outgoingHost() {
        return bindOutgoing ? host : null;
    }

    public static NodeConfig load(Path file) throws IOException {
        Properties p = new Properties();
        try (Reader r = Files.newBufferedReader(file)) {
            p.load(r);
        }
        for (String key : p.stringPropertyNames()) {
            if (!KEYS.contains(key)) {
                throw new IllegalArgumentException("unknown storage-node setting '" + key + "' (known: " + KEYS + ")");
            }
        }
        Path base = file.getParent() == null ? Path.of(".") : file.getParent();
        DirectoryConfig d = DirectoryConfig.DEFAULT;
        FlushPolicy f = d.flushPolicy();
        LogConfig l = LogConfig.DEFAULT;
        try {
            DirectoryConfig directory = new DirectoryConfig(number(p, "log.queue.max.bytes", d.maxQueuedBytes()),
                    (int) number(p, "log.queue.max.appends", d.maxQueuedAppends()),
                    new FlushPolicy(number(p, "log.flush.max.wait.ms", f.maxWaitNanos() / 1_000_000) * 1_000_000,
                            number(p, "log.flush.max.unsynced.bytes", f.maxUnsyncedBytes()),
                            number(p, "log.background.flush.ms", f.backgroundFlushNanos() / 1_000_000) * 1_000_000,
                            number(p, "log.background.flush.bytes", f.backgroundFlushBytes())));
            LogConfig log = l.withSegmentBytes(number(p, "log.file.bytes", l.segmentBytes()))
                    .withIndexIntervalBytes((int) number(p, "log.index.interval.bytes", l.indexIntervalBytes()));
            return new NodeConfig((int) number(p, "node.id", -1), required(p, "host"), (int) number(p, "port", -1),
                    dataDirs(p, base).get(0),
                    Arrays.stream(required(p, "meta.addresses").split(",")).map(String::trim).toList(),
                    number(p, "heartbeat.ms", 500), number(p, "replica.max.lag.ms", 10_000), directory, log,
                    (int) number(p, "owner.threads", DEFAULT_OWNER_THREADS), (int) signed(p, "metrics.port", -1),
                    number(p, "controlled.shutdown.timeout.ms", DEFAULT_CONTROLLED_SHUTDOWN_TIMEOUT_MS),
                    p.getProperty("advertised.host"), (int) signed(p, "advertised.port", -1), bool(p, "bind.outgoing", false),
                    TlsConfig.fromSettings(p::getProperty, base, "storage-node settings in " + file),
                    number(p, "read.lease.ms", DEFAULT_READ_LEASE_MS), dataDirs(p, base).subList(1, dataDirs(p, base).size()),
                    number(p, "leader.unreachable.ms", DEFAULT_LEADER_UNREACHABLE_MS), bool(p, "replica.fetch.batched", true),
                    bool(p, "segment.close.ahead", true), number(p, "index.queue.max.bytes", DEFAULT_INDEX_QUEUE_MAX_BYTES));
        } catch (LogException e) {
            throw new IllegalArgumentException("storage-node settings in " + file + ": " + e.getMessage());
        }
    }

    /** {@code data.dirs} (comma-separated) or {@code data.dir} (one), relative to the settings file's directory. */
    private static List<Path> dataDirs(Properties p, Path base) {
        String many = p.getProperty("data.dirs");
        String one = p.getProperty("data.dir");
        if (many != null && one != null) {
            throw new IllegalArgumentException("storage-node settings 'data.dir' and 'data.dirs' are both set: keep one (data.dirs lists every directory)");
        }
        if (many == null) {
            return List.of(base.resolve(required(p, "data.dir")));
        }
        List<Path> dirs = Arrays.stream(many.split(",")).map(String::trim).filter(x -> !x.isEmpty()).map(base::resolve).toList();
        if (dirs.isEmpty()) {
            throw new IllegalArgumentException("storage-node setting 'data.dirs' must list at least one directory");
        }
        return dirs;
    }

    private static long number(Properties p, String key, long def) {
        String v = p.getProperty(key);
        if (v == null) {
            if (def < 0) {
                throw new IllegalArgumentException("storage-node setting '" + key + "' is required");
            }
            return def;
        }
        try {
            return Long.parseLong(v.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("storage-node setting '" + key + "' = '" + v + "' is not a number");
        }
    }

    /** A number that may be negative; {@code def} when absent. */
    private static long signed(Properties p, String key, long def) {
        return p.getProperty(key) == null ? def : number(p, key, 0);
    }

    private static boolean bool(Properties p, String key, boolean def) {
        String v = p.getProperty(key);
        if (v == null) {
            return def;
        }
        return switch (v.trim()) {
            case "true" -> true;
            case "false" -> false;
            default -> throw new IllegalArgumentException("storage-node setting '" + key + "' = '" + v + "' is not true or false");
        };
    }

    private static String required(Properties p, String key) {
        String v = p.getProperty(key);
        if (v == null || v.isBlank()) {
            throw new IllegalArgumentException("storage-node setting '" + key + "' is required");
        }
        return v.trim();
    }
}
