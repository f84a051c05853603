package dev.segstore.node.server;

import dev.segstore.adapter.ShardConfig;
import dev.segstore.client.MetaClient;
import dev.segstore.client.SegmentStorageAdapter;
import dev.segstore.protocol.MetaMethods;
import dev.segstore.protocol.meta.DurabilityMode;
import dev.segstore.protocol.meta.ShardRoute;
import org.junit.jupiter.api.AfterEach;
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
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class RollHandOverClusterTest {
    private static final int ROLLS = 3;
    private volatile boolean heartbeatsLost;
    private InJvmCluster cluster;
    private SegmentStorageAdapter adapter;
    private MetaClient meta;

    private void start(boolean batchedFetches, boolean closeAhead) throws Exception {
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
        cluster = InJvmCluster.withTimings(id -> faults, new InJvmCluster.Timings(600, 300_000, 300, 1_000), batchedFetches, closeAhead);
        meta = new MetaClient(cluster.metaAddresses, 2_000, 30_000);
        adapter = new SegmentStorageAdapter(new SegmentStorageAdapter.Settings(cluster.metaAddresses, 30_000, 2_000, DurabilityMode.FSYNC));
    }

    @AfterEach
    void stop() throws Exception {
        heartbeatsLost = false;
        InJvmCluster.closeAll(adapter, meta, cluster);
    }

    private long openSequence(String shard) throws Exception {
        ShardRoute r = meta.route(shard).get(10, TimeUnit.SECONDS);
        return r.getSegments(r.getSegmentsCount() - 1).getSequence();
    }

    /** The ordinary roll (close ahead off): the next segment comes from the roll's answer. */
    @Test
    void writesGoOnAcrossRollsWithNoHeartbeatAnswered() throws Exception {
        writesGoOnAcrossRolls(false, false);
    }

    /** The same with follower fetches batched per leader node: the next segment comes in a node.FetchMany entry. */
    @Test
    void writesGoOnAcrossRollsWithNoHeartbeatAnsweredAndBatchedFetches() throws Exception {
        writesGoOnAcrossRolls(true, false);
    }

    /**
     * With close ahead (the default): the leader learns of the close from its own request's answer and hands over
     * before the seal; its followers, whose heartbeats are lost too, learn of the next segment from its fetch answers.
     */
    @Test
    void writesGoOnAcrossRollsWithNoHeartbeatAnsweredAndCloseAhead() throws Exception {
        writesGoOnAcrossRolls(true, true);
    }

    private void writesGoOnAcrossRolls(boolean batchedFetches, boolean closeAhead) throws Exception {
        start(batchedFetches, closeAhead);
        adapter.createShard(ShardConfig.of("handover", SegmentStorageAdapter.STORAGE_TYPE).withReplication(3, 2)
                .withSegmentBytes(64 * 1024)).get(30, TimeUnit.SECONDS);
        AckedWriters writers = new AckedWriters(adapter, "handover", 4);
        writers.start();
        try {
            writers.awaitAcked(50, 20_000);
            heartbeatsLost = true;
            long first = openSequence("handover");
            long cutAt = System.nanoTime();
            InJvmCluster.waitFor(ROLLS + " rolls while no storage node's heartbeat reaches the meta-service", 40_000, () -> {
                try {
                    return openSequence("handover") >= first + ROLLS;
                } catch (Exception e) {
                    return false; // a route read that failed: asked again
                }
            });
            int acked = writers.ackedCount();
            writers.awaitAcked(acked + 50, 20_000);
            System.out.printf("RollHandOverClusterTest (fetches %s, close ahead %s): %d rolls in %d ms with every heartbeat lost%n",
                    batchedFetches ? "batched" : "one by one", closeAhead ? "on" : "off", ROLLS, TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - cutAt));
        } finally {
            writers.stopAndJoin();
        }
        heartbeatsLost = false;
        int read = AckedWriters.verifyReadBack(adapter, "handover", writers.acked());
        assertTrue(read >= writers.ackedCount(), "read back " + read + " of " + writers.ackedCount() + " acknowledged records");
    }
}
