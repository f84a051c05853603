package dev.segstore.meta.server;

import dev.segstore.protocol.rpc.TlsConfig;

import java.io.IOException;
import java.io.Reader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.Set;

/**
 * Configuration of one meta-service node, read from a properties file by {@link #load}. Every key, default and
 * range is in this one place and in docs/configuration.md.
 *
 * @param self                   this node, one of {@code peers}
 * @param peers                  the whole group: 1, 3 or 5 members
 * @param dataDir                Raft log, Raft metadata and snapshots
 * @param electionTimeoutMs      Raft election timeout
 * @param snapshotIntervalSecs   how often a snapshot is taken
 * @param sessionTimeoutMs       a storage node that sends no heartbeat for this long is fenced
 * @param metricsPort            port of the Prometheus endpoint ({@code /metrics}) on this node's host; -1: none,
 *                               0: any free port
 * @param replicaReassignAfterMs a storage node not alive for this long loses its replicas that are not in an ISR to
 *                               live nodes ({@link ReplicaReassigner}); -1: never
 * @param rpcBindPort            the port the RPC server listens on (on {@code self}'s host); -1: {@code self}'s RPC
 *                               port. Differs from it when a proxy listens on the RPC port {@code peers} names
 *                               (what clients are told to follow as the leader's address) and forwards here
 * @param tls                    TLS on the RPC port ({@code tls.*} keys, docs/security.md), or null: plain TCP. The
 *                               Raft port is not covered: see docs/security.md
 */
