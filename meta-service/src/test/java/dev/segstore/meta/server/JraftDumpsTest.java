package dev.segstore.meta.server;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * sofa-jraft answers SIGUSR2 by writing node_describe.log, node_metrics.log and thread_pool_metrics.log files; they
 * went to the working directory (97 of them, 242 MB, ended up tracked in git). A meta node now sends them to a
 * directory of its data directory. The test signals its own JVM (by its PID) while a meta node runs.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class JraftDumpsTest {
    @TempDir
    Path dir;


    private static List<String> dumpsIn(Path d) throws Exception {
        if (!Files.isDirectory(d)) {
            return List.of();
        }
        try (Stream<Path> s = Files.list(d)) {
            return s.map(p -> p.getFileName().toString())
                    .filter(n -> n.startsWith("node_describe.log") || n.startsWith("node_metrics.log") || n.startsWith("thread_pool_metrics.log"))
                    .sorted().toList();
        }
    }

    @Test
    void sigusr2DumpsGoToTheDataDirectoryNotTheWorkingDirectory() throws Exception {
        Path cwd = Path.of("").toAbsolutePath();
        List<String> before = dumpsIn(cwd);
        MetaPeer self = dev.segstore.meta.server.TestPorts.freeMetaPeer();
        try (MetaServer server = MetaServer.start(new MetaConfig(self, List.of(self), dir.resolve("meta"), 600, 300, 2_000))) {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (!server.isLeader()) {
                assertTrue(System.nanoTime() < deadline, "no leader");
                java.util.concurrent.locks.LockSupport.parkNanos(1_000_000L); // poll, not spin: 2 cores
            }
            // jraft fixes the directory when its first node of this JVM is created: this node's, or an earlier test's.
            String target = System.getProperty("jraft.signal.node.describe.dir");
            assertNotNull(target, "the meta node directs the dumps");
            Path dumps = Path.of(target);
            List<String> already = dumpsIn(dumps);
            Process kill = new ProcessBuilder("kill", "-USR2", Long.toString(ProcessHandle.current().pid())).start();
            assertEquals(0, kill.waitFor(), "kill -USR2 to this JVM");
            while (dumpsIn(dumps).size() <= already.size()) {
                assertTrue(System.nanoTime() < deadline, "no dump written to " + dumps);
                java.util.concurrent.locks.LockSupport.parkNanos(1_000_000L); // poll, not spin: 2 cores
            }
            assertTrue(dumps.toString().endsWith("jraft-dumps"), dumps.toString());
        }
        assertEquals(before, dumpsIn(cwd), "nothing written to the working directory " + cwd);
    }
}
