package dev.segstore.node.server;

import dev.segstore.adapter.ShardConfig;
import dev.segstore.client.MetaClient;
import dev.segstore.client.SegmentStorageAdapter;
import dev.segstore.meta.server.MetaConfig;
import dev.segstore.protocol.MetaMethods;
import dev.segstore.protocol.meta.DurabilityMode;
import dev.segstore.protocol.meta.ShardRoute;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Issue 14 item 7: a roll hands the next segment over at once. The leader that asked for the roll takes its part of
 * the next segment from the controller's answer, and sends the next segment to its followers in their fetch answers
 * (node.proto, {@code FetchResponse.next_segment}); none of them waits for a heartbeat to learn of it. Here every
 * storage node's heartbeats and assignment watches are dropped on their way to the meta-service once writes run
 * (rolls and ISR changes still reach it): writes must go on across several rolls. Before, the next segment's
 * replicas learnt of it only from a heartbeat's answer, so the first roll stopped every write.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class RollHandOverClusterTest {
    private static final int ROLLS = 3;
    private volatile boolean heartbeatsLost;
    private InJvmCluster cluster;
    private SegmentStorageAdapter adapter;
    private MetaClient meta;

    @BeforeEach
    void start() throws Exception {
        StorageNode.PeerFaults faults = new StorageNode.PeerFaults() {
            @Override
            public boolean drop(int fromNode, String toAddress, String method) {
                return false;
            }

            @Override
            public StorageNode.MetaDrop metaDrop(int fromNode, String method) {
                boolean learning = method.equals(MetaMethods.HEARTBEAT) || method.equals(MetaMethods.WATCH_ASSIGNMENTS);
                return heartbeatsLost && learning ? StorageNode.MetaDrop.REQUEST : StorageNode.MetaDrop.NONE;
            }
        };
        // A session far longer than the test: nodes whose heartbeats are lost are not fenced meanwhile.
        cluster = new InJvmCluster(id -> faults, id -> dev.segstore.log.io.RealLogFiles.INSTANCE,
                MetaConfig.DEFAULT_REPLICA_REASSIGN_AFTER_MS, new InJvmCluster.Timings(600, 300_000, 300, 1_000));
        meta = new MetaClient(cluster.metaAddresses, 2_000, 30_000);
        adapter = new SegmentStorageAdapter(new SegmentStorageAdapter.Settings(cluster.metaAddresses, 30_000, 2_000, DurabilityMode.FSYNC));
    }

    @AfterEach
    void stop() throws Exception {
        heartbeatsLost = false;
        InJvmCluster.closeAll(adapter, meta, cluster);
    }

    private long openSequence(String shard) {
        try {
            ShardRoute r = meta.route(shard).get(30, TimeUnit.SECONDS);
            return r.getSegments(r.getSegmentsCount() - 1).getSequence();
        } catch (Exception e) {
            return -1;
        }
    }

    @Test
    void writesGoOnAcrossRollsWithNoHeartbeatAnswered() throws Exception {
        adapter.createShard(ShardConfig.of("handover", SegmentStorageAdapter.STORAGE_TYPE).withReplication(3, 2)
                .withSegmentBytes(64 * 1024)).get(30, TimeUnit.SECONDS);
        AckedWriters writers = new AckedWriters(adapter, "handover", 4);
        writers.start();
        try {
            writers.awaitAcked(50, 30_000);
            heartbeatsLost = true;
            long first = openSequence("handover");
            long cutAt = System.nanoTime();
            InJvmCluster.waitFor(ROLLS + " rolls while no storage node's heartbeat reaches the meta-service", 60_000,
                    () -> openSequence("handover") >= first + ROLLS);
            int acked = writers.ackedCount();
            writers.awaitAcked(acked + 50, 30_000);
            System.out.printf("RollHandOverClusterTest: %d rolls in %d ms with every heartbeat lost%n", ROLLS,
                    TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - cutAt));
        } finally {
            writers.stopAndJoin();
        }
        heartbeatsLost = false;
        int read = AckedWriters.verifyReadBack(adapter, "handover", writers.acked());
        assertTrue(read >= writers.ackedCount(), "read back " + read + " of " + writers.ackedCount() + " acknowledged records");
    }
}
