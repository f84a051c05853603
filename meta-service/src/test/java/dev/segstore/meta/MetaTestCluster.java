package dev.segstore.meta;

import dev.segstore.client.MetaClient;
import dev.segstore.meta.server.MetaConfig;
import dev.segstore.meta.server.MetaPeer;
import dev.segstore.meta.server.MetaServer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.function.BooleanSupplier;
import java.util.stream.Stream;

/**
 * An in-JVM meta-service group on loopback for tests: start, find the leader, stop and restart nodes (a
 * restarted node keeps its data directory, so it comes back from its snapshot and log).
 */
final class MetaTestCluster implements AutoCloseable {
    static final long DEADLINE_MS = 30_000;
    private final Path root;
    private final List<MetaConfig> configs = new ArrayList<>();
    private final MetaServer[] servers;

    MetaTestCluster(int size, long sessionTimeoutMs, int snapshotIntervalSecs) throws Exception {
        this(size, sessionTimeoutMs, snapshotIntervalSecs, 600);
    }

    /** @param electionTimeoutMs the Raft election timeout of every node (600 ms above) */
    MetaTestCluster(int size, long sessionTimeoutMs, int snapshotIntervalSecs, int electionTimeoutMs) throws Exception {
        root = Files.createTempDirectory("meta-cluster-");
        servers = new MetaServer[size];
        // A port found free can be taken by another socket before we bind it: pick new ports and try again.
        for (int attempt = 1; ; attempt++) {
            List<MetaPeer> peers = new ArrayList<>();
            for (int i = 0; i < size; i++) {
                peers.add(dev.segstore.meta.server.TestPorts.freeMetaPeer());
            }
            configs.clear();
            for (int i = 0; i < size; i++) {
                configs.add(new MetaConfig(peers.get(i), peers, root.resolve("a" + attempt + "-meta-" + i), electionTimeoutMs,
                        snapshotIntervalSecs, sessionTimeoutMs));
            }
            try {
                for (int i = 0; i < size; i++) {
                    start(i);
                }
                return;
            } catch (Exception e) {
                for (int i = 0; i < size; i++) {
                    if (servers[i] != null) {
                        stop(i);
                    }
                }
                if (attempt == 3) {
                    throw e;
                }
            }
        }
    }


    void start(int i) throws Exception {
        servers[i] = MetaServer.start(configs.get(i));
    }

    void stop(int i) {
        servers[i].close();
        servers[i] = null;
    }

    MetaServer server(int i) {
        return servers[i];
    }

    int size() {
        return servers.length;
    }

    List<String> rpcAddresses() {
        return configs.stream().map(c -> c.self().rpcAddress()).toList();
    }

    MetaClient client() {
        return new MetaClient(rpcAddresses(), 2_000, DEADLINE_MS);
    }

    /** Waits for a leader among the running nodes; returns its index. */
    int awaitLeader() {
        int[] found = {-1};
        waitFor("a meta-service leader", () -> {
            for (int i = 0; i < servers.length; i++) {
                if (servers[i] != null && servers[i].isLeader()) {
                    found[0] = i;
                    return true;
                }
            }
            return false;
        });
        return found[0];
    }

    Optional<Integer> runningFollower() {
        for (int i = 0; i < servers.length; i++) {
            if (servers[i] != null && !servers[i].isLeader()) {
                return Optional.of(i);
            }
        }
        return Optional.empty();
    }

    static void waitFor(String what, BooleanSupplier condition) {
        long end = System.nanoTime() + DEADLINE_MS * 1_000_000L;
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > end) {
                throw new AssertionError("timed out after " + DEADLINE_MS + " ms waiting for " + what);
            }
            // Poll, not spin: on 2 cores a spinning test thread takes CPU from the Raft group it waits for.
            java.util.concurrent.locks.LockSupport.parkNanos(1_000_000L);
        }
    }

    @Override
    public void close() throws IOException {
        for (int i = 0; i < servers.length; i++) {
            if (servers[i] != null) {
                stop(i);
            }
        }
        try (Stream<Path> s = Files.walk(root)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }
}
