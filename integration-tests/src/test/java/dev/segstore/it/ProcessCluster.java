package dev.segstore.it;

import dev.segstore.client.MetaClient;
import dev.segstore.node.server.InJvmCluster;
import dev.segstore.protocol.meta.NodeState;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A cluster of real processes on loopback, as an operator runs it: 3 meta-service nodes and 3 storage nodes,
 * each a JVM started from this test's class path with its own properties file. Processes are stopped by their
 * own handle (never by name); {@link #kill} is a SIGKILL (kill -9).
 */
final class ProcessCluster implements AutoCloseable {
    final Path root;
    final List<String> metaRpcAddresses = new ArrayList<>();
    final Process[] metas = new Process[3];
    final Process[] nodes = new Process[4]; // index = node id 1..3

    /** Stops the processes if the test JVM ends without {@link #close()} (a crash, a failed set-up). */
    private final Thread reaper = new Thread(this::destroyAll, "process-cluster-reaper");

    ProcessCluster() throws Exception {
        root = Files.createTempDirectory("segstore-proc-");
        Runtime.getRuntime().addShutdownHook(reaper);
        try {
            startAll();
        } catch (Exception | Error e) {
            destroyAll();
            throw e;
        }
    }

    private void startAll() throws Exception {
        // A port found free can be taken by another socket before the meta process binds it, and that process
        // then exits: start the group again on new ports (and fresh directories) when one does not come up.
        for (int attempt = 1; !startMetas(); attempt++) {
            if (attempt == 3) {
                throw new AssertionError("the meta-service processes did not all start, 3 times\n" + report());
            }
            System.out.printf("a meta-service process did not start (attempt %d), trying new ports%n%s", attempt, report());
            destroyAll();
            metaRpcAddresses.clear();
            for (int i = 0; i < 3; i++) {
                InJvmCluster.deleteTree(root.resolve("meta-" + i));
            }
        }
        for (int id = 1; id <= 3; id++) {
            Path dir = Files.createDirectories(root.resolve("node-" + id));
            Files.writeString(dir.resolve("node.properties"), String.join("\n",
                    "node.id=" + id, "host=127.0.0.1", "port=0", "data.dir=data",
                    "meta.addresses=" + String.join(",", metaRpcAddresses), "heartbeat.ms=200", "replica.max.lag.ms=1000", "read.lease.ms=1000",
                    "segment.close.ahead=" + InJvmCluster.CLOSE_AHEAD, ""));
            nodes[id] = start(dir, "dev.segstore.node.server.StorageNodeMain", "node.properties");
        }
    }

    /** Starts the three meta processes on free ports; true once each serves its RPC port, false if one ended. */
    private boolean startMetas() throws IOException {
        List<String> peers = new ArrayList<>();
        List<Integer> rpcPorts = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            int raft = InJvmCluster.freePort();
            int rpc = InJvmCluster.freePort();
            peers.add("127.0.0.1:" + raft + ":" + rpc);
            metaRpcAddresses.add("127.0.0.1:" + rpc);
            rpcPorts.add(rpc);
        }
        for (int i = 0; i < 3; i++) {
            Path dir = Files.createDirectories(root.resolve("meta-" + i));
            Files.writeString(dir.resolve("meta.properties"), String.join("\n",
                    "self=" + peers.get(i), "peers=" + String.join(",", peers), "data.dir=data",
                    "election.timeout.ms=600", "snapshot.interval.secs=300", "session.timeout.ms=2000", ""));
            metas[i] = start(dir, "dev.segstore.meta.server.MetaServerMain", "meta.properties");
        }
        InJvmCluster.waitFor("the meta-service processes to serve or end", 90_000, () -> {
            for (int i = 0; i < 3; i++) {
                if (metas[i].isAlive() && !accepts(rpcPorts.get(i))) {
                    return false;
                }
            }
            return true;
        });
        return java.util.Arrays.stream(metas).allMatch(Process::isAlive);
    }

    private static boolean accepts(int port) {
        try (java.net.Socket s = new java.net.Socket()) {
            s.connect(new java.net.InetSocketAddress(java.net.InetAddress.getLoopbackAddress(), port), 200);
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    private Process start(Path dir, String mainClass, String config) throws IOException {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        // The project's runtime logging (INFO), not the tests' quieter one that is on this class path.
        Path logback = Path.of("..", "config", "logback.xml").toAbsolutePath().normalize();
        return new ProcessBuilder(java, "-Xmx256m", "-XX:TieredStopAtLevel=1", "-Dlogback.configurationFile=" + logback,
                "-cp", System.getProperty("java.class.path"), mainClass, "--config", dir.resolve(config).toString())
                .directory(dir.toFile())
                .redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(dir.resolve("process.log").toFile()))
                .start();
    }

    /**
     * Waits until the meta-service counts three live storage nodes. On a timeout the error says which processes
     * have ended and shows the end of every process's log, so a failed start can be told from a slow one.
     */
    void awaitThreeLiveNodes(MetaClient meta, String what, long timeoutMs) {
        try {
            InJvmCluster.waitFor(what, timeoutMs, () -> liveNodes(meta) == 3);
        } catch (AssertionError timedOut) {
            throw new AssertionError(timedOut.getMessage() + "\n" + report(), timedOut);
        }
    }

    /** Storage nodes the meta-service counts as alive, or -1 when it does not answer. */
    static int liveNodes(MetaClient meta) {
        try {
            return (int) meta.describeCluster().get(10, TimeUnit.SECONDS).getNodesList().stream()
                    .filter(n -> n.getState() == NodeState.ALIVE).count();
        } catch (Exception e) {
            return -1;
        }
    }

    /** Each process: alive or its exit code, and the last lines of its log. */
    String report() {
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < metas.length; i++) {
            describe(out, "meta-" + i, metas[i]);
        }
        for (int id = 1; id < nodes.length; id++) {
            describe(out, "node-" + id, nodes[id]);
        }
        return out.toString();
    }

    private void describe(StringBuilder out, String name, Process p) {
        out.append("--- ").append(name).append(": ")
                .append(p == null ? "not started" : p.isAlive() ? "alive (pid " + p.pid() + ")" : "ended with exit code " + p.exitValue())
                .append('\n');
        Path log = root.resolve(name).resolve("process.log");
        try {
            List<String> lines = Files.exists(log) ? Files.readAllLines(log) : List.of();
            lines.subList(Math.max(0, lines.size() - LOG_LINES), lines.size()).forEach(l -> out.append("    ").append(l).append('\n'));
        } catch (IOException | java.io.UncheckedIOException e) {
            out.append("    (log unreadable: ").append(e).append(")\n");
        }
    }

    private static final int LOG_LINES = 25;

    /** Starts storage node {@code id} again on its own data directory (after a kill). */
    void restartNode(int id) throws IOException {
        nodes[id] = start(root.resolve("node-" + id), "dev.segstore.node.server.StorageNodeMain", "node.properties");
    }

    /** Starts meta-service node {@code i} again on its own data directory (after a kill). */
    void restartMeta(int i) throws IOException {
        metas[i] = start(root.resolve("meta-" + i), "dev.segstore.meta.server.MetaServerMain", "meta.properties");
    }

    /** SIGSTOP (pause, as a long GC pause or a hung host would) or SIGCONT, by the process's own PID. */
    static void signal(Process p, String signal) throws IOException, InterruptedException {
        Process kill = new ProcessBuilder("kill", "-" + signal, Long.toString(p.pid())).inheritIO().start();
        if (!kill.waitFor(30, TimeUnit.SECONDS) || kill.exitValue() != 0) {
            throw new AssertionError("kill -" + signal + " " + p.pid() + " failed");
        }
    }

    /** kill -9: the process gets no chance to flush or say goodbye. */
    static void kill(Process p) throws InterruptedException {
        p.destroyForcibly();
        if (!p.waitFor(30, TimeUnit.SECONDS)) {
            throw new AssertionError("process " + p.pid() + " did not die");
        }
    }

    /** Stops every process (SIGTERM, then SIGKILL after 20 s) and keeps their directories. */
    void destroyAll() {
        List<Process> all = new ArrayList<>(java.util.Arrays.asList(metas));
        all.addAll(java.util.Arrays.asList(nodes)); // nodes[0] is unused (null)
        for (Process p : all) {
            if (p != null && p.isAlive()) {
                p.destroy();
            }
        }
        for (Process p : all) {
            try {
                if (p != null && !p.waitFor(20, TimeUnit.SECONDS)) {
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
        destroyAll();
        try {
            Runtime.getRuntime().removeShutdownHook(reaper);
        } catch (IllegalStateException shuttingDown) {
            // the hook runs anyway
        }
        InJvmCluster.deleteTree(root);
    }
}
