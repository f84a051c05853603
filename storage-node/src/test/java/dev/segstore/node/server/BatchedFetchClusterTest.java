package dev.segstore.node.server;

import com.google.protobuf.ByteString;
import dev.segstore.client.MetaClient;
import dev.segstore.node.replica.FollowerProgress;
import dev.segstore.node.replica.Partition;
import dev.segstore.node.replica.PartitionStatus;
import dev.segstore.protocol.NodeMethods;
import dev.segstore.protocol.meta.Segment;
import dev.segstore.protocol.meta.ShardRoute;
import dev.segstore.protocol.meta.ShardSettings;
import dev.segstore.protocol.node.DeleteRequest;
import dev.segstore.protocol.node.DeleteResponse;
import dev.segstore.protocol.node.FetchRequest;
import dev.segstore.protocol.node.ProduceRequest;
import dev.segstore.protocol.node.ProduceResponse;
import dev.segstore.protocol.node.Record;
import dev.segstore.protocol.node.SegmentRef;
import dev.segstore.protocol.rpc.RpcClient;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Follower fetches in fetch sessions per leader node (node.FetchMany, issue 14 item 8), on 3 meta and 3 storage nodes
 * in this JVM: many segments replicate through few calls per leader node, each segment's data, high watermark, ISR
 * progress and tombstones as before, and a follower that diverged still truncates.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class BatchedFetchClusterTest {
    private static final long DEADLINE_MS = 60_000;
    private static final int SHARDS = 45;
    private static final String SERVED_SINGLE = "segstore_node_requests_total{method=\"node.ReplicaFetch\",result=\"ok\"}";
    private static final String SERVED_MANY = "segstore_node_requests_total{method=\"node.FetchMany\",result=\"ok\"}";

    private InJvmCluster cluster;
    private MetaClient meta;
    private RpcClient rpc;
    /** Storage nodes whose calls to other storage nodes are dropped. */
    private final Set<Integer> cut = ConcurrentHashMap.newKeySet();

    @BeforeEach
    void start() throws Exception {
        cluster = InJvmCluster.withBatchedFetches(id -> (from, to, method) -> cut.contains(from));
        meta = new MetaClient(cluster.metaAddresses, 2_000, DEADLINE_MS);
        rpc = new RpcClient();
    }

    @AfterEach
    void stop() throws Exception {
        if (rpc != null) {
            rpc.close();
        }
        if (meta != null) {
            meta.close();
        }
        if (cluster != null) {
            cluster.close();
        }
    }

    private static void waitFor(String what, BooleanSupplier condition) {
        InJvmCluster.waitFor(what, DEADLINE_MS, condition);
    }

    private Segment openSegment(String shard) throws Exception {
        ShardRoute r = meta.route(shard).get(30, TimeUnit.SECONDS);
        return r.getSegments(r.getSegmentsCount() - 1);
    }

    private static SegmentRef ref(Segment s) {
        return SegmentRef.newBuilder().setShardId(s.getShardId()).setSequence(s.getSequence()).build();
    }

    private Partition partition(Segment s, int node) {
        StorageNode n = cluster.nodes[node];
        return n == null ? null : n.partition(s.getShardId(), s.getSequence());
    }

    private void awaitRoles(Segment s) {
        waitFor("replicas of " + s.getShard() + " to take their roles in epoch " + s.getLeaderEpoch(), () -> {
            for (int id : s.getReplicasList()) {
                if (cluster.nodes[id] == null) {
                    continue; // stopped
                }
                Partition p = partition(s, id);
                Partition.Role want = id == s.getLeader() ? Partition.Role.LEADER : Partition.Role.FOLLOWER;
                if (p == null || p.role() != want || p.leaderEpoch() != s.getLeaderEpoch()) {
                    return false;
                }
            }
            return true;
        });
    }

    private CompletableFuture<ProduceResponse> produce(Segment s, String payload, long producerId, int seq) {
        ProduceRequest req = ProduceRequest.newBuilder().setSegment(ref(s))
                .addRecords(Record.newBuilder().setTimestamp(System.currentTimeMillis()).setPayload(ByteString.copyFromUtf8(payload)))
                .setProducerId(producerId).setBaseSequence(seq).build();
        return rpc.call(cluster.address(s.getLeader()), NodeMethods.PRODUCE, req, ProduceResponse.parser(), 20_000);
    }

    /** What a consumer reads from {@code node}'s replica (up to that replica's own high watermark, deleted records left out). */
    private List<String> consume(Segment s, int node) throws Exception {
        List<String> out = new ArrayList<>();
        long offset = s.getStartOffset();
        while (true) {
            dev.segstore.client.ConsumerFetch r = dev.segstore.client.ConsumerFetch.call(rpc, cluster.address(node), FetchRequest.newBuilder()
                    .setSegment(ref(s)).setReplicaId(-1).setOffset(offset).setMaxRecords(1000).build(), 10_000).get(30, TimeUnit.SECONDS);
            if (r.nextOffset() == offset) {
                return out;
            }
            r.records().forEach(rec -> out.add(new String(rec.payload(), java.nio.charset.StandardCharsets.UTF_8)));
            offset = r.nextOffset();
        }
    }

    /** Replica fetch calls the storage nodes have answered so far: {node.Fetch of followers, node.FetchMany}. */
    private long[] served() throws Exception {
        long single = 0;
        long many = 0;
        for (int id = 1; id <= 3; id++) {
            if (cluster.nodes[id] == null) {
                continue; // stopped
            }
            double s = cluster.metric(id, SERVED_SINGLE);
            double m = cluster.metric(id, SERVED_MANY);
            single += Double.isNaN(s) ? 0 : (long) s;
            many += Double.isNaN(m) ? 0 : (long) m;
        }
        return new long[]{single, many};
    }

    @Test
    void manySegmentsReplicateThroughOneCallPerLeaderNodeEachWithItsOwnDataWatermarkProgressAndTombstones() throws Exception {
        List<Segment> segments = new ArrayList<>();
        for (int i = 0; i < SHARDS; i++) {
            meta.createShard("many-" + i, ShardSettings.newBuilder().setReplicaCount(3).setMinInSyncReplicas(2).build()).get(30, TimeUnit.SECONDS);
        }
        for (int i = 0; i < SHARDS; i++) {
            Segment s = openSegment("many-" + i);
            awaitRoles(s);
            segments.add(s);
        }
        // Three records in each shard, written at once over all shards (acknowledged once the ISR holds them), then the
        // middle one deleted (acknowledged once every ISR member holds the tombstone).
        List<CompletableFuture<ProduceResponse>> writes = new ArrayList<>();
        for (int k = 0; k < 3; k++) {
            for (Segment s : segments) {
                writes.add(produce(s, s.getShard() + "-" + k, 7, k));
            }
            CompletableFuture.allOf(writes.toArray(CompletableFuture[]::new)).get(60, TimeUnit.SECONDS);
        }
        List<CompletableFuture<DeleteResponse>> deletes = new ArrayList<>();
        for (Segment s : segments) {
            deletes.add(rpc.call(cluster.address(s.getLeader()), NodeMethods.DELETE, DeleteRequest.newBuilder().setSegment(ref(s))
                    .addOffsets(1).build(), DeleteResponse.parser(), 20_000));
        }
        for (CompletableFuture<DeleteResponse> d : deletes) {
            assertEquals(1, d.get(60, TimeUnit.SECONDS).getDeleted());
        }
        // Every replica of every segment: all three records, the leader's high watermark, the tombstone.
        for (Segment s : segments) {
            waitFor("every replica of " + s.getShard() + " to hold the records, the high watermark and the tombstone", () -> {
                for (int id : s.getReplicasList()) {
                    Partition p = partition(s, id);
                    if (p.log().logEndOffset() != 3 || p.highWatermark() != 3) {
                        return false;
                    }
                }
                return true;
            });
            for (int id : s.getReplicasList()) {
                assertEquals(List.of(s.getShard() + "-0", s.getShard() + "-2"), consume(s, id), s.getShard() + " read from node " + id);
            }
            // The leader counts each follower's progress from its fetches: both at the end, both in the ISR.
            PartitionStatus st = partition(s, s.getLeader()).status();
            assertEquals(3, st.isr().size(), s.getShard() + " ISR " + st.isr());
            assertEquals(2, st.followers().size());
            for (FollowerProgress f : st.followers()) {
                assertEquals(3, f.logEndOffset(), s.getShard() + ": progress of node " + f.nodeId());
            }
        }
        // Now quiet: every segment's followers go on fetching (long-polled). Count the calls answered until each
        // (segment, follower) pair has had a fetch answered twice: one call per pair each time without batching (at
        // least 2 x 2 x SHARDS), one per (follower node, leader node) pair and round with it.
        long[] before = served();
        for (int round = 0; round < 2; round++) {
            List<Partition> leaders = new ArrayList<>();
            List<Long> from = new ArrayList<>();
            for (Segment s : segments) {
                Partition leader = partition(s, s.getLeader());
                leaders.add(leader);
                from.add(leader.status().nowMs());
            }
            waitFor("a fetch of each follower of each segment answered", () -> {
                for (int i = 0; i < leaders.size(); i++) {
                    for (FollowerProgress f : leaders.get(i).status().followers()) {
                        if (f.lastFetchMs() <= from.get(i)) {
                            return false;
                        }
                    }
                }
                return true;
            });
        }
        long[] after = served();
        long single = after[0] - before[0];
        long many = after[1] - before[1];
        System.out.printf("%d segments, 2 followers each: %d node.Fetch and %d node.FetchMany calls answered in two rounds%n",
                SHARDS, single, many);
        assertEquals(0, single, "follower fetches sent one segment per call (node.Fetch)");
        assertTrue(many > 0 && many < SHARDS, "node.FetchMany calls answered in two rounds of " + SHARDS + " segments: " + many);
    }

    @Test
    void aFollowerThatDivergedTruncatesAndCatchesUpThroughBatchedFetches() throws Exception {
        meta.createShard("diverge", ShardSettings.newBuilder().setReplicaCount(3).setMinInSyncReplicas(2).build()).get(30, TimeUnit.SECONDS);
        Segment s = openSegment("diverge");
        awaitRoles(s);
        for (int i = 0; i < 10; i++) {
            produce(s, "a" + i, 5, i).get(30, TimeUnit.SECONDS);
        }
        int old = s.getLeader();
        // The followers stop fetching; the leader appends one record no follower gets (never acknowledged), then stops.
        for (int id : s.getReplicasList()) {
            if (id != old) {
                cut.add(id);
            }
        }
        // Calls already out end within the longest hold (replica.max.lag.ms / 3 here): wait until none has been
        // answered for longer than that, so no follower gets the next record.
        Partition oldLeader = partition(s, old);
        waitFor("the followers' calls out before the cut to end", () -> {
            PartitionStatus st = oldLeader.status();
            return st.followers().stream().allMatch(f -> st.nowMs() - f.lastFetchMs() > 700);
        });
        CompletableFuture<ProduceResponse> lost = produce(s, "lost", 5, 10);
        waitFor("the leader to hold the record no follower has", () -> oldLeader.log().logEndOffset() == 11);
        cluster.stopNode(old);
        cut.clear();
        waitFor("a new leader", () -> {
            try {
                Segment now = openSegment("diverge");
                return now.getLeader() >= 0 && now.getLeader() != old;
            } catch (Exception e) {
                return false;
            }
        });
        Segment after = openSegment("diverge");
        awaitRoles(after);
        for (int i = 0; i < 5; i++) {
            assertEquals(10 + i, produce(after, "b" + i, 6, i).get(30, TimeUnit.SECONDS).getBaseOffset());
        }
        double beforeSingle = cluster.metric(after.getLeader(), SERVED_SINGLE);
        beforeSingle = Double.isNaN(beforeSingle) ? 0 : beforeSingle;
        double beforeMany = cluster.metric(after.getLeader(), SERVED_MANY);
        cluster.startNode(old);
        // The old leader comes back as a follower: it truncates its record of the old epoch and fetches the new ones.
        waitFor("the old leader to follow in the new epoch and catch up", () -> {
            Partition p = partition(after, old);
            Partition leader = partition(after, after.getLeader());
            return p != null && p.role() == Partition.Role.FOLLOWER && p.log().logEndOffset() == 15 && p.highWatermark() == 15
                    && leader.status().isr().contains(old);
        });
        List<String> expected = new ArrayList<>();
        for (int i = 0; i < 10; i++) {
            expected.add("a" + i);
        }
        for (int i = 0; i < 5; i++) {
            expected.add("b" + i);
        }
        assertEquals(expected, consume(after, old));
        assertEquals(expected, consume(after, after.getLeader()));
        waitFor("the write to the stopped leader to end", lost::isDone);
        assertTrue(lost.isCompletedExceptionally(), "the record only the old leader held was acknowledged: " + lost);
        // (counted on the new leader's node, which answers the old leader's fetches and ran all along)
        double single = cluster.metric(after.getLeader(), SERVED_SINGLE);
        double many = cluster.metric(after.getLeader(), SERVED_MANY);
        assertEquals(beforeSingle, Double.isNaN(single) ? 0 : single, "follower fetches sent one segment per call (node.Fetch)");
        assertTrue(many > (Double.isNaN(beforeMany) ? 0 : beforeMany), "no node.FetchMany call answered");
    }
}
