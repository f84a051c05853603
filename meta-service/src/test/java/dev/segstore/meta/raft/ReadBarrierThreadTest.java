package dev.segstore.meta.raft;

import dev.segstore.meta.server.MetaConfig;
import dev.segstore.meta.server.MetaPeer;
import dev.segstore.meta.server.MetaServer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What waits on a read barrier runs on the meta-service's own callback thread, never on a jraft thread: the
 * meta-service's heartbeat handling, run on the thread that completed the ReadIndex closure, called back into
 * jraft (isLeader, the node's read lock) while jraft held the closure's monitor, and deadlocked the meta leader
 * with jraft's read-index thread and a queued writer (found by the fault schedules; the jstack is described in
 * docs/architecture.md). On the code before, the barriers complete on jraft's read-only-service thread.
 */
@Timeout(60)
class ReadBarrierThreadTest {
    @TempDir
    Path dir;


    @Test
    void whatWaitsOnAReadBarrierRunsOffJraftsThreads() throws Exception {
        MetaPeer self = dev.segstore.meta.server.TestPorts.freeMetaPeer();
        try (MetaServer server = MetaServer.start(new MetaConfig(self, List.of(self), dir.resolve("meta"), 600, 300, 2_000))) {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (!server.isLeader()) {
                assertTrue(System.nanoTime() < deadline, "no leader");
                LockSupport.parkNanos(1_000_000L);
            }
            List<String> threads = new ArrayList<>();
            for (int i = 0; i < 20; i++) {
                threads.add(server.raft().readBarrier().thenApply(v -> Thread.currentThread().getName()).get(10, TimeUnit.SECONDS));
            }
            List<String> onJraft = threads.stream().filter(t -> !t.equals("meta-raft-callbacks") && !t.equals(Thread.currentThread().getName())).toList();
            assertEquals(List.of(), onJraft, "barriers completed on other threads than meta-raft-callbacks: " + threads);
        }
    }
}
