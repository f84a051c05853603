package dev.segstore.node.server;

import dev.segstore.adapter.ShardConfig;
import dev.segstore.client.MetaClient;
import dev.segstore.client.SegmentStorageAdapter;
import dev.segstore.node.replica.Partition;
import dev.segstore.protocol.meta.DurabilityMode;
import dev.segstore.protocol.meta.Segment;
import dev.segstore.protocol.meta.ShardRoute;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Controlled shutdown (issue 13 item 2) in a whole in-JVM cluster: the storage node that leads a shard (3 replicas,
 * min ISR 2) is stopped as its SIGTERM hook stops it while writers write through the client without pause. Its
 * leadership moves before it goes, so acknowledgements stall for far less than the session timeout (2 s here; a
 * node that just left was noticed only after it), and every acknowledged write reads back once.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class ControlledShutdownClusterTest {
    private static final int WRITERS = 4;
    private static final long SESSION_TIMEOUT_MS = 2_000;
    private InJvmCluster cluster;
    private SegmentStorageAdapter adapter;
    private MetaClient meta;

    @BeforeEach
    void start() throws Exception {
        cluster = new InJvmCluster();
        meta = new MetaClient(cluster.metaAddresses, 2_000, 30_000);
        adapter = new SegmentStorageAdapter(new SegmentStorageAdapter.Settings(cluster.metaAddresses, 30_000, 2_000, DurabilityMode.FSYNC));
        adapter.createShard(ShardConfig.of("orders", SegmentStorageAdapter.STORAGE_TYPE).withReplication(3, 2)).get(30, TimeUnit.SECONDS);
    }

    @AfterEach
    void stop() throws Exception {
        if (adapter != null) {
            adapter.close();
        }
        if (meta != null) {
            meta.close();
        }
        if (cluster != null) {
            cluster.close();
        }
    }

    private Segment openSegment() throws Exception {
        ShardRoute r = meta.route("orders").get(30, TimeUnit.SECONDS);
        return r.getSegments(r.getSegmentsCount() - 1);
    }

    @Test
    void aLeaderStoppedGracefullyHandsOverBeforeItGoesAndWritesBarelyStall() throws Exception {
        Segment before = openSegment();
        int leader = before.getLeader();
        InJvmCluster.waitFor("node " + leader + " to lead", 30_000, () -> {
            Partition p = cluster.nodes[leader].partition(before.getShardId(), before.getSequence());
            return p != null && p.role() == Partition.Role.LEADER;
        });
        AckedWriters writers = new AckedWriters(adapter, "orders", WRITERS);
        writers.start();
        writers.awaitAcked(300, 30_000);

        writers.watchGapsFromNow();
        long stopping = System.nanoTime();
        cluster.stopNodeGracefully(leader);
        double stopMs = (System.nanoTime() - stopping) / 1e6;
        writers.awaitAcked(writers.ackedCount() + 300, 30_000);
        writers.stopAndJoin();

        double stallMs = writers.longestGapMs();
        System.out.printf("node %d stopped gracefully in %.0f ms; longest pause between acknowledgements: %.0f ms (session timeout %d ms)%n",
                leader, stopMs, stallMs, SESSION_TIMEOUT_MS);
        Segment after = openSegment();
        assertTrue(after.getLeader() != leader && after.getLeader() >= 0, "leadership moved: " + after);
        assertFalse(after.getIsrList().contains(leader), "the stopped node left the ISR: " + after);
        assertTrue(stallMs < 1_000, "writes stalled " + stallMs + " ms: the leadership moved only once the node's session expired");
        AckedWriters.verifyReadBack(adapter, "orders", writers.acked()); // every acknowledged write is there, once
    }
}
