package dev.segstore.node.server;

import dev.segstore.protocol.NodeMethods;
import com.google.protobuf.ByteString;
import dev.segstore.adapter.ErrorCode;
import dev.segstore.client.MetaClient;
import dev.segstore.node.replica.Partition;
import dev.segstore.protocol.meta.Segment;
import dev.segstore.protocol.meta.ShardRoute;
import dev.segstore.protocol.meta.ShardSettings;
import dev.segstore.protocol.node.FetchRequest;
import dev.segstore.protocol.node.FetchResponse;
import dev.segstore.protocol.node.ProduceRequest;
import dev.segstore.protocol.node.ProduceResponse;
import dev.segstore.protocol.node.Record;
import dev.segstore.protocol.node.SegmentRef;
import dev.segstore.protocol.rpc.RpcClient;
import dev.segstore.protocol.rpc.RpcException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * 3 meta-service nodes and 3 storage nodes in this JVM, on loopback, over the real RPC: writes with acks from
 * the whole ISR, reads capped at the high watermark, and the loss of the leading storage node.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class StorageClusterTest {
    private static final long DEADLINE_MS = 30_000;
    private InJvmCluster cluster;
    private StorageNode[] nodes;
    private MetaClient meta;
    private RpcClient rpc;
    /** Storage nodes whose calls to other storage nodes are dropped (a network partition of their fetches). */
    private final java.util.Set<Integer> partitioned = java.util.concurrent.ConcurrentHashMap.newKeySet();
    /** Per storage node: how long its calls to other storage nodes are held back (a slow link). */
    private final Map<Integer, Long> delayedMs = new java.util.concurrent.ConcurrentHashMap<>();

    /** Per storage node: a file layer whose segment writes a test can make fail (a failing disk). */
    private final dev.segstore.node.replica.FaultyFiles[] disks = {null, new dev.segstore.node.replica.FaultyFiles(),
            new dev.segstore.node.replica.FaultyFiles(), new dev.segstore.node.replica.FaultyFiles()};

    @BeforeEach
    void start() throws Exception {
        cluster = new InJvmCluster(id -> new StorageNode.PeerFaults() {
            @Override
            public boolean drop(int from, String to, String method) {
                return partitioned.contains(from);
            }

            @Override
            public long delayMs(int from, String to, String method) {
                return delayedMs.getOrDefault(from, 0L);
            }
        }, id -> disks[id]);
        nodes = cluster.nodes;
        meta = new MetaClient(cluster.metaAddresses, 2_000, DEADLINE_MS);
        rpc = new RpcClient();
    }

    @AfterEach
    void stop() throws IOException {
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

    private dev.segstore.protocol.node.ReplicaStatusResponse replicaStatus(Segment s, int node) throws Exception {
        return rpc.call(cluster.address(node), NodeMethods.REPLICA_STATUS, dev.segstore.protocol.node.ReplicaStatusRequest.newBuilder()
                        .setSegment(SegmentRef.newBuilder().setShardId(s.getShardId()).setSequence(s.getSequence())).build(),
                dev.segstore.protocol.node.ReplicaStatusResponse.parser(), 10_000).get(30, TimeUnit.SECONDS);
    }

    private double metaMetric(String sample) {
        try {
            return cluster.metaLeaderMetric(sample);
        } catch (Exception e) {
            return Double.NaN;
        }
    }

    /** Waits until storage node {@code node}'s metrics endpoint shows {@code value} for {@code sample}. */
    private void awaitMetric(int node, String sample, double value) {
        waitFor(sample + " = " + value + " on node " + node, () -> {
            try {
                return cluster.metric(node, sample) == value;
            } catch (Exception e) {
                return false;
            }
        });
    }

    /** Waits until the controller's committed ISR of the shard's open segment does (or does not) hold {@code node}. */
    private void awaitIsr(String shard, int node, boolean in) {
        waitFor("node " + node + (in ? " to join" : " to leave") + " the ISR of " + shard, () -> {
            try {
                return openSegment(shard).getIsrList().contains(node) == in;
            } catch (Exception e) {
                return false;
            }
        });
    }

    private Segment openSegment(String shard) throws Exception {
        ShardRoute r = meta.route(shard).get(30, TimeUnit.SECONDS);
        return r.getSegments(r.getSegmentsCount() - 1);
    }

    private void awaitRoles(Segment s) {
        waitFor("replicas to take their roles in epoch " + s.getLeaderEpoch(), () -> {
            for (int id : s.getReplicasList()) {
                if (nodes[id] == null) {
                    continue;
                }
                Partition p = nodes[id].partition(s.getShardId(), s.getSequence());
                Partition.Role want = id == s.getLeader() ? Partition.Role.LEADER : Partition.Role.FOLLOWER;
                if (p == null || p.role() != want || p.leaderEpoch() != s.getLeaderEpoch()) {
                    return false;
                }
            }
            return true;
        });
    }

    private ProduceResponse produce(Segment s, String payload, long producerId, int seq) throws Exception {
        ProduceRequest req = ProduceRequest.newBuilder().setSegment(SegmentRef.newBuilder().setShardId(s.getShardId()).setSequence(s.getSequence()))
                .addRecords(Record.newBuilder().setTimestamp(System.currentTimeMillis()).setPayload(ByteString.copyFromUtf8(payload)))
                .setProducerId(producerId).setBaseSequence(seq).build();
        try {
            return rpc.call(cluster.address(s.getLeader()), NodeMethods.PRODUCE, req, ProduceResponse.parser(), 10_000).get(30, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            throw (Exception) e.getCause();
        }
    }

    private List<String> consume(Segment s, int node) throws Exception {
        List<String> out = new ArrayList<>();
        long offset = s.getStartOffset();
        while (true) {
            dev.segstore.client.ConsumerFetch r = dev.segstore.client.ConsumerFetch.call(rpc, cluster.address(node), FetchRequest.newBuilder()
                    .setSegment(SegmentRef.newBuilder().setShardId(s.getShardId()).setSequence(s.getSequence()))
                    .setReplicaId(-1).setOffset(offset).setMaxRecords(1000).build(), 10_000).get(30, TimeUnit.SECONDS);
            if (r.nextOffset() == offset) {
                return out;
            }
            r.records().forEach(rec -> out.add(new String(rec.payload(), java.nio.charset.StandardCharsets.UTF_8)));
            offset = r.nextOffset();
        }
    }

    @Test
    void theReplicasOfANodeLostForGoodMoveToALiveNodeThatCatchesUp() throws Exception {
        cluster.close();
        cluster = new InJvmCluster(id -> StorageNode.PeerFaults.NONE, id -> dev.segstore.log.io.RealLogFiles.INSTANCE, 2_000);
        nodes = cluster.nodes;
        meta.close();
        meta = new MetaClient(cluster.metaAddresses, 2_000, DEADLINE_MS);
        cluster.startNode(4);
        meta.createShard("moved", ShardSettings.newBuilder().setReplicaCount(3).setMinInSyncReplicas(2).build()).get(30, TimeUnit.SECONDS);
        Segment s = openSegment("moved");
        awaitRoles(s);
        List<String> acked = new ArrayList<>();
        for (int i = 0; i < 30; i++) {
            produce(s, "r" + i, 21, i);
            acked.add("r" + i);
        }
        int lost = s.getReplicasList().stream().filter(id -> id != s.getLeader()).findFirst().orElseThrow();
        cluster.stopNode(lost);
        // Fenced after the session timeout (2 s), then moved once gone for replica.reassign.after.ms (2 s) more.
        waitFor("node " + lost + "'s replica to move to another node and the ISR to be full again", () -> {
            try {
                Segment now = openSegment("moved");
                return !now.getReplicasList().contains(lost) && now.getIsrCount() == 3;
            } catch (Exception e) {
                return false;
            }
        });
        Segment moved = openSegment("moved");
        int added = moved.getReplicasList().stream().filter(id -> !s.getReplicasList().contains(id)).findFirst().orElseThrow();
        assertTrue(moved.getLeaderEpoch() > s.getLeaderEpoch(), "a new epoch: " + moved);
        waitFor("the new replica on node " + added + " to serve every acknowledged record", () -> {
            try {
                return consume(moved, added).equals(acked);
            } catch (Exception e) {
                return false;
            }
        });
        produce(moved, "after", 21, 30);
        acked.add("after");
        assertEquals(acked, consume(moved, moved.getLeader()), "writes go on, acknowledged by the new replica set");
        // The lost node comes back after all: its registration deletes the log it no longer hosts.
        java.nio.file.Path oldLog = cluster.root.resolve("node-" + lost).resolve("logs").resolve(s.getShardId() + "-" + s.getSequence());
        assertTrue(java.nio.file.Files.isDirectory(oldLog), "the stopped node's log is still on disk: " + oldLog);
        cluster.startNode(lost);
        waitFor("the returning node to delete the log it no longer hosts", () -> !java.nio.file.Files.exists(oldLog));
    }

    @Test
    void acknowledgedWritesSurviveTheLossOfTheLeader() throws Exception {
        meta.createShard("orders", ShardSettings.newBuilder().setReplicaCount(3).setMinInSyncReplicas(2).build()).get(30, TimeUnit.SECONDS);
        Segment s = openSegment("orders");
        awaitRoles(s);
        List<String> acked = new ArrayList<>();
        for (int i = 0; i < 50; i++) {
            ProduceResponse r = produce(s, "m" + i, 9, i);
            assertEquals(i, r.getBaseOffset());
            acked.add("m" + i);
        }
        assertEquals(acked, consume(s, s.getLeader()));
        // A retried batch is answered with its original offset and not appended again.
        assertEquals(49, produce(s, "m49", 9, 49).getBaseOffset());
        assertEquals(50, consume(s, s.getLeader()).size());

        int oldLeader = s.getLeader();
        long killed = System.nanoTime();
        cluster.stopNode(oldLeader);
        waitFor("a new leader for the segment", () -> {
            try {
                Segment now = openSegment("orders");
                return now.getLeader() >= 0 && now.getLeader() != oldLeader;
            } catch (Exception e) {
                return false;
            }
        });
        Segment after = openSegment("orders");
        awaitRoles(after);
        System.out.printf("new segment leader %d after %.0f ms (session timeout 2000 ms)%n", after.getLeader(),
                (System.nanoTime() - killed) / 1e6);
        assertEquals(s.getLeaderEpoch() + 1, after.getLeaderEpoch());
        // Everything acknowledged is there, once; writes resume with 2 in the ISR (min ISR 2).
        waitFor("the new leader's high watermark to cover what was acknowledged", () ->
                nodes[after.getLeader()].partition(after.getShardId(), after.getSequence()).highWatermark() >= 50);
        assertEquals(acked, consume(after, after.getLeader()));
        assertEquals(50, produce(after, "after-failover", 9, 50).getBaseOffset());
        assertEquals(49, produce(after, "m49", 9, 49).getBaseOffset(), "the new leader also recognises a retry of the old leader's batch");
        assertEquals(51, consume(after, after.getLeader()).size());
    }

    @Test
    void aLeaderWhoseDiskFailsIsReplacedAndWritesGoOnWithoutLoss() throws Exception {
        meta.createShard("disk", ShardSettings.newBuilder().setReplicaCount(3).setMinInSyncReplicas(2).build()).get(30, TimeUnit.SECONDS);
        Segment s = openSegment("disk");
        awaitRoles(s);
        List<String> acked = new ArrayList<>();
        for (int i = 0; i < 20; i++) {
            produce(s, "d" + i, 11, i);
            acked.add("d" + i);
        }
        int failed = s.getLeader();
        disks[failed].failWrites();
        RpcException refused = (RpcException) org.junit.jupiter.api.Assertions.assertThrows(Exception.class,
                () -> produce(s, "d20", 11, 20));
        assertEquals(ErrorCode.NOT_LEADER.code(), refused.code(), "retriable: " + refused);
        // The node reports its failed directory with its next heartbeat; it keeps heartbeating, so only that
        // report (not the session timeout) gets it fenced: its leadership moves and it leaves the ISR.
        waitFor("a new leader", () -> {
            try {
                Segment now = openSegment("disk");
                return now.getLeader() >= 0 && now.getLeader() != failed && !now.getIsrList().contains(failed);
            } catch (Exception e) {
                return false;
            }
        });
        Segment after = openSegment("disk");
        waitFor("the new leader to lead", () -> {
            Partition p = nodes[after.getLeader()].partition(after.getShardId(), after.getSequence());
            return p.role() == Partition.Role.LEADER && p.leaderEpoch() == after.getLeaderEpoch();
        });
        // The failed write is retried with its producer id and sequence: stored once, whether or not it got there.
        long offset = produce(after, "d20", 11, 20).getBaseOffset();
        assertEquals(20, offset);
        acked.add("d20");
        assertEquals(21, produce(after, "d21", 11, 21).getBaseOffset());
        acked.add("d21");
        assertEquals(acked, consume(after, after.getLeader()));
    }

    /** Whether node {@code node} holds the log of segment {@code s} in its data directory {@code k}. */
    private boolean logIn(int node, int k, Segment s) {
        return java.nio.file.Files.isDirectory(cluster.dataDir(node, k).resolve("logs").resolve(s.getShardId() + "-" + s.getSequence()));
    }

    /** Makes node {@code to} lead the shard's open segment and waits until the replicas took their roles. */
    private Segment leadBy(String shard, int to) throws Exception {
        Segment s = openSegment(shard);
        awaitRoles(s);
        if (s.getLeader() != to) {
            meta.moveLeader(shard, to).get(30, TimeUnit.SECONDS);
            s = openSegment(shard);
            awaitRoles(s);
        }
        assertEquals(to, s.getLeader());
        return s;
    }

    /**
     * Issue 13 item 3: a node with two data directories, one of which fails. Only the replicas on that directory go
     * offline (marked so by the controller, out of their ISRs, their leaderships moved); the node is not fenced and
     * goes on serving, as ISR member, the replicas on its other directory; nothing acknowledged is lost. Before,
     * a node had one directory, and any I/O error fenced the whole node.
     */
    @Test
    void aFailedDataDirectoryTakesOnlyItsReplicasOfflineAndTheNodeServesTheOthers() throws Exception {
        cluster.stopNode(1);
        cluster.startNode(1, true, 2);
        long incarnation = meta.describeCluster().get(30, TimeUnit.SECONDS).getNodesList().stream()
                .filter(n -> n.getNodeId() == 1).findFirst().orElseThrow().getIncarnation();
        ShardSettings settings = ShardSettings.newBuilder().setReplicaCount(3).setMinInSyncReplicas(2).build();
        meta.createShard("first", settings).get(30, TimeUnit.SECONDS);
        Segment first = leadBy("first", 2);
        meta.createShard("second", settings).get(30, TimeUnit.SECONDS);
        Segment second = leadBy("second", 1);
        // Each new log goes to the directory holding the fewest: one in each.
        assertTrue(logIn(1, 0, first) && logIn(1, 1, second), "node 1's two logs are in its two directories");
        List<String> ackedFirst = new ArrayList<>();
        List<String> ackedSecond = new ArrayList<>();
        for (int i = 0; i < 10; i++) {
            produce(first, "f" + i, 21, i);
            ackedFirst.add("f" + i);
            produce(second, "s" + i, 22, i);
            ackedSecond.add("s" + i);
        }

        disks[1].failWritesUnder(cluster.dataDir(1, 1));
        RpcException refused = (RpcException) assertThrows(Exception.class, () -> produce(second, "s10", 22, 10));
        assertEquals(ErrorCode.NOT_LEADER.code(), refused.code(), "retriable: " + refused);
        waitFor("node 1's copy of 'second' marked offline, its leadership moved", () -> {
            try {
                Segment now = openSegment("second");
                return now.getOfflineReplicasList().equals(List.of(1)) && now.getLeader() >= 0 && now.getLeader() != 1
                        && !now.getIsrList().contains(1);
            } catch (Exception e) {
                return false;
            }
        });
        Segment after = openSegment("second");
        awaitRoles(after);
        assertEquals(10, produce(after, "s10", 22, 10).getBaseOffset(), "the refused write, retried at the new leader");
        ackedSecond.add("s10");
        assertEquals(ackedSecond, consume(after, after.getLeader()));

        // Node 1 was not fenced: same incarnation, still in the ISR of 'first', whose writes need its acknowledgement.
        Segment firstNow = openSegment("first");
        assertEquals(List.of(), firstNow.getOfflineReplicasList());
        assertTrue(firstNow.getIsrList().contains(1), "node 1 stays in the ISR of the replica on its healthy directory");
        assertEquals(incarnation, meta.describeCluster().get(30, TimeUnit.SECONDS).getNodesList().stream()
                .filter(n -> n.getNodeId() == 1).findFirst().orElseThrow().getIncarnation(), "not fenced");
        for (int i = 10; i < 15; i++) {
            produce(firstNow, "f" + i, 21, i);
            ackedFirst.add("f" + i);
        }
        assertEquals(ackedFirst, consume(firstNow, firstNow.getLeader()));
        waitFor("node 1's copy of 'first' to hold every acknowledged record", () ->
                nodes[1].partition(firstNow.getShardId(), firstNow.getSequence()).log().logEndOffset() == 15);
        String failedDir = "{dir=\"" + cluster.dataDir(1, 1).resolve("logs") + "\"}";
        String healthyDir = "{dir=\"" + cluster.dataDir(1, 0).resolve("logs") + "\"}";
        assertEquals(0.0, cluster.metric(1, "segstore_node_dir_online" + failedDir));
        assertEquals(1.0, cluster.metric(1, "segstore_node_dir_online" + healthyDir));
    }

    /**
     * An fsync-mode leader restarts on a disk that lost a segment's log (a replaced disk), before the controller
     * noticed it was down. Before: a restart in fsync mode kept its ISR places and its leadership (in a new epoch),
     * so it led again from an empty log: every acknowledged record of the segment was gone from the leader. Now its
     * registration lists the logs it holds; the missing one is marked offline for it, another member leads, and the
     * node starts that replica empty as a follower, catches up and is taken back into the ISR.
     */
    @Test
    void aLeaderRestartedWithoutItsLogLeadsNothingFromItAndCatchesUp() throws Exception {
        meta.createShard("wiped", ShardSettings.newBuilder().setReplicaCount(3).setMinInSyncReplicas(2).build()).get(30, TimeUnit.SECONDS);
        Segment s = leadBy("wiped", 1);
        List<String> acked = new ArrayList<>();
        for (int i = 0; i < 20; i++) {
            produce(s, "w" + i, 31, i);
            acked.add("w" + i);
        }
        cluster.machineDown(1); // a machine, not a process: not fenced at once, so it registers again while still alive
        cluster.stopNode(1);
        InJvmCluster.deleteTree(cluster.dataDir(1, 0).resolve("logs").resolve(s.getShardId() + "-" + s.getSequence()));
        cluster.startNode(1);
        waitFor("another member to lead 'wiped'", () -> {
            try {
                Segment now = openSegment("wiped");
                return now.getLeader() >= 0 && now.getLeader() != 1;
            } catch (Exception e) {
                return false;
            }
        });
        Segment after = openSegment("wiped");
        awaitRoles(after);
        waitFor("the new leader's high watermark to cover what was acknowledged", () ->
                nodes[after.getLeader()].partition(after.getShardId(), after.getSequence()).highWatermark() >= 20);
        assertEquals(acked, consume(after, after.getLeader()), "every acknowledged record, at the new leader");
        produce(after, "w20", 31, 20);
        acked.add("w20");
        awaitIsr("wiped", 1, true);
        assertEquals(List.of(), openSegment("wiped").getOfflineReplicasList(), "back in the ISR: its copy is whole again");
        waitFor("node 1's high watermark to reach the end", () -> nodes[1].partition(after.getShardId(), after.getSequence()).highWatermark() >= 21);
        assertEquals(acked, consume(after, 1), "node 1 fetched everything it had lost");
    }

    @Test
    void requestsToAFollowerNameTheLeader() throws Exception {
        meta.createShard("hint", ShardSettings.newBuilder().setReplicaCount(3).setMinInSyncReplicas(2).build()).get(30, TimeUnit.SECONDS);
        Segment s = openSegment("hint");
        awaitRoles(s);
        int follower = s.getReplicasList().stream().filter(id -> id != s.getLeader()).findFirst().orElseThrow();
        ProduceRequest req = ProduceRequest.newBuilder().setSegment(SegmentRef.newBuilder().setShardId(s.getShardId()).setSequence(s.getSequence()))
                .addRecords(Record.newBuilder().setPayload(ByteString.copyFromUtf8("x"))).setProducerId(-1).setBaseSequence(-1).build();
        ExecutionException e = org.junit.jupiter.api.Assertions.assertThrows(ExecutionException.class, () ->
                rpc.call(cluster.address(follower), NodeMethods.PRODUCE, req, ProduceResponse.parser(), 10_000).get(30, TimeUnit.SECONDS));
        RpcException re = (RpcException) e.getCause();
        assertEquals(ErrorCode.NOT_LEADER.code(), re.code());
        assertEquals(cluster.address(s.getLeader()), re.leaderHint());
        assertEquals(s.getLeaderEpoch(), re.leaderEpoch(), "and its epoch");
        assertTrue(re.getMessage().contains("node " + s.getLeader()), re.getMessage());

        // Garbage and oversize frames close that connection only; unknown methods get an error answer.
        for (byte[] junk : new byte[][] {{0, 0, 0, 4, 1, 2, 3, 4}, {(byte) 0x7F, (byte) 0xFF, (byte) 0xFF, (byte) 0xFF}}) {
            try (java.net.Socket sock = new java.net.Socket("127.0.0.1", nodes[s.getLeader()].port())) {
                sock.getOutputStream().write(junk);
                sock.getOutputStream().flush();
                assertEquals(-1, sock.getInputStream().read(), "connection closed");
            }
        }
        ExecutionException unknown = org.junit.jupiter.api.Assertions.assertThrows(ExecutionException.class, () ->
                rpc.call(cluster.address(s.getLeader()), "node.Nope", req, ProduceResponse.parser(), 10_000).get(30, TimeUnit.SECONDS));
        assertEquals(ErrorCode.INVALID_ARGUMENT.code(), ((RpcException) unknown.getCause()).code());
        ExecutionException empty = org.junit.jupiter.api.Assertions.assertThrows(ExecutionException.class, () ->
                rpc.call(cluster.address(s.getLeader()), NodeMethods.PRODUCE, req.toBuilder().clearRecords().build(),
                        ProduceResponse.parser(), 10_000).get(30, TimeUnit.SECONDS));
        assertEquals(ErrorCode.INVALID_ARGUMENT.code(), ((RpcException) empty.getCause()).code());
        assertEquals(0, produce(s, "still serving", -1, -1).getBaseOffset(), "the node survived the bad input");
    }

    @Test
    void aPartitionedFollowerLeavesTheIsrAndRejoinsAfterItHeals() throws Exception {
        meta.createShard("lag", ShardSettings.newBuilder().setReplicaCount(3).setMinInSyncReplicas(2).build()).get(30, TimeUnit.SECONDS);
        Segment s = openSegment("lag");
        awaitRoles(s);
        int follower = s.getReplicasList().stream().filter(id -> id != s.getLeader()).findFirst().orElseThrow();
        waitFor("the leader to hear from the follower", () -> {
            try {
                return replicaStatus(s, s.getLeader()).getFollowersList().stream()
                        .anyMatch(f -> f.getNodeId() == follower && f.getLogEndOffset() == 0);
            } catch (Exception e) {
                return false;
            }
        });
        partitioned.add(follower);
        long cut = System.nanoTime();
        // Acknowledged once the partitioned follower is out of the ISR (lag limit 1 s), by the other two.
        assertEquals(0, produce(s, "during", 3, 0).getBaseOffset());
        System.out.printf("write acknowledged %.0f ms after the partition (replica.max.lag.ms 1000)%n", (System.nanoTime() - cut) / 1e6);
        awaitIsr("lag", follower, false);
        awaitMetric(s.getLeader(), "segstore_node_under_replicated_segments", 1.0); // the leader reports it
        dev.segstore.protocol.node.ReplicaStatusResponse lagging = replicaStatus(s, s.getLeader());
        assertEquals("LEADER", lagging.getRole());
        dev.segstore.protocol.node.FollowerStatus cutOff = lagging.getFollowersList().stream()
                .filter(f -> f.getNodeId() == follower).findFirst().orElseThrow();
        assertEquals(0, cutOff.getLogEndOffset(), "it had fetched before the partition: " + cutOff);
        assertEquals(1, cutOff.getLagRecords(), "and lacks the write made since: " + cutOff);
        assertTrue(cutOff.getCaughtUpMsAgo() >= 1_000, "not caught up for the lag limit: " + cutOff);
        assertFalse(lagging.getIsrList().contains(follower));
        waitFor("the meta leader to report it", () -> metaMetric("segstore_meta_under_replicated_segments") == 1.0);
        assertEquals(3.0, metaMetric("segstore_meta_storage_nodes{state=\"alive\"}"), "the partition cuts fetches only");
        assertEquals(1.0, metaMetric("segstore_meta_is_leader"));
        // Meta RPCs are counted by method and result: the heartbeats, and the ISR shrink the leader proposed.
        assertTrue(metaMetric("segstore_meta_requests_total{method=\"meta.Heartbeat\",result=\"ok\"}") > 0);
        assertTrue(metaMetric("segstore_meta_requests_total{method=\"meta.ProposeIsr\",result=\"ok\"}") >= 1);
        assertTrue(metaMetric("segstore_meta_request_latency_seconds_count{method=\"meta.ProposeIsr\"}") >= 1);
        for (int i = 1; i < 20; i++) {
            produce(s, "during" + i, 3, i);
        }
        partitioned.remove(follower);
        awaitIsr("lag", follower, true);
        awaitMetric(s.getLeader(), "segstore_node_under_replicated_segments", 0.0);
        assertTrue(replicaStatus(s, s.getLeader()).getFollowersList().stream().allMatch(f -> f.getLagRecords() == 0),
                "no follower lags once all are back in the ISR (no writes since)");
        waitFor("the meta leader to see the full ISR", () -> metaMetric("segstore_meta_under_replicated_segments") == 0.0);
        assertEquals(1.0, metaMetric("segstore_meta_segments"));
        assertEquals(20.0, cluster.metric(s.getLeader(), "segstore_node_produced_records_total"));
        assertEquals(20.0, cluster.metric(s.getLeader(), "segstore_node_requests_total{method=\"node.Produce\",result=\"ok\"}"));
        assertEquals(20.0, cluster.metric(s.getLeader(), "segstore_node_request_latency_seconds_count{method=\"node.Produce\"}"));
        assertEquals(1.0, cluster.metric(s.getLeader(), "segstore_node_replicas{role=\"leader\"}"));
        assertTrue(cluster.metric(follower, "segstore_node_replicas{role=\"follower\"}") == 1.0);
        assertTrue(cluster.metric(s.getLeader(), "segstore_node_fetched_bytes_total{reader=\"follower\"}") > 0);
        assertEquals(20.0, cluster.metric(s.getLeader(), "segstore_node_shard_produced_records_total{shard=\"" + s.getShard() + "\"}"));
        String dir = "{dir=\"" + cluster.root.resolve("node-" + s.getLeader()).resolve("logs") + "\"}";
        assertEquals(1.0, cluster.metric(s.getLeader(), "segstore_node_dir_online" + dir));
        assertEquals(0.0, cluster.metric(s.getLeader(), "segstore_node_dir_queued_appends" + dir), "nothing queued once quiet");
        assertTrue(cluster.metric(s.getLeader(), "segstore_node_dir_written_bytes_total" + dir) > 0);
        assertTrue(cluster.metric(s.getLeader(), "segstore_node_dir_log_bytes" + dir) > 0);
        assertTrue(cluster.metric(s.getLeader(), "segstore_node_dir_fsync_seconds_count" + dir) > 0, "fsync shards: flushes were timed");
        assertTrue(cluster.metric(s.getLeader(), "jvm_threads_current") > 0, "JVM metrics on storage nodes");
        assertTrue(metaMetric("jvm_memory_used_bytes{area=\"heap\"}") > 0, "JVM metrics on meta nodes");
        Partition f = nodes[follower].partition(s.getShardId(), s.getSequence());
        assertEquals(20, f.log().logEndOffset(), "caught up before rejoining");
        Partition leader = nodes[s.getLeader()].partition(s.getShardId(), s.getSequence());
        try (var a = leader.log().readSlice(0, Integer.MAX_VALUE, Long.MAX_VALUE);
             var b = f.log().readSlice(0, Integer.MAX_VALUE, Long.MAX_VALUE)) {
            assertEquals(a.read(), b.read(), "the healed follower is byte-identical to the leader");
        }
    }

    @Test
    void aSlowFollowerHoldsAcknowledgementsBackUntilTheLagLimitThenLeavesTheIsr() throws Exception {
        meta.createShard("slow", ShardSettings.newBuilder().setReplicaCount(3).setMinInSyncReplicas(2).build()).get(30, TimeUnit.SECONDS);
        Segment s = openSegment("slow");
        awaitRoles(s);
        produce(s, "warm", 4, 0);
        int follower = s.getReplicasList().stream().filter(id -> id != s.getLeader()).findFirst().orElseThrow();
        delayedMs.put(follower, 300L); // below replica.max.lag.ms = 1000: slow, still in sync
        for (int i = 1; i <= 4; i++) {
            long t0 = System.nanoTime();
            produce(s, "slow" + i, 4, i);
            long ms = (System.nanoTime() - t0) / 1_000_000;
            // The high watermark is the minimum over the whole ISR: the write waits for the slow follower's
            // next fetch, which is held back 300 ms after it appended.
            assertTrue(ms >= 250, "acknowledged after " + ms + " ms, before the slow follower had it");
        }
        assertTrue(openSegment("slow").getIsrList().contains(follower), "a follower slower than the limit stays in the ISR");
        delayedMs.put(follower, 5_000L); // now far past the lag limit
        long t0 = System.nanoTime();
        produce(s, "past", 4, 5);
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertTrue(ms < 5_000, "acknowledged by the other two after " + ms + " ms, once the slow follower left the ISR");
        assertFalse(openSegment("slow").getIsrList().contains(follower), "it left the ISR");
        delayedMs.remove(follower);
        awaitIsr("slow", follower, true);
        // Its own high watermark follows with its next fetch; consumers read it up to there.
        waitFor("the follower's high watermark", () -> nodes[follower].partition(s.getShardId(), s.getSequence()).highWatermark() == 6);
        assertEquals(List.of("warm", "slow1", "slow2", "slow3", "slow4", "past"), consume(s, follower));
    }

    @Test
    void fullSegmentsAreSealedAndWritesMoveToTheNextSegment() throws Exception {
        meta.createShard("roll", ShardSettings.newBuilder().setReplicaCount(3).setMinInSyncReplicas(2)
                .setSegmentBytes(64 * 1024).build()).get(30, TimeUnit.SECONDS);
        awaitRoles(openSegment("roll"));
        byte[] kib = new byte[1024];
        List<String> written = new ArrayList<>();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        int seq = 0;
        while (written.size() < 300) {
            assertTrue(System.nanoTime() < deadline, "writes did not move on to the next segment in time");
            Segment s = openSegment("roll");
            if (s.getLeader() < 0 || nodes[s.getLeader()] == null) {
                continue;
            }
            String payload = "r" + written.size() + "-" + new String(kib, 0, 1000).replace('\0', 'x');
            try {
                ProduceResponse r = produce(s, payload, 5, seq);
                assertEquals(written.size(), r.getBaseOffset(), "offsets stay dense across segments");
                written.add(payload);
                seq++;
            } catch (RpcException e) {
                // Sealing: refresh the route and write to the next segment (the retry keeps its sequence).
                assertEquals(ErrorCode.NOT_LEADER.code(), e.code(), e.toString());
            }
        }
        ShardRoute route = meta.route("roll").get(30, TimeUnit.SECONDS);
        assertTrue(route.getSegmentsCount() >= 3, "segments: " + route.getSegmentsCount());
        List<String> read = new ArrayList<>();
        long expectedStart = 0;
        for (Segment seg : route.getSegmentsList()) {
            assertEquals(expectedStart, seg.getStartOffset(), "segments continue each other");
            if (seg.getStatus() == dev.segstore.protocol.meta.SegmentStatus.SEALED) {
                expectedStart = seg.getEndOffset();
                // A sealed segment is readable from every replica, up to its end.
                for (int replica : seg.getReplicasList()) {
                    Segment sealed = seg;
                    waitFor("replica " + replica + " to seal " + seg.getSequence(), () ->
                            nodes[replica].partition(sealed.getShardId(), sealed.getSequence()).sealedEnd() == sealed.getEndOffset());
                    assertEquals(seg.getEndOffset() - seg.getStartOffset(), consume(seg, replica).size());
                }
            }
            read.addAll(consume(seg, seg.getLeader()));
        }
        assertEquals(written, read);
    }

    private List<Long> readIndexed(Segment s, int node, String method, String term) throws Exception {
        FetchResponse r = rpc.call(cluster.address(node), method, dev.segstore.protocol.node.IndexReadRequest.newBuilder()
                .setSegment(SegmentRef.newBuilder().setShardId(s.getShardId()).setSequence(s.getSequence()))
                .setTerm(term).setLimit(100).build(), FetchResponse.parser(), 10_000).get(30, TimeUnit.SECONDS);
        return r.getRecordsList().stream().map(Record::getOffset).toList();
    }

    @Test
    void everyReplicaIndexesKeysAndTagsSoANewLeaderAnswersAtOnce() throws Exception {
        meta.createShard("keys", ShardSettings.newBuilder().setReplicaCount(3).setMinInSyncReplicas(2).build()).get(30, TimeUnit.SECONDS);
        Segment s = openSegment("keys");
        awaitRoles(s);
        for (int i = 0; i < 20; i++) {
            ProduceRequest req = ProduceRequest.newBuilder().setSegment(SegmentRef.newBuilder().setShardId(s.getShardId()).setSequence(s.getSequence()))
                    .addRecords(Record.newBuilder().setHasKey(true).setKey("k" + (i % 4)).addTags("t" + (i % 2)).setTimestamp(1000 + i)
                            .setPayload(ByteString.copyFromUtf8("v" + i))).setProducerId(-1).setBaseSequence(-1).build();
            rpc.call(cluster.address(s.getLeader()), NodeMethods.PRODUCE, req, ProduceResponse.parser(), 10_000).get(30, TimeUnit.SECONDS);
        }
        assertEquals(List.of(1L, 5L, 9L, 13L, 17L), readIndexed(s, s.getLeader(), NodeMethods.READ_BY_KEY, "k1"), "read your writes");
        assertEquals(10, readIndexed(s, s.getLeader(), NodeMethods.READ_BY_TAG, "t0").size());
        assertEquals(List.of(), readIndexed(s, s.getLeader(), NodeMethods.READ_BY_KEY, "nope"));
        dev.segstore.protocol.node.TimestampResponse ts = rpc.call(cluster.address(s.getLeader()), NodeMethods.OFFSET_FOR_TIMESTAMP,
                dev.segstore.protocol.node.TimestampRequest.newBuilder().setSegment(SegmentRef.newBuilder().setShardId(s.getShardId())
                        .setSequence(s.getSequence())).setTimestamp(1007).build(), dev.segstore.protocol.node.TimestampResponse.parser(), 10_000)
                .get(30, TimeUnit.SECONDS);
        assertEquals(7, ts.getOffset());

        int oldLeader = s.getLeader();
        cluster.stopNode(oldLeader);
        waitFor("a new leader", () -> {
            try {
                Segment now = openSegment("keys");
                return now.getLeader() >= 0 && now.getLeader() != oldLeader;
            } catch (Exception e) {
                return false;
            }
        });
        Segment after = openSegment("keys");
        awaitRoles(after);
        waitFor("the new leader's high watermark", () -> nodes[after.getLeader()].partition(after.getShardId(), after.getSequence()).highWatermark() >= 20);
        assertEquals(List.of(1L, 5L, 9L, 13L, 17L), readIndexed(after, after.getLeader(), NodeMethods.READ_BY_KEY, "k1"));
    }

    /**
     * Issue 15, item 3: once a delete is answered no node serves the deleted shard. Every node that hosted it has
     * dropped its replica and refuses its id with SHARD_NOT_FOUND (ids are never reused), so a client on a route
     * cached before the delete cannot have a write acknowledged into it.
     */
    @Test
    void onceADeleteIsAnsweredEveryNodeRefusesTheDeletedShardsId() throws Exception {
        meta.createShard("gone", ShardSettings.newBuilder().setReplicaCount(3).setMinInSyncReplicas(2).build()).get(30, TimeUnit.SECONDS);
        Segment s = openSegment("gone");
        awaitRoles(s);
        assertEquals(0, produce(s, "before", 9, 0).getBaseOffset());
        String series = "segstore_node_shard_produced_records_total{shard=\"gone\"}";
        assertTrue(cluster.metric(s.getLeader(), series) > 0, series);
        meta.deleteShard("gone").get(30, TimeUnit.SECONDS);
        assertTrue(Double.isNaN(cluster.metric(s.getLeader(), series)), "the deleted shard's series is gone from the scrape");
        for (int id = 1; id <= 3; id++) {
            assertEquals(null, nodes[id].partition(s.getShardId(), s.getSequence()), "node " + id + " still hosts the deleted shard");
            Segment at = s.toBuilder().setLeader(id).build();
            Exception e = assertThrows(Exception.class, () -> produce(at, "after", 9, 1), "node " + id + " took a write");
            assertTrue(e instanceof RpcException re && re.code() == ErrorCode.SHARD_NOT_FOUND.code(), "node " + id + ": " + e);
        }
    }
}
