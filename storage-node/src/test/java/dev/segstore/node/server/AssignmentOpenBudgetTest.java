package dev.segstore.node.server;

import dev.segstore.client.MetaClient;
import dev.segstore.log.DirectoryConfig;
import dev.segstore.log.LogConfig;
import dev.segstore.log.io.RealLogFiles;
import dev.segstore.node.index.NodeIndex;
import dev.segstore.protocol.meta.DurabilityMode;
import dev.segstore.protocol.meta.NodeAssignments;
import dev.segstore.protocol.meta.Segment;
import dev.segstore.protocol.meta.SegmentStatus;
import dev.segstore.protocol.meta.Shard;
import dev.segstore.protocol.meta.ShardSettings;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * An answer that places many new replicas on a node is applied over several heartbeats: one answer opens new replicas
 * for at most heartbeat.ms (each open forces files and directories), then leaves the rest to the next heartbeat, asked
 * for at once, and is not reported as applied. It opened all of them in one go: with 1,000 shards created at once the
 * control thread, which also sends the heartbeats, was busy past the session timeout and the controller fenced the node.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class AssignmentOpenBudgetTest {
    @TempDir
    Path tmp;

    @Test
    void manyNewReplicasAreOpenedOverSeveralHeartbeats() throws Exception {
        int count = 10;
        long heartbeatMs = 200;
        NodeConfig config = new NodeConfig(1, "127.0.0.1", 0, tmp.resolve("data"), List.of("127.0.0.1:1"), heartbeatMs, 1_000,
                DirectoryConfig.DEFAULT, LogConfig.DEFAULT, 2, 0);
        // Every reading of the replicas' clock moves it 50 ms on: opening replicas takes time, deterministically.
        AtomicLong clock = new AtomicLong();
        AtomicInteger heartbeatsAsked = new AtomicInteger();
        Map<Hosted.Key, Hosted> hosted = new ConcurrentHashMap<>();
        Map<Integer, String> addresses = new ConcurrentHashMap<>();
        try (DataDirectories dirs = DataDirectories.open(List.of(tmp.resolve("data")), DirectoryConfig.DEFAULT, RealLogFiles.INSTANCE,
                System::currentTimeMillis);
             NodeIndex index = new NodeIndex(tmp.resolve("index"));
             MetaClient meta = new MetaClient(List.of("127.0.0.1:1"), 100, 100);
             ShardOwners owners = new ShardOwners(1, "test-owner");
             ReplicaFetchers fetchers = new ReplicaFetchers(1, 1_000, null, addresses, owners,
                     StorageNode.PeerFaults.NONE, (k, h) -> false, () -> { }, null, true, (segment, shard) -> { })) {
            AssignmentReconciler reconciler = new AssignmentReconciler(config, dirs, index, meta, new MetaCalls(1, StorageNode.PeerFaults.NONE),
                    hosted, addresses, fetchers, heartbeatsAsked::incrementAndGet, name -> { }, () -> false, () -> clock.addAndGet(50), Runnable::run);
            NodeAssignments.Builder a = NodeAssignments.newBuilder().setMetadataVersion(7);
            for (int i = 1; i <= count; i++) {
                a.addShards(Shard.newBuilder().setName("s" + i).setShardId(i).setSettings(ShardSettings.newBuilder().setReplicaCount(1)
                        .setMinInSyncReplicas(1).setDurability(DurabilityMode.PAGE_CACHE)));
                a.addSegments(Segment.newBuilder().setShard("s" + i).setShardId(i).setSequence(0).setStatus(SegmentStatus.OPEN)
                        .setEndOffset(-1).addReplicas(1).setLeader(1).setLeaderEpoch(0).addIsr(1).setIsrVersion(0).setCreatedVersion(i));
            }
            reconciler.apply(a.build(), clock.get());
            int first = hosted.size();
            assertTrue(first >= 1 && first < count, "one answer opens new replicas for heartbeat.ms at most: opened " + first + " of " + count);
            assertEquals(-1, reconciler.appliedVersion(), "not applied in full: not reported as applied");
            assertEquals(1, heartbeatsAsked.get(), "the next heartbeat is asked for at once");
            for (int round = 0; round < count && hosted.size() < count; round++) {
                reconciler.apply(a.build(), clock.get());
            }
            assertEquals(count, hosted.size());
            assertEquals(7, reconciler.appliedVersion());
            hosted.values().forEach(h -> assertEquals(dev.segstore.node.replica.Partition.Role.LEADER, h.partition.role()));
        }
    }
}
