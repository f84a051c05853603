package dev.segstore.it.faults;

import dev.segstore.adapter.NewRecord;
import dev.segstore.adapter.ShardConfig;
import dev.segstore.client.SegmentStorageAdapter;
import dev.segstore.node.replica.ControlledFaultyFiles;
import dev.segstore.node.server.InJvmCluster;
import dev.segstore.protocol.meta.DescribeClusterResponse;
import dev.segstore.protocol.meta.DurabilityMode;
import dev.segstore.protocol.meta.NodeState;
import dev.segstore.protocol.meta.ShardRoute;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Disk faults of storage node processes (issue 12): the nodes of {@link ProcCluster} run on
 * {@link ControlledFaultyFiles} (the test-only {@code test.log.files.class}); failing a node's segment writes
 * through its control file takes its data directory offline, which it reports and the controller fences it for;
 * a crash losing the page cache halts the node's JVM, which starts again on the same directory.
 */
class ProcessDiskFaultTest {
    private static NodeState state(ProcCluster cluster, int id) {
        DescribeClusterResponse d = cluster.describe();
        return d == null ? null : d.getNodesList().stream().filter(n -> n.getNodeId() == id).map(n -> n.getState()).findFirst().orElse(null);
    }

    /** The page cache id node {@code id} registered with (RegisterNodeRequest.page_cache_id). */
    private static String pageCacheId(ProcCluster cluster, int id) {
        DescribeClusterResponse d = cluster.describe();
        return d == null ? null : d.getNodesList().stream().filter(n -> n.getNodeId() == id).map(n -> n.getPageCacheId()).findFirst().orElse(null);
    }

    private static long write(SegmentStorageAdapter admin, String shard, int i) throws Exception {
        return admin.write(shard, NewRecord.of(System.currentTimeMillis(), ("r" + i).getBytes(StandardCharsets.UTF_8))).get(30, TimeUnit.SECONDS);
    }

    @Test
    @Timeout(value = 300, unit = TimeUnit.SECONDS)
    void failedWritesFenceTheNodeAndACrashLosingThePageCacheHaltsIt() throws Exception {
        try (ProcCluster cluster = ProcCluster.start(Path.of("target/proc-runs/disk-" + System.currentTimeMillis()))) {
            boolean passed = false;
            try {
                SegmentStorageAdapter admin = cluster.admin(DurabilityMode.FSYNC);
                String shard = "disk-faults";
                admin.createShard(ShardConfig.of(shard, SegmentStorageAdapter.STORAGE_TYPE).withReplication(3, 2)).get(30, TimeUnit.SECONDS);
                write(admin, shard, 0);
                ShardRoute route = cluster.harness.route(shard).get(5, TimeUnit.SECONDS);
                int leader = route.getSegments(route.getSegmentsCount() - 1).getLeader();
                System.out.println("ProcessDiskFaultTest: failing the segment writes of node " + leader + ", the leader");

                cluster.setDisk(leader, "write-enospc");
                int[] i = {1};
                InJvmCluster.waitFor("node " + leader + " fenced for its offline data directory", 60_000, () -> {
                    try {
                        write(admin, shard, i[0]++); // retried at another leader once this one's directory failed
                    } catch (Exception e) {
                        System.out.println("ProcessDiskFaultTest: write failed: " + e);
                    }
                    return state(cluster, leader) == NodeState.FENCED;
                });
                assertEquals(NodeState.FENCED, state(cluster, leader));

                cluster.setDisk(leader, "none");
                String boot = pageCacheId(cluster, leader);
                assertEquals(java.nio.file.Files.readString(Path.of("/proc/sys/kernel/random/boot_id")).trim(), boot,
                        "a node on this machine registers with the kernel's boot id");
                cluster.kill(ProcCluster.nodeName(leader));
                cluster.restart(ProcCluster.nodeName(leader));
                cluster.awaitHealthy(90_000);
                write(admin, shard, i[0]++);
                assertEquals(boot, pageCacheId(cluster, leader), "a process kill keeps the page cache: the same id");

                int other = leader % 3 + 1;
                String how = cluster.crashLosingPageCache(other, 42);
                System.out.println("ProcessDiskFaultTest: node " + other + " " + how);
                assertEquals("halted with exit code " + ControlledFaultyFiles.CRASH_EXIT, how);
                cluster.restart(ProcCluster.nodeName(other));
                cluster.awaitHealthy(90_000);
                write(admin, shard, i[0]++);
                InJvmCluster.waitFor("node " + other + " registered again after its crash", 60_000,
                        () -> !boot.equals(pageCacheId(cluster, other)));
                String after = pageCacheId(cluster, other);
                assertTrue(after.startsWith("crashed-42-"), "a crash losing the page cache is a new boot: " + after);
                passed = true;
            } finally {
                if (!passed) {
                    cluster.keep();
                    System.out.println(cluster.report());
                }
            }
        }
    }
}
