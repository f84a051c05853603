package dev.segstore.node.server;

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
 * @param dataDir         the data directory (one I/O thread)
 * @param metaAddresses   RPC addresses of the meta-service nodes
 * @param heartbeatMs     heartbeat period to the meta-service (well below its session timeout)
 * @param replicaMaxLagMs a follower not caught up for this long leaves the ISR
 */
public record NodeConfig(int nodeId, String host, int port, Path dataDir, List<String> metaAddresses,
                         long heartbeatMs, long replicaMaxLagMs) {
    private static final Set<String> KEYS = Set.of("node.id", "host", "port", "data.dir", "meta.addresses",
            "heartbeat.ms", "replica.max.lag.ms");

    public NodeConfig {
        metaAddresses = List.copyOf(metaAddresses);
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
        return new NodeConfig(Integer.parseInt(required(p, "node.id")), required(p, "host"),
                Integer.parseInt(required(p, "port")), base.resolve(required(p, "data.dir")),
                Arrays.stream(required(p, "meta.addresses").split(",")).map(String::trim).toList(),
                Long.parseLong(p.getProperty("heartbeat.ms", "500").trim()),
                Long.parseLong(p.getProperty("replica.max.lag.ms", "10000").trim()));
    }

    private static String required(Properties p, String key) {
        String v = p.getProperty(key);
        if (v == null || v.isBlank()) {
            throw new IllegalArgumentException("storage-node setting '" + key + "' is required");
        }
        return v.trim();
    }
}
