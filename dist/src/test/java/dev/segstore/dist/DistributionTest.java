package dev.segstore.dist;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Runs the launchers of the distribution this module just assembled (target/segstore-VERSION/bin), as an operator
 * would: a bad configuration fails with one line and a non-zero exit, and a meta node and a storage node started
 * from it serve the admin and client tools. Processes are started here and stopped by their PIDs (SIGTERM).
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class DistributionTest {
    private static final Path DIST = Path.of(System.getProperty("segstore.dist", "target/segstore-dist-not-built"));

    @TempDir
    Path dir;
    private final List<Process> started = new ArrayList<>();

    @AfterEach
    void stop() throws InterruptedException {
        for (Process p : started) {
            p.destroy(); // SIGTERM, to this PID only
        }
        for (Process p : started) {
            if (!p.waitFor(30, TimeUnit.SECONDS)) {
                p.destroyForcibly();
            }
        }
    }

    private record Result(int exit, String out, String err) {
    }

    private ProcessBuilder launcher(String name, String... args) {
        List<String> command = new ArrayList<>();
        command.add(DIST.resolve("bin").resolve(name).toString());
        command.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(command).directory(dir.toFile());
        pb.environment().put("SEGSTORE_HEAP", "-Xmx256m");
        pb.environment().put("SEGSTORE_LOG_DIR", dir.resolve("logs").toString());
        return pb;
    }

    private Result run(String name, String... args) throws Exception {
        Path out = Files.createTempFile(dir, name, ".out");
        Path err = Files.createTempFile(dir, name, ".err");
        Process p = launcher(name, args).redirectOutput(out.toFile()).redirectError(err.toFile()).start();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), name + " did not finish");
        return new Result(p.exitValue(), Files.readString(out), Files.readString(err));
    }

    private void start(String name, String... args) throws IOException {
        started.add(launcher(name, args).redirectOutput(dir.resolve(name + ".stdout").toFile())
                .redirectError(dir.resolve(name + ".stderr").toFile()).start());
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    /** meta.properties (a group of one) and node.properties in the test's directory, on free ports; the meta RPC address. */
    private String writeConfigs() throws IOException {
        int raft = freePort();
        int rpc = freePort();
        int data = freePort();
        String meta = "127.0.0.1:" + rpc;
        Files.writeString(dir.resolve("meta.properties"), String.join("\n", "self=127.0.0.1:" + raft + ":" + rpc,
                "peers=127.0.0.1:" + raft + ":" + rpc, "data.dir=meta-data", "election.timeout.ms=500", "session.timeout.ms=3000", ""));
        Files.writeString(dir.resolve("node.properties"), String.join("\n", "node.id=1", "host=127.0.0.1", "port=" + data,
                "data.dir=node-data", "meta.addresses=" + meta, "heartbeat.ms=200", ""));
        return meta;
    }

    /** Waits for the storage node to register with the meta-service at {@code meta}, then creates shard "demo" (1 replica). */
    private void createDemoShardOnceRegistered(String meta) throws Exception {
        waitFor("the storage node to register", () -> {
            try {
                return run("segstore-admin", "--meta", meta, "describe").out().contains("ALIVE");
            } catch (Exception e) {
                return false;
            }
        });
        Result created = run("segstore-admin", "--meta", meta, "create-shard", "demo", "--replicas", "1", "--min-isr", "1");
        assertEquals(0, created.exit(), created.toString());
    }

    private static void waitFor(String what, java.util.function.BooleanSupplier condition) {
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > end) {
                throw new AssertionError("timed out waiting for " + what);
            }
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(200)); // poll: each try starts a JVM
        }
    }

    @Test
    void theDistributionHasItsLaunchersLibrariesAndSampleConfiguration() {
        for (String f : List.of("bin/segstore-meta", "bin/segstore-node", "bin/segstore-server", "bin/segstore-admin", "bin/segstore-client",
                "bin/segstore-perf", "bin/segstore-log", "config/meta.properties", "config/node.properties", "config/logback.xml", "lib", "README.md")) {
            assertTrue(Files.exists(DIST.resolve(f)), DIST.resolve(f) + " is missing");
        }
        assertTrue(Files.isExecutable(DIST.resolve("bin/segstore-meta")));
        assertTrue(Files.exists(DIST.getParent().resolve(DIST.getFileName() + ".tar.gz")), "the tarball");
    }

    @Test
    void aBadConfigurationFailsWithOneClearLine() throws Exception {
        Result missing = run("segstore-meta", "--config", "nowhere.properties");
        assertEquals(2, missing.exit(), missing.toString());
        assertEquals("segstore-meta: no such file: nowhere.properties", missing.err().strip());
        Path bad = dir.resolve("bad.properties");
        Files.writeString(bad, "node.id=1\nhost=127.0.0.1\nport=0\ndata.dir=d\nmeta.addresses=127.0.0.1:1\nheartbeat.msec=5\n");
        Result unknown = run("segstore-node", "--config", bad.toString());
        assertEquals(2, unknown.exit(), unknown.toString());
        assertEquals(1, unknown.err().strip().lines().count(), "one line, no stack trace: " + unknown.err());
        assertTrue(unknown.err().contains("heartbeat.msec"), unknown.err());
    }

    @Test
    void aClusterStartedFromTheDistributionServesTheTools() throws Exception {
        String meta = writeConfigs();
        start("segstore-meta", "--config", dir.resolve("meta.properties").toString());
        start("segstore-node", "--config", dir.resolve("node.properties").toString());
        createDemoShardOnceRegistered(meta);
        Result produced = run("segstore-client", "--meta", meta, "produce", "demo", "one", "two", "three");
        assertEquals(0, produced.exit(), produced.toString());
        Result consumed = run("segstore-client", "--meta", meta, "consume", "demo");
        assertEquals(0, consumed.exit(), consumed.toString());
        assertTrue(consumed.out().contains("one") && consumed.out().contains("three"), consumed.out());
        // The log tool reads the running node's segment files (read only) and finds them in good order.
        Result verified = run("segstore-log", "verify", dir.resolve("node-data").toString());
        assertEquals(0, verified.exit(), verified.toString());
        assertTrue(verified.out().contains("1 log(s) checked, 0 problem(s)") && verified.out().contains("3 record(s)"), verified.out());
        Path log = dir.resolve("logs").resolve("segstore-meta.log");
        assertTrue(Files.readString(log, StandardCharsets.UTF_8).contains("Starting meta node with"), "the effective configuration is logged in " + log);
        assertFalse(Files.readString(dir.resolve("logs").resolve("segstore-node.log")).isEmpty());
    }

    /**
     * Combined mode (issue 14, item 2): one {@code segstore-server} process runs a meta node (a group of one here)
     * and a storage node, each from its own file; the tools use it as they use the two apart; a bad file of either
     * starts nothing and says so in one line.
     */
    @Test
    void aCombinedProcessRunsAMetaNodeAndAStorageNode() throws Exception {
        String meta = writeConfigs();
        Result missing = run("segstore-server", "--meta-config", dir.resolve("meta.properties").toString(), "--node-config", "nowhere.properties");
        assertEquals(2, missing.exit(), missing.toString());
        assertEquals("segstore-server: no such file: nowhere.properties", missing.err().strip());

        start("segstore-server", "--meta-config", dir.resolve("meta.properties").toString(), "--node-config", dir.resolve("node.properties").toString());
        createDemoShardOnceRegistered(meta);
        Result produced = run("segstore-client", "--meta", meta, "produce", "demo", "one", "two");
        assertEquals(0, produced.exit(), produced.toString());
        Result consumed = run("segstore-client", "--meta", meta, "consume", "demo");
        assertTrue(consumed.out().contains("one") && consumed.out().contains("two"), consumed.out());
        String log = Files.readString(dir.resolve("logs").resolve("segstore-server.log"), StandardCharsets.UTF_8);
        assertTrue(log.contains("Starting meta node with") && log.contains("Starting storage node with"), "both configurations logged");
    }

    @Test
    void theGrafanaDashboardUsesOnlyDocumentedMetrics() throws Exception {
        String dashboard = Files.readString(DIST.resolve("config/grafana-dashboard.json"), StandardCharsets.UTF_8);
        String docs = Files.readString(Path.of("..", "docs", "configuration.md"), StandardCharsets.UTF_8);
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("\\b((?:segstore|jvm)_[a-z_]+)").matcher(dashboard);
        int found = 0;
        while (m.find()) {
            String name = m.group(1).replaceAll("_(bucket|count|sum)$", "");
            String base = name.replaceAll("_total$", "");
            assertTrue(docs.contains("`" + name) || docs.contains("`" + base) || name.startsWith("jvm_") && docs.contains("`jvm_*`"),
                    "the dashboard queries " + m.group(1) + ", which docs/configuration.md does not list");
            found++;
        }
        assertTrue(found >= 14, "one query a panel at least: " + found);
    }
}
