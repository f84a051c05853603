package dev.segstore.node.server;

import dev.segstore.adapter.ShardConfig;
import dev.segstore.client.MetaClient;
import dev.segstore.client.SegmentStorageAdapter;
import dev.segstore.protocol.meta.DurabilityMode;
import dev.segstore.protocol.meta.ShardRoute;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.Arrays;
import java.util.Objects;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Issue 14 item 7: while a roll commits, the meta leader tells the next segment's replicas of it (their held
 * {@code meta.WatchAssignments} answered with it as upcoming), and they make its log then, so that the committed
 * segment finds its log made (and its leader's epoch checkpoint written) instead of making them on the writes' path.
 * Here several rolls run under writes: the next segments' replicas must take logs made ahead, and every acknowledged
 * record must read back. Before, no log was made before its roll committed.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class PreparedRollClusterTest {
    private static final int ROLLS = 4;
    private InJvmCluster cluster;
    private SegmentStorageAdapter adapter;
    private MetaClient meta;

    @AfterEach
    void stop() throws Exception {
        InJvmCluster.closeAll(adapter, meta, cluster);
    }

    private long openSequence(String shard) throws Exception {
        ShardRoute r = meta.route(shard).get(10, TimeUnit.SECONDS);
        return r.getSegments(r.getSegmentsCount() - 1).getSequence();
    }

    private long preparedTaken() {
        return Arrays.stream(cluster.nodes).filter(Objects::nonNull).mapToLong(StorageNode::preparedLogsTaken).sum();
    }

    @Test
    void theNextSegmentsReplicasTakeLogsMadeWhileTheRollCommitted() throws Exception {
        // Logs made while the roll commits are the controller's placement at a roll: not with close ahead.
        cluster = InJvmCluster.withCloseAhead(id -> StorageNode.PeerFaults.NONE, InJvmCluster.Timings.DEFAULT, false);
        meta = new MetaClient(cluster.metaAddresses, 2_000, 30_000);
        adapter = new SegmentStorageAdapter(new SegmentStorageAdapter.Settings(cluster.metaAddresses, 30_000, 2_000, DurabilityMode.FSYNC));
        adapter.createShard(ShardConfig.of("prepared", SegmentStorageAdapter.STORAGE_TYPE).withReplication(3, 2)
                .withSegmentBytes(64 * 1024)).get(30, TimeUnit.SECONDS);
        AckedWriters writers = new AckedWriters(adapter, "prepared", 4);
        writers.start();
        try {
            writers.awaitAcked(50, 20_000);
            long first = openSequence("prepared");
            InJvmCluster.waitFor(ROLLS + " rolls", 60_000, () -> {
                try {
                    return openSequence("prepared") >= first + ROLLS;
                } catch (Exception e) {
                    return false; // a route read that failed: asked again
                }
            });
            writers.awaitAcked(writers.ackedCount() + 50, 20_000);
        } finally {
            writers.stopAndJoin();
        }
        long taken = preparedTaken();
        System.out.printf("PreparedRollClusterTest: %d replica logs of next segments made while their roll committed, over %d rolls%n",
                taken, ROLLS);
        // Three replicas a roll; a node whose watch was not held at the moment (just answered) makes its log later.
        assertTrue(taken >= ROLLS, taken + " logs made ahead and taken over " + ROLLS + " rolls");
        int read = AckedWriters.verifyReadBack(adapter, "prepared", writers.acked());
        assertTrue(read >= writers.ackedCount(), "read back " + read + " of " + writers.ackedCount() + " acknowledged records");
    }
}
