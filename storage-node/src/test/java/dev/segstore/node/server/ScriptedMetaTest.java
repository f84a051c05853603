package dev.segstore.node.server;

import com.google.protobuf.ByteString;
import dev.segstore.adapter.ErrorCode;
import dev.segstore.log.DirectoryConfig;
import dev.segstore.log.LogConfig;
import dev.segstore.node.replica.FaultyFiles;
import dev.segstore.protocol.MetaMethods;
import dev.segstore.protocol.NodeMethods;
import dev.segstore.protocol.meta.DurabilityMode;
import dev.segstore.protocol.meta.HeartbeatRequest;
import dev.segstore.protocol.meta.NodeAssignments;
import dev.segstore.protocol.meta.NodeState;
import dev.segstore.protocol.meta.ProposeIsrRequest;
import dev.segstore.protocol.meta.RegisterNodeRequest;
import dev.segstore.protocol.meta.Segment;
import dev.segstore.protocol.meta.SegmentResponse;
import dev.segstore.protocol.meta.SegmentStatus;
import dev.segstore.protocol.meta.Shard;
import dev.segstore.protocol.meta.ShardSettings;
import dev.segstore.protocol.node.ProduceRequest;
import dev.segstore.protocol.node.ProduceResponse;
import dev.segstore.protocol.node.Record;
import dev.segstore.protocol.node.SegmentRef;
import dev.segstore.protocol.rpc.Frames;
import dev.segstore.protocol.rpc.RpcClient;
import dev.segstore.protocol.rpc.RpcException;
import dev.segstore.protocol.rpc.RpcHandler;
import dev.segstore.protocol.rpc.RpcServer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * One storage node against a scripted meta-service: an RPC server on loopback that answers registration and
 * heartbeats with whatever the test sets, so a test can hand the node answers a real Raft group only gives
 * in rare interleavings (a deposed meta leader's stale state) and see what the node reports.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ScriptedMetaTest {
    private static final long SHARD_ID = 7;

    @TempDir
    Path dir;
    private final RpcServer metaServer = new RpcServer(1, Frames.DEFAULT_MAX_FRAME_BYTES);
    private final AtomicReference<NodeAssignments> answer = new AtomicReference<>();
    private final AtomicInteger heartbeats = new AtomicInteger();
    private final AtomicInteger offlineReports = new AtomicInteger();
    private final FaultyFiles files = new FaultyFiles();
    private StorageNode node;

    private int metaPort;
    private long replicaMaxLagMs;
    private NodeClocks clocks;

    private void start() throws Exception {
        start(1_000, NodeClocks.SYSTEM);
    }

    private void start(long replicaMaxLagMs, NodeClocks clocks) throws Exception {
        this.replicaMaxLagMs = replicaMaxLagMs;
        this.clocks = clocks;
        metaServer.register(RpcHandler.of(MetaMethods.REGISTER_NODE, RegisterNodeRequest.parser(),
                        r -> CompletableFuture.completedFuture(answer.get())))
                .register(RpcHandler.of(MetaMethods.HEARTBEAT, HeartbeatRequest.parser(), r -> {
                    if (r.getStorageOffline()) {
                        offlineReports.incrementAndGet();
                    }
                    heartbeats.incrementAndGet();
                    return CompletableFuture.completedFuture(answer.get());
                }));
        metaPort = metaServer.start("127.0.0.1", 0).getPort();
        startNode();
    }

    private void startNode() throws Exception {
        node = StorageNode.start(new NodeConfig(1, "127.0.0.1", 0, dir.resolve("node-1"), List.of("127.0.0.1:" + metaPort), 50, replicaMaxLagMs,
                DirectoryConfig.DEFAULT, LogConfig.DEFAULT, NodeConfig.DEFAULT_OWNER_THREADS, -1), StorageNode.PeerFaults.NONE, files, clocks);
    }

    @AfterEach
    void stop() {
        files.release();
        if (node != null) {
            node.close();
        }
        metaServer.close();
    }

    /** Assignments at {@code version}: node 1 alone, leading segment 0 of shard 7 if {@code withSegment}. */
    private static NodeAssignments assignments(long version, boolean withSegment) {
        NodeAssignments.Builder b = NodeAssignments.newBuilder().setMetadataVersion(version)
                .setNode(dev.segstore.protocol.meta.StorageNode.newBuilder().setNodeId(1).setHost("127.0.0.1").setPort(1)
                        .setState(NodeState.ALIVE).setIncarnation(1));
        if (withSegment) {
            b.addSegments(Segment.newBuilder().setShard("s").setShardId(SHARD_ID).setSequence(0).setStartOffset(0).setEndOffset(-1)
                            .setStatus(SegmentStatus.OPEN).addReplicas(1).setLeader(1).setLeaderEpoch(0).addIsr(1).setCreatedVersion(10))
                    .addShards(Shard.newBuilder().setName("s").setShardId(SHARD_ID).setSettings(ShardSettings.newBuilder()
                            .setReplicaCount(1).setMinInSyncReplicas(1).setDurability(DurabilityMode.FSYNC)));
        }
        return b.build();
    }

    private void awaitHeartbeats(int more) {
        int target = heartbeats.get() + more;
        InJvmCluster.waitFor(more + " heartbeats", 30_000, () -> heartbeats.get() >= target);
    }

    @Test
    void againstAMetaServiceWithoutTheWatchTheNodeFallsBackToHeartbeats() throws Exception {
        answer.set(assignments(10, true));
        start(); // the scripted meta-service knows registration and heartbeats only, as one older than the watch
        InJvmCluster.waitFor("the node to give its watch up", 30_000, () -> !node.watchingAssignments());
        InJvmCluster.waitFor("the replica to be created", 30_000, () -> node.partition(SHARD_ID, 0) != null);
        awaitHeartbeats(3);
    }

    @Test
    void aWatchAnsweredChangedWhoseHeartbeatBringsNothingNewerDoesNotSpin() throws Exception {
        AtomicInteger watches = new AtomicInteger();
        // A meta-service that says "changed" at once to every watch, while its heartbeats stay at version 10.
        metaServer.register(RpcHandler.of(MetaMethods.WATCH_ASSIGNMENTS, dev.segstore.protocol.meta.WatchAssignmentsRequest.parser(), r -> {
            watches.incrementAndGet();
            return CompletableFuture.completedFuture(dev.segstore.protocol.meta.WatchAssignmentsResponse.newBuilder().setChanged(true)
                    .setMetadataVersion(11).build());
        }));
        answer.set(assignments(10, true));
        start();
        InJvmCluster.waitFor("a first watch", 30_000, () -> watches.get() > 0);
        awaitHeartbeats(20);
        int heartbeatCount = heartbeats.get();
        int watchCount = watches.get();
        assertTrue(node.watchingAssignments(), "still watching");
        assertTrue(watchCount <= heartbeatCount + 2, watchCount + " watches for " + heartbeatCount
                + " heartbeats: at most one watch per heartbeat period while the heartbeat brings nothing newer");
    }

    @Test
    void assignmentsOlderThanOnesAppliedNeverDeleteAReplica() throws Exception {
        answer.set(assignments(10, true));
        start();
        InJvmCluster.waitFor("the replica to be created", 30_000, () -> node.partition(SHARD_ID, 0) != null);
        // A deposed meta leader's answer from before the segment was created: it lists nothing.
        answer.set(assignments(5, false));
        awaitHeartbeats(5);
        assertNotNull(node.partition(SHARD_ID, 0), "a stale answer does not delete the replica");
        // A newer answer that no longer lists it (the shard was deleted): now it goes.
        answer.set(assignments(11, false));
        InJvmCluster.waitFor("the replica to be deleted", 30_000, () -> node.partition(SHARD_ID, 0) == null);
    }

    @Test
    void aFailedDataDirectoryIsReportedAndWritesFailRetriably() throws Exception {
        answer.set(assignments(10, true));
        start();
        InJvmCluster.waitFor("the node to lead the segment", 30_000, () -> node.partition(SHARD_ID, 0) != null
                && node.partition(SHARD_ID, 0).role() == dev.segstore.node.replica.Partition.Role.LEADER);
        files.failWrites();
        try (RpcClient client = new RpcClient(1, Frames.DEFAULT_MAX_FRAME_BYTES)) {
            ProduceRequest produce = ProduceRequest.newBuilder().setSegment(SegmentRef.newBuilder().setShardId(SHARD_ID).setSequence(0))
                    .addRecords(Record.newBuilder().setTimestamp(1).setPayload(ByteString.copyFromUtf8("x"))).setProducerId(5).setBaseSequence(0)
                    .build();
            String address = "127.0.0.1:" + node.port();
            for (int i = 0; i < 2; i++) { // the first fails in the write, the second finds the directory offline
                ExecutionException e = assertThrows(ExecutionException.class, () -> client.call(address, NodeMethods.PRODUCE, produce,
                        ProduceResponse.parser(), 10_000).get(30, TimeUnit.SECONDS));
                RpcException re = (RpcException) e.getCause();
                assertEquals(ErrorCode.NOT_LEADER.code(), re.code(), "retriable, so the writer retries at the next leader: " + re);
                assertTrue(!re.notApplied(), "the first may have been written: it is retried with the same sequence");
            }
        }
        InJvmCluster.waitFor("the heartbeat to report the offline directory", 30_000, () -> offlineReports.get() > 0);
    }

    /**
     * A delete by key sent to a leader whose high watermark has not reached the offset it took the lead at is
     * refused before anything is deleted, and says so (not_applied): the client then retries it without calling
     * the outcome unknown. Found by SegmentEngineMultiAdapterTest (1 run in 5): a delete by key that reached a
     * just-rolled segment's new leader failed OUTCOME_UNKNOWN, "an earlier attempt in segment(s) [4] may have deleted some".
     */
    @Test
    void aDeleteByKeyRefusedForAWatermarkNotReadableYetSaysNothingWasDeleted() throws Exception {
        answer.set(assignments(10, true)); // node 1 alone: its write is acknowledged
        start();
        InJvmCluster.waitFor("the node to lead the segment", 30_000, () -> node.partition(SHARD_ID, 0) != null
                && node.partition(SHARD_ID, 0).role() == dev.segstore.node.replica.Partition.Role.LEADER);
        SegmentRef ref = SegmentRef.newBuilder().setShardId(SHARD_ID).setSequence(0).build();
        try (RpcClient client = new RpcClient(1, Frames.DEFAULT_MAX_FRAME_BYTES)) {
            client.call("127.0.0.1:" + node.port(), NodeMethods.PRODUCE, ProduceRequest.newBuilder().setSegment(ref)
                    .addRecords(Record.newBuilder().setTimestamp(1).setKey("k").setPayload(ByteString.copyFromUtf8("x")))
                    .setProducerId(5).setBaseSequence(0).build(), ProduceResponse.parser(), 10_000).get(30, TimeUnit.SECONDS);
        }
        node.close();
        // Back as leader in epoch 1 of replicas 1 and 2 (node 2 never comes): its watermark starts at 0, below
        // the log end it leads from, and no follower fetches to move it.
        NodeAssignments two = assignments(20, true);
        answer.set(two.toBuilder().setSegments(0, two.getSegments(0).toBuilder().addReplicas(2).addIsr(2).setLeaderEpoch(1))
                .setShards(0, two.getShards(0).toBuilder().setSettings(two.getShards(0).getSettings().toBuilder()
                        .setReplicaCount(2).setMinInSyncReplicas(2))).build());
        startNode();
        InJvmCluster.waitFor("the node to lead in epoch 1", 30_000, () -> node.partition(SHARD_ID, 0) != null
                && node.partition(SHARD_ID, 0).role() == dev.segstore.node.replica.Partition.Role.LEADER
                && node.partition(SHARD_ID, 0).leaderEpoch() == 1);
        try (RpcClient client = new RpcClient(1, Frames.DEFAULT_MAX_FRAME_BYTES)) {
            ExecutionException e = assertThrows(ExecutionException.class, () -> client.call("127.0.0.1:" + node.port(), NodeMethods.DELETE,
                    dev.segstore.protocol.node.DeleteRequest.newBuilder().setSegment(ref).setByKey(true).setKey("k").build(),
                    dev.segstore.protocol.node.DeleteResponse.parser(), 10_000).get(30, TimeUnit.SECONDS));
            RpcException re = (RpcException) e.getCause();
            assertEquals(ErrorCode.UNAVAILABLE.code(), re.code(), String.valueOf(re));
            assertTrue(re.notApplied(), "refused before deleting anything, and says so: " + re);
        }
    }

    @Test
    void aReplicaThatCannotBeOpenedDoesNotKeepTheOthersFromTheirAssignments() throws Exception {
        // Segment 0 of shard 6 cannot be opened (a start offset the log refuses stands in for a damaged log);
        // it comes first in the answer, and shard 7's segment must be hosted all the same.
        NodeAssignments good = assignments(10, true);
        Segment bad = good.getSegments(0).toBuilder().setShard("bad").setShardId(6).setStartOffset(-5).build();
        answer.set(good.toBuilder().clearSegments().addSegments(bad).addSegments(good.getSegments(0))
                .addShards(good.getShards(0).toBuilder().setName("bad").setShardId(6)).build());
        start();
        InJvmCluster.waitFor("shard 7's replica to lead", 30_000, () -> node.partition(SHARD_ID, 0) != null
                && node.partition(SHARD_ID, 0).role() == dev.segstore.node.replica.Partition.Role.LEADER);
        assertEquals(null, node.partition(6, 0), "the bad one is not hosted");
    }

    @Test
    void logsOfSegmentsDeletedWhileTheNodeWasDownAreDeletedWhenItRegistersAgain() throws Exception {
        answer.set(assignments(10, true));
        start();
        InJvmCluster.waitFor("the replica to be created", 30_000, () -> node.partition(SHARD_ID, 0) != null);
        Path log = dir.resolve("node-1").resolve("logs").resolve(SHARD_ID + "-0");
        assertTrue(java.nio.file.Files.isDirectory(log), "the replica's log is at " + log);
        Path foreign = java.nio.file.Files.createDirectories(dir.resolve("node-1").resolve("logs").resolve("not-a-replica"));
        node.close();
        // While the node is down the shard is deleted (and the delete finished without it, as it was not alive).
        answer.set(assignments(20, false));
        startNode();
        InJvmCluster.waitFor("the unassigned log to be deleted", 30_000, () -> !java.nio.file.Files.exists(log));
        assertTrue(java.nio.file.Files.isDirectory(foreign), "a directory that is not a replica's log is left alone");
    }

    @Test
    void logsTheRegistrationAssignsAreKept() throws Exception {
        answer.set(assignments(10, true));
        start();
        InJvmCluster.waitFor("the replica to be created", 30_000, () -> node.partition(SHARD_ID, 0) != null);
        node.close();
        answer.set(assignments(20, true));
        startNode();
        awaitHeartbeats(3);
        assertNotNull(node.partition(SHARD_ID, 0), "the assigned replica is open again");
        assertTrue(java.nio.file.Files.isDirectory(dir.resolve("node-1").resolve("logs").resolve(SHARD_ID + "-0")));
    }

    // ---- clocks (issue 15, item 6) ---------------------------------------------------------------------------

    @Test
    void aWallClockStepForwardShrinksNoIsr() throws Exception {
        long lagMs = 600_000; // the node's own ISR tick runs every lagMs / 2: not during this test, which runs it itself
        AtomicLong wall = new AtomicLong(1_704_067_200_000L);
        AtomicLong mono = new AtomicLong(5_000);
        List<ProposeIsrRequest> proposals = new CopyOnWriteArrayList<>();
        metaServer.register(RpcHandler.of(MetaMethods.PROPOSE_ISR, ProposeIsrRequest.parser(), r -> {
            proposals.add(r);
            Segment committed = answer.get().getSegments(0).toBuilder().clearIsr().addAllIsr(r.getNewIsrList())
                    .setIsrVersion(r.getIsrVersion() + 1).build();
            return CompletableFuture.completedFuture(SegmentResponse.newBuilder().setSegment(committed).build());
        }));
        NodeAssignments one = assignments(10, true);
        Segment three = one.getSegments(0).toBuilder().clearReplicas().addAllReplicas(List.of(1, 2, 3))
                .clearIsr().addAllIsr(List.of(1, 2, 3)).build();
        answer.set(one.toBuilder().setSegments(0, three).build());
        start(lagMs, new NodeClocks(wall::get, mono::get));
        InJvmCluster.waitFor("the node to lead the segment", 30_000, () -> node.partition(SHARD_ID, 0) != null
                && node.partition(SHARD_ID, 0).role() == dev.segstore.node.replica.Partition.Role.LEADER);
        dev.segstore.node.replica.Partition p = node.partition(SHARD_ID, 0);

        wall.addAndGet(24 * 3_600_000L); // NTP steps the wall clock a day forward; no time passes
        p.fetchFromFollower(3, 0, 0, 0, 1 << 20); // node 3 fetches at the leader's end: caught up now
        p.maybeShrinkIsr(); // node 2 has not fetched since the leader took over, which was moments ago: it stays
        mono.addAndGet(lagMs + 1);
        p.maybeShrinkIsr(); // now neither has been caught up for longer than the lag limit: both go
        InJvmCluster.waitFor("an ISR proposal", 30_000, () -> !proposals.isEmpty());
        assertEquals(List.of(1), proposals.get(0).getNewIsrList(),
                "the first shrink must come from time passing, not from the wall clock's step: " + proposals);
    }
}
