package dev.segstore.node.server;

import dev.segstore.adapter.NewRecord;
import dev.segstore.adapter.ShardConfig;
import dev.segstore.client.MetaClient;
import dev.segstore.client.SegmentStorageAdapter;
import dev.segstore.node.replica.Partition;
import dev.segstore.protocol.MetaMethods;
import dev.segstore.protocol.meta.DurabilityMode;
import dev.segstore.protocol.meta.Segment;
import dev.segstore.protocol.meta.SegmentStatus;
import dev.segstore.protocol.meta.ShardRoute;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Issue 14 item 7, close ahead (docs/architecture.md, "Close ahead"): a segment's leader asks the controller to close
 * it before it is full, and once it is full hands the shard over to the next segment at its end without waiting for
 * the seal to commit. Here no storage node's seal request ({@code meta.RollSegment}) reaches the meta-service until
 * writes have gone on in the next segment: without close ahead no roll commits and writes stop at the first
 * segment's end.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class CloseAheadClusterTest {
    private volatile boolean sealsLost = true;
    private InJvmCluster cluster;
    private SegmentStorageAdapter adapter;
    private MetaClient meta;

    @AfterEach
    void stop() throws Exception {
        sealsLost = false;
        InJvmCluster.closeAll(adapter, meta, cluster);
    }

    private ShardRoute route(String shard) {
        try {
            return meta.route(shard).get(10, TimeUnit.SECONDS);
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    /** Creates shard {@code name} (3 replicas, min ISR 2, 64 KiB segments) and answers its first segment. */
    private Segment createShard(String name) throws Exception {
        adapter.createShard(ShardConfig.of(name, SegmentStorageAdapter.STORAGE_TYPE).withReplication(3, 2)
                .withSegmentBytes(64 * 1024)).get(30, TimeUnit.SECONDS);
        return route(name).getSegments(0);
    }

    /** Starts the cluster, close ahead on, whose storage nodes' seal requests are lost while {@link #sealsLost}. */
    private void startCluster() throws Exception {
        StorageNode.PeerFaults faults = new StorageNode.PeerFaults() {
            @Override
            public boolean drop(int fromNode, String toAddress, String method) {
                return false;
            }

            @Override
            public StorageNode.MetaDrop metaDrop(int fromNode, String method) {
                return sealsLost && method.equals(MetaMethods.ROLL_SEGMENT) ? StorageNode.MetaDrop.REQUEST : StorageNode.MetaDrop.NONE;
            }
        };
        cluster = InJvmCluster.withCloseAhead(id -> faults, new InJvmCluster.Timings(600, 30_000, 300, 5_000), true);
        meta = new MetaClient(cluster.metaAddresses, 2_000, 30_000);
        adapter = new SegmentStorageAdapter(new SegmentStorageAdapter.Settings(cluster.metaAddresses, 30_000, 2_000, DurabilityMode.FSYNC));
    }

    @Test
    void writesGoOnIntoTheNextSegmentBeforeTheSealIsRecorded() throws Exception {
        startCluster();
        Segment first = createShard("ahead");
        assertEquals(dev.segstore.meta.state.MetaState.MAX_FEATURE_LEVEL, meta.describeCluster().get(30, TimeUnit.SECONDS).getFeatureLevel(),
                "a new cluster takes its build's feature level before its first shard");
        long shardId = first.getShardId();
        AckedWriters writers = new AckedWriters(adapter, "ahead", 4);
        writers.start();
        Partition next;
        try {
            InJvmCluster.waitFor("the first segment closing", 30_000, () -> route("ahead").getSegments(0).getClosingVersion() != 0);
            StorageNode leader = cluster.nodes[first.getLeader()];
            InJvmCluster.waitFor("the next segment led and acknowledging on node " + first.getLeader(), 30_000, () -> {
                Partition p = leader.partition(shardId, 1);
                return p != null && p.role() == Partition.Role.LEADER && p.highWatermark() > p.log().logStartOffset();
            });
            next = leader.partition(shardId, 1);
            long start = next.log().logStartOffset();
            // Its log was made while the first segment closed, and moved to the end handed over at (the roll thread
            // makes it before it takes the hand-over: both are queued there, the making first).
            assertTrue(leader.aheadLogsTaken() >= 1, "the next segment's log on its leader was made while the segment before it closed");
            assertTrue(leader.aheadLogsTakenWithEpoch() >= 1, "with the epoch it is led in already in its checkpoint");
            int acked = writers.ackedCount();
            writers.awaitAcked(acked + 50, 20_000);
            assertTrue(writers.acked().keySet().stream().anyMatch(o -> o >= start), "writes acknowledged in the next segment, from " + start);
            ShardRoute during = route("ahead");
            assertEquals(1, during.getSegmentsCount(), "no seal recorded: " + during);
            assertEquals(SegmentStatus.OPEN, during.getSegments(0).getStatus());
            System.out.printf("CloseAheadClusterTest: %d writes acknowledged, the next segment from %d led before its seal was recorded%n",
                    writers.ackedCount(), start);

            sealsLost = false;
            InJvmCluster.waitFor("the seal recorded", 30_000, () -> route("ahead").getSegmentsCount() >= 2);
            ShardRoute after = route("ahead");
            Segment sealed = after.getSegments(0);
            Segment second = after.getSegments(1);
            assertEquals(SegmentStatus.SEALED, sealed.getStatus());
            assertEquals(start, sealed.getEndOffset(), "sealed where the leader handed over");
            assertEquals(start, second.getStartOffset());
            assertEquals(first.getReplicasList(), second.getReplicasList());
            assertEquals(first.getLeader(), second.getLeader());
            assertEquals(sealed.getLeaderEpoch(), second.getLeaderEpoch());
            int now = writers.ackedCount();
            writers.awaitAcked(now + 50, 20_000);
        } finally {
            writers.stopAndJoin();
        }
        int read = AckedWriters.verifyReadBack(adapter, "ahead", writers.acked());
        assertTrue(read >= writers.ackedCount(), "read back " + read + " of " + writers.ackedCount() + " acknowledged records");
    }

    private long write(String shard, Map<Long, String> acked, int i) throws Exception {
        String text = ("r" + i + "-").repeat(1024).substring(0, 1024); // 1 KiB: the segment asks to close after about 48 writes
        long offset = adapter.write(shard, NewRecord.of(i, text.getBytes(java.nio.charset.StandardCharsets.UTF_8)))
                .get(30, TimeUnit.SECONDS);
        acked.put(offset, text);
        return offset;
    }

    /**
     * A follower of a closing segment that restarts between the close and the hand-over, still in the ISR, takes the
     * next segment from the hand-over like the others, before the seal is recorded, and replicates it.
     */
    @Test
    void aFollowerRestartedWhileTheSegmentClosesTakesTheNextSegmentBeforeTheSeal() throws Exception {
        startCluster();
        Segment first = createShard("restart");
        long shardId = first.getShardId();
        Map<Long, String> acked = new HashMap<>();
        int i = 0;
        // One write at a time until the segment is closing (asked at three quarters of its 64 KiB): a quarter is left.
        while (route("restart").getSegments(0).getClosingVersion() == 0) {
            write("restart", acked, i++);
            assertTrue(i < 200, "the segment never closed");
        }
        int follower = first.getReplicasList().stream().filter(id -> id != first.getLeader()).findFirst().orElseThrow();
        // A crash and a quick restart, as after a power loss: no controlled shutdown takes it out of the ISR, and the
        // controllers' probe of its port times out (a machine down) rather than fencing it at once.
        cluster.machineDown(follower);
        cluster.stopNodeAbruptly(follower);
        cluster.startNode(follower);
        StorageNode restarted = cluster.nodes[follower];
        InJvmCluster.waitFor("node " + follower + " hosting the closing segment again", 30_000,
                () -> restarted.partition(shardId, 0) != null);
        System.out.printf("CloseAheadClusterTest: node %d restarted; the closing segment's ISR %s%n", follower,
                route("restart").getSegments(0).getIsrList());

        // Writes fill the segment, its leader hands over, and go on in the next one.
        StorageNode leader = cluster.nodes[first.getLeader()];
        long start = -1;
        while (start < 0) {
            long offset = write("restart", acked, i++);
            Partition next = leader.partition(shardId, 1);
            if (next != null && offset >= next.log().logStartOffset()) {
                start = next.log().logStartOffset();
            }
            assertTrue(i < 400, "no write reached the next segment");
        }
        for (int k = 0; k < 20; k++) {
            write("restart", acked, i++);
        }
        long from = start;
        InJvmCluster.waitFor("node " + follower + " holding the next segment's records", 30_000, () -> {
            Partition p = restarted.partition(shardId, 1);
            return p != null && p.role() == Partition.Role.FOLLOWER && p.log().logEndOffset() > from;
        });
        ShardRoute during = route("restart");
        assertEquals(1, during.getSegmentsCount(), "taken before the seal was recorded: " + during);
        assertTrue(leader.partition(shardId, 1).isr().contains(follower), "the restarted node is in the next segment's ISR: "
                + leader.partition(shardId, 1).isr());

        sealsLost = false;
        InJvmCluster.waitFor("the seal recorded", 30_000, () -> route("restart").getSegmentsCount() >= 2);
        int read = AckedWriters.verifyReadBack(adapter, "restart", acked);
        assertTrue(read >= acked.size(), "read back " + read + " of " + acked.size() + " acknowledged records");
    }

    /**
     * A next segment led before the seal of the one before it is recorded, which grows to its own close-ahead size
     * meanwhile, closes ahead once that seal is recorded: its leader does not ask while the controller does not know it
     * (which would refuse the close for good, and the segment would roll the ordinary way), and asks once it does.
     */
    @Test
    void aSegmentLedAheadOfTheSealBeforeItClosesAheadOnceThatSealIsRecorded() throws Exception {
        startCluster();
        Segment first = createShard("late");
        long shardId = first.getShardId();
        StorageNode leader = cluster.nodes[first.getLeader()];
        Map<Long, String> acked = new HashMap<>();
        int i = 0;
        // One write at a time: the first segment closes at 48 KiB and is handed over at 64 KiB; its seal lost, the next
        // segment grows past its own close-ahead size (48 KiB more), where its leader is due to ask to close it.
        Partition next = null;
        while (next == null || next.log().sizeInBytes() < 52 * 1024) {
            long offset = write("late", acked, i++);
            Partition p = leader.partition(shardId, 1);
            next = p != null && offset >= p.log().logStartOffset() ? p : null;
            assertTrue(i < 400, "the next segment never grew to 52 KiB");
        }
        Partition n = next;
        assertEquals(1, route("late").getSegmentsCount(), "no seal recorded yet");
        assertEquals(0, n.closeRequests(), "no close asked while the controller does not know the segment (it would refuse it for good)");

        sealsLost = false;
        InJvmCluster.waitFor("the seal recorded", 30_000, () -> route("late").getSegmentsCount() >= 2);
        InJvmCluster.waitFor("the seal known on the leader", 30_000, () -> leader.partition(shardId, 0).sealRecorded());
        int[] count = {i};
        InJvmCluster.waitFor("the next segment closing, or sealed", 30_000, () -> {
            if (n.closingCommitted() || n.knownSealEnd() >= 0) {
                return true;
            }
            try {
                write("late", acked, count[0]++);
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
            return false;
        });
        assertTrue(n.closingCommitted(), "segment 1 closed ahead once the seal before it was recorded, at "
                + n.log().sizeInBytes() + " bytes (a close refused for good rolls it the ordinary way once full)");
        int read = AckedWriters.verifyReadBack(adapter, "late", acked);
        assertTrue(read >= acked.size(), "read back " + read + " of " + acked.size() + " acknowledged records");
    }
}