public record MetaConfig(MetaPeer self, List<MetaPeer> peers, Path dataDir, int electionTimeoutMs,
                         int snapshotIntervalSecs, long sessionTimeoutMs, int metricsPort, long replicaReassignAfterMs,
                         int rpcBindPort, TlsConfig tls) {

    private static final Set<String> KEYS = keys();

    private static Set<String> keys() {
        Set<String> k = new java.util.HashSet<>(Set.of("self", "peers", "data.dir", "election.timeout.ms",
                "snapshot.interval.secs", "session.timeout.ms", "metrics.port", "replica.reassign.after.ms", "rpc.bind.port"));
        k.addAll(TlsConfig.KEYS);
        return Set.copyOf(k);
    }
    /** 15 minutes: longer than a restart or a reboot, short enough not to run under-replicated for hours. */
    public static final long DEFAULT_REPLICA_REASSIGN_AFTER_MS = 15 * 60 * 1000L;

    /** Without a metrics endpoint. */
    public MetaConfig(MetaPeer self, List<MetaPeer> peers, Path dataDir, int electionTimeoutMs, int snapshotIntervalSecs,
                      long sessionTimeoutMs) {
        this(self, peers, dataDir, electionTimeoutMs, snapshotIntervalSecs, sessionTimeoutMs, -1);
    }

    /** With the default {@code replica.reassign.after.ms}. */
    public MetaConfig(MetaPeer self, List<MetaPeer> peers, Path dataDir, int electionTimeoutMs, int snapshotIntervalSecs,
                      long sessionTimeoutMs, int metricsPort) {
        this(self, peers, dataDir, electionTimeoutMs, snapshotIntervalSecs, sessionTimeoutMs, metricsPort, DEFAULT_REPLICA_REASSIGN_AFTER_MS);
    }

    /** The RPC server listening on {@code self}'s RPC port, without TLS. */
    public MetaConfig(MetaPeer self, List<MetaPeer> peers, Path dataDir, int electionTimeoutMs, int snapshotIntervalSecs,
                      long sessionTimeoutMs, int metricsPort, long replicaReassignAfterMs) {
        this(self, peers, dataDir, electionTimeoutMs, snapshotIntervalSecs, sessionTimeoutMs, metricsPort, replicaReassignAfterMs, -1, null);
    }

    /** Without TLS. */
    public MetaConfig(MetaPeer self, List<MetaPeer> peers, Path dataDir, int electionTimeoutMs, int snapshotIntervalSecs,
                      long sessionTimeoutMs, int metricsPort, long replicaReassignAfterMs, int rpcBindPort) {
        this(self, peers, dataDir, electionTimeoutMs, snapshotIntervalSecs, sessionTimeoutMs, metricsPort, replicaReassignAfterMs, rpcBindPort, null);
    }

    /** The RPC server listening on {@code self}'s RPC port. */
    public MetaConfig(MetaPeer self, List<MetaPeer> peers, Path dataDir, int electionTimeoutMs, int snapshotIntervalSecs,
                      long sessionTimeoutMs, int metricsPort, long replicaReassignAfterMs, TlsConfig tls) {
        this(self, peers, dataDir, electionTimeoutMs, snapshotIntervalSecs, sessionTimeoutMs, metricsPort, replicaReassignAfterMs, -1, tls);
    }

    public MetaConfig {
        if (rpcBindPort < -1 || rpcBindPort > 65535) {
            throw new IllegalArgumentException("rpc.bind.port = " + rpcBindPort + " must be in 0..65535");
        }
        if (replicaReassignAfterMs < sessionTimeoutMs && replicaReassignAfterMs != -1) {
            throw new IllegalArgumentException("replica.reassign.after.ms = " + replicaReassignAfterMs
                    + " must be -1 (never) or at least session.timeout.ms (" + sessionTimeoutMs + ")");
        }
        if (metricsPort < -1 || metricsPort > 65535) {
            throw new IllegalArgumentException("metrics.port = " + metricsPort + " must be in 0..65535 (or -1: none)");
        }
        peers = List.copyOf(peers);
        if (!Set.of(1, 3, 5).contains(peers.size())) {
            throw new IllegalArgumentException("peers: a meta-service group has 1, 3 or 5 members, got " + peers.size());
        }
        if (!peers.contains(self)) {
            throw new IllegalArgumentException("self " + self + " is not one of peers " + peers);
        }
        if (electionTimeoutMs < 100 || electionTimeoutMs > 60_000) {
            throw new IllegalArgumentException("election.timeout.ms = " + electionTimeoutMs + " must be in 100..60000");
        }
        if (snapshotIntervalSecs < 1) {
            throw new IllegalArgumentException("snapshot.interval.secs = " + snapshotIntervalSecs + " must be >= 1");
        }
        if (sessionTimeoutMs < 2L * electionTimeoutMs) {
            throw new IllegalArgumentException("session.timeout.ms = " + sessionTimeoutMs
                    + " must be at least twice election.timeout.ms (" + electionTimeoutMs + ") so a meta leader change does not fence storage nodes");
        }
    }

    public static MetaConfig load(Path file) throws IOException {
        Properties p = new Properties();
        try (Reader r = Files.newBufferedReader(file)) {
            p.load(r);
        }
        return fromProperties(p, file.getParent() == null ? Path.of(".") : file.getParent());
    }

    /** Builds a config from properties; a relative {@code data.dir} is resolved against {@code base}. */
    public static MetaConfig fromProperties(Properties p, Path base) {
        for (String key : p.stringPropertyNames()) {
            if (!KEYS.contains(key)) {
                throw new IllegalArgumentException("unknown meta-service setting '" + key + "' (known: " + KEYS + ")");
            }
        }
        MetaPeer self = MetaPeer.parse(required(p, "self"));
        List<MetaPeer> peers = new ArrayList<>();
        for (String s : required(p, "peers").split(",")) {
            peers.add(MetaPeer.parse(s));
        }
        Path dataDir = base.resolve(required(p, "data.dir"));
        return new MetaConfig(self, peers, dataDir, intValue(p, "election.timeout.ms", 1000),
                intValue(p, "snapshot.interval.secs", 300), intValue(p, "session.timeout.ms", 6000), intValue(p, "metrics.port", -1),
                longValue(p, "replica.reassign.after.ms", DEFAULT_REPLICA_REASSIGN_AFTER_MS), intValue(p, "rpc.bind.port", -1),
                TlsConfig.fromSettings(p::getProperty, base, "meta-service settings"));
    }

    private static String required(Properties p, String key) {
        String v = p.getProperty(key);
        if (v == null || v.isBlank()) {
            throw new IllegalArgumentException("meta-service setting '" + key + "' is required");
        }
        return v.trim();
    }

    private static long longValue(Properties p, String key, long def) {
        String v = p.getProperty(key);
        if (v == null) {
            return def;
        }
        try {
            return Long.parseLong(v.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("meta-service setting '" + key + "' = '" + v + "' is not a number");
        }
    }

    private static int intValue(Properties p, String key, int def) {
        long v = longValue(p, key, def);
        if (v != (int) v) {
            throw new IllegalArgumentException("meta-service setting '" + key + "' = " + v + " is out of range");
        }
        return (int) v;
    }

    /** The port this node's RPC server listens on: {@code rpc.bind.port}, else {@code self}'s RPC port. */
    public int listenRpcPort() {
        return rpcBindPort < 0 ? self.rpcPort() : rpcBindPort;
    }

    /** The RPC address of the peer whose Raft address is {@code raftAddress}, or empty. */
    public String rpcAddressOf(String raftAddress) {
        for (MetaPeer peer : peers) {
            if (peer.raftAddress().equals(raftAddress)) {
                return peer.rpcAddress();
            }
        }
        return "";
    }
}
