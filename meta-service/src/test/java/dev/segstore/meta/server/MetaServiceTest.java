package dev.segstore.meta.server;

import com.google.protobuf.Message;
import dev.segstore.adapter.ErrorCode;
import dev.segstore.meta.raft.Consensus;
import dev.segstore.meta.state.CommandResult;
import dev.segstore.meta.state.MetaState;
import dev.segstore.protocol.FeatureLevels;
import dev.segstore.protocol.meta.Command;
import dev.segstore.protocol.meta.CreateShardCommand;
import dev.segstore.protocol.meta.FenceNodeCommand;
import dev.segstore.protocol.meta.NodeState;
import dev.segstore.protocol.meta.Segment;
import dev.segstore.protocol.meta.HeartbeatRequest;
import dev.segstore.protocol.meta.NodeAssignments;
import dev.segstore.protocol.meta.RegisterNodeRequest;
import dev.segstore.protocol.meta.ShardSettings;
import dev.segstore.protocol.rpc.RpcException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link MetaService} on a scripted Raft group ({@link FakeRaft}): proposals apply at once to one
 * {@link MetaState}; the read barrier is whatever the test makes it (failing, as on a deposed leader that
 * still believes it leads, or pending). Deterministic: no threads of its own, no network.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class MetaServiceTest {
    private static final long DEADLINE_MS = 10_000;

    /** A Raft group of one that applies proposals at once; its leadership and read barrier are scripted. */
    static final class FakeRaft implements Consensus {
        final MetaState state;
        final List<Command> proposed = new CopyOnWriteArrayList<>();
        volatile boolean leader = true;
        volatile boolean loseNextAnswer;
        /** Set: proposals are committed and applied only once this completes (a slow commit). */
        volatile CompletableFuture<Void> hold;
        volatile Supplier<CompletableFuture<Void>> barrier = () -> CompletableFuture.completedFuture(null);

        FakeRaft(MetaState state) {
            this.state = state;
        }

        @Override
        public boolean isLeader() {
            return leader;
        }

        @Override
        public RpcException notLeader() {
            return new RpcException(ErrorCode.NOT_LEADER.code(), "fake meta node is not the leader", "");
        }

        @Override
        public String leaderHint() {
            return "";
        }

        @Override
        public CompletableFuture<CommandResult> propose(Command command) {
            if (!leader) {
                return CompletableFuture.failedFuture(notLeader());
            }
            proposed.add(command);
            CompletableFuture<Void> held = hold;
            if (held != null) {
                return held.thenApply(v -> state.apply(command));
            }
            CommandResult result = state.apply(command);
            if (loseNextAnswer) {
                // Committed and applied, but the proposer never learns it (a timeout, a leadership lost meanwhile).
                loseNextAnswer = false;
                return CompletableFuture.failedFuture(new RpcException(ErrorCode.TIMEOUT.code(), "fake: the answer was lost"));
            }
            return CompletableFuture.completedFuture(result);
        }

        @Override
        public CompletableFuture<Void> readBarrier() {
            return leader ? barrier.get() : CompletableFuture.failedFuture(notLeader());
        }
    }

    private final MetaState state = new MetaState();
    private final FakeRaft raft = new FakeRaft(state);
    private long now = 1_000;
    private final Controller controller = new Controller(state, raft, 60_000, () -> now, () -> now);
    private final MetaService service = new MetaService(state, raft, controller, () -> now++, List.of());

    @AfterEach
    void close() {
        controller.close();
    }

    private static <T> T await(CompletableFuture<T> f) throws Exception {
        try {
            return f.get(DEADLINE_MS, TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            throw e.getCause() instanceof Exception ex ? ex : e;
        }
    }

    private static RpcException rpcFailure(CompletableFuture<?> f) {
        ExecutionException e = assertThrows(ExecutionException.class, () -> {
            Object answer = f.get(DEADLINE_MS, TimeUnit.MILLISECONDS);
            throw new AssertionError("expected an RPC error, got an answer: " + answer);
        });
        assertTrue(e.getCause() instanceof RpcException, "expected an RPC error, got " + e.getCause());
        return (RpcException) e.getCause();
    }

    private NodeAssignments register(int id) throws Exception {
        return (NodeAssignments) await(service.registerNode(RegisterNodeRequest.newBuilder().setNodeId(id)
                .setHost("127.0.0." + id).setPort(9000 + id).setMaxFeatureLevel(dev.segstore.protocol.FeatureLevels.MAX).build()));
    }

    private CompletableFuture<Message> heartbeat(int id, long incarnation) {
        return service.heartbeat(HeartbeatRequest.newBuilder().setNodeId(id).setIncarnation(incarnation).build());
    }

    private void createShard(String name, Integer... replicas) {
        CommandResult r = state.apply(Command.newBuilder().setVersion(MetaState.VERSION).setTimestampMs(now++)
                .setCreateShard(CreateShardCommand.newBuilder().setName(name)
                        .setSettings(ShardSettings.newBuilder().setReplicaCount(replicas.length).setMinInSyncReplicas(1))
                        .addAllReplicas(List.of(replicas))).build());
        assertTrue(r.isOk(), r.message());
    }

    private CompletableFuture<Message> watch(int id, long incarnation, long appliedVersion) {
        return service.watchAssignments(dev.segstore.protocol.meta.WatchAssignmentsRequest.newBuilder().setNodeId(id)
                .setIncarnation(incarnation).setAppliedMetadataVersion(appliedVersion).setMaxWaitMs(50).build());
    }

    @Test
    void anAssignmentWatchIsAnsweredByTheLeaderOnlyAndForTheNodesAliveIncarnationOnly() throws Exception {
        long inc = register(1).getNode().getIncarnation();
        // Nothing observed a change here (no state machine): the watch waits its 50 ms and says nothing new.
        var r = (dev.segstore.protocol.meta.WatchAssignmentsResponse) await(watch(1, inc, state.appliedCommands()));
        assertFalse(r.getChanged());
        assertEquals(ErrorCode.FENCED_EPOCH.code(), rpcFailure(watch(1, inc + 1, 0)).code(), "an old incarnation");
        assertEquals(ErrorCode.FENCED_EPOCH.code(), rpcFailure(watch(2, 1, 0)).code(), "a node never registered");
        raft.leader = false;
        assertEquals(ErrorCode.NOT_LEADER.code(), rpcFailure(watch(1, inc, 0)).code(), "a follower sends the node to the leader");
    }

    @Test
    void aDeposedLeaderWhoseReadBarrierFailsDoesNotAnswerAHeartbeatFromItsLocalState() throws Exception {
        long inc = register(1).getNode().getIncarnation();
        createShard("a", 1);
        assertEquals(1, ((NodeAssignments) await(heartbeat(1, inc))).getSegmentsCount(), "a leader that is one answers");
        // Deposed but not told yet: it still believes it leads, and its ReadIndex round fails.
        raft.barrier = () -> CompletableFuture.failedFuture(raft.notLeader());
        assertEquals(ErrorCode.NOT_LEADER.code(), rpcFailure(heartbeat(1, inc)).code());
    }

    @Test
    void aHeartbeatIsAnsweredFromTheStateOnceTheReadBarrierCompletes() throws Exception {
        long inc = register(1).getNode().getIncarnation();
        CompletableFuture<Void> pending = new CompletableFuture<>();
        raft.barrier = () -> pending;
        CompletableFuture<Message> answer = heartbeat(1, inc);
        assertFalse(answer.isDone(), "answered before the read barrier completed");
        createShard("late", 1); // committed before the barrier's index: the answer must show it
        pending.complete(null);
        NodeAssignments a = (NodeAssignments) await(answer);
        assertEquals(List.of("late"), a.getSegmentsList().stream().map(s -> s.getShard()).toList());
        assertEquals(state.appliedCommands(), a.getMetadataVersion());
    }

    @Test
    void aHeartbeatReportingStorageOfflineFencesThatIncarnationAndFails() throws Exception {
        long inc1 = register(1).getNode().getIncarnation();
        register(2);
        createShard("a", 1, 2);
        raft.proposed.clear();
        RpcException e = rpcFailure(service.heartbeat(HeartbeatRequest.newBuilder().setNodeId(1).setIncarnation(inc1)
                .setStorageOffline(true).build()));
        assertEquals(ErrorCode.FENCED_EPOCH.code(), e.code());
        assertTrue(e.getMessage().contains("storage offline"), e.getMessage());
        assertEquals(List.of(Command.KindCase.FENCE_NODE), raft.proposed.stream().map(Command::getKindCase).toList());
        // Only its first data directory may be offline: logs on others may still answer reads from its leases.
        assertEquals(FenceNodeCommand.newBuilder().setNodeId(1).setIncarnation(inc1).setLeaderMayServe(true).build(),
                raft.proposed.get(0).getFenceNode());
        assertEquals(NodeState.FENCED, state.node(1).orElseThrow().getState());
        Segment s = state.route("a").getSegments(0);
        assertTrue(s.getDeposedLeaderMayServe(), "its successor waits out its lease");
        assertEquals(2, s.getLeader(), "its leadership moved to the other ISR member");
        assertEquals(1, s.getLeaderEpoch());
        assertEquals(List.of(2), s.getIsrList());
        assertEquals(ErrorCode.FENCED_EPOCH.code(), rpcFailure(heartbeat(1, inc1)).code(), "fenced: it must register again");
    }

    /**
     * A heartbeat that comes while the fence for a lapsed session is proposed and not yet applied is refused: its
     * answer would confirm the node's leaderships and start a read lease, and the successors the fence elects do not
     * wait for one (a fenced leader needs none: it sent nothing for a session).
     */
    @Test
    void aNodeBeingFencedForItsLapsedSessionGetsNoAnswerUntilTheFenceApplies() throws Exception {
        long inc1 = register(1).getNode().getIncarnation();
        register(2);
        createShard("a", 1, 2);
        raft.proposed.clear();
        CompletableFuture<Void> commit = new CompletableFuture<>();
        raft.hold = commit;
        now += 60_001;
        controller.heartbeat(2); // node 2 is alive; node 1 sent nothing for a session
        controller.fenceExpired();
        assertEquals(List.of(Command.KindCase.FENCE_NODE), raft.proposed.stream().map(Command::getKindCase).toList());
        assertEquals(NodeState.ALIVE, state.node(1).orElseThrow().getState(), "the fence is not applied yet");
        RpcException refused = rpcFailure(heartbeat(1, inc1));
        assertEquals(ErrorCode.UNAVAILABLE.code(), refused.code(), "answered with its assignments while it is being fenced");
        assertEquals(ErrorCode.UNAVAILABLE.code(), rpcFailure(service.registerNode(RegisterNodeRequest.newBuilder().setNodeId(1)
                .setHost("127.0.0.1").setPort(9001).build())).code(), "a registration (a retry's answer lists its leaderships) waits too");
        raft.hold = null;
        commit.complete(null);
        assertEquals(NodeState.FENCED, state.node(1).orElseThrow().getState());
        assertEquals(ErrorCode.FENCED_EPOCH.code(), rpcFailure(heartbeat(1, inc1)).code(), "fenced: it must register again");
        assertEquals(2, state.route("a").getSegments(0).getLeader());
    }

    /**
     * A leadership moved from a live node: the new leader's heartbeat answers say how long the old one may still
     * answer reads from its lease (its read.lease.ms after its last heartbeat), and once the old leader reports that
     * it applied the move, that the wait is over: pushed to the new leader's held watch, and in its next answer.
     */
    @Test
    void aNewLeaderIsToldWhenTheOldLeadersLeaseEndsAndThatItEndedOnceTheOldLeaderAppliedTheMove() throws Exception {
        long[] inc = moveShardMFromNode1To2(500);
        long inc1 = inc[1];
        long inc2 = inc[2];
        long heardAt = inc[0]; // node 1's last heartbeat: a lease from it runs 3 s at most
        Segment s = state.route("m").getSegments(0);
        assertEquals(2, s.getLeader());
        assertTrue(s.getDeposedLeaderMayServe());
        NodeAssignments a = (NodeAssignments) await(heartbeat(2, inc2, state.appliedCommands()));
        assertEquals(List.of(dev.segstore.protocol.meta.LeaseWait.newBuilder().setShardId(s.getShardId()).setSequence(0).setLeaderEpoch(1)
                .setRemainingMs(heardAt + 3_000 - now).build()), a.getLeaseWaitsList());
        CompletableFuture<Message> held = service.watchAssignments(dev.segstore.protocol.meta.WatchAssignmentsRequest.newBuilder()
                .setNodeId(2).setIncarnation(inc2).setAppliedMetadataVersion(state.appliedCommands()).setMaxWaitMs(5_000).build());
        assertFalse(held.isDone());
        await(heartbeat(1, inc1, state.appliedCommands())); // node 1 applied the move: it follows now
        var pushed = (dev.segstore.protocol.meta.WatchAssignmentsResponse) await(held);
        assertFalse(pushed.getChanged());
        assertEquals(0, pushed.getLeaseWaits(0).getRemainingMs(), "node 1 stepped down: no more wait");
        assertEquals(0, ((NodeAssignments) await(heartbeat(2, inc2, state.appliedCommands()))).getLeaseWaits(0).getRemainingMs());
    }

    /** Another process registering under the deposed leader's node id says nothing of the old one, which may live on. */
    @Test
    void aNewLeaderIsNotReleasedByAnotherIncarnationOfTheOldLeader() throws Exception {
        long[] inc = moveShardMFromNode1To2(0);
        long inc1 = inc[1];
        long inc2 = inc[2];
        long other = registerWithLease(1);
        assertTrue(other > inc1);
        await(heartbeat(1, other, state.appliedCommands()));
        NodeAssignments a = (NodeAssignments) await(heartbeat(2, inc2, state.appliedCommands()));
        assertEquals(1, a.getLeaseWaitsCount());
        assertTrue(a.getLeaseWaits(0).getRemainingMs() > 0, "released by another incarnation's report: " + a.getLeaseWaits(0));
    }

    /**
     * Nodes 1 and 2 (read.lease.ms 3 s), shard "m" led by node 1, which heartbeats; {@code afterMs} later the
     * leadership moves to node 2. Answers the incarnations by node id, and at 0 when node 1's heartbeat came.
     */
    private long[] moveShardMFromNode1To2(long afterMs) throws Exception {
        long[] inc = {0, registerWithLease(1), registerWithLease(2)};
        createShard("m", 1, 2);
        await(heartbeat(1, inc[1], state.appliedCommands()));
        inc[0] = now;
        now += afterMs;
        await(service.moveLeader(dev.segstore.protocol.meta.MoveLeaderRequest.newBuilder().setShard("m").setTo(2).build()));
        return inc;
    }

    private long registerWithLease(int id) throws Exception {
        return ((NodeAssignments) await(service.registerNode(RegisterNodeRequest.newBuilder().setNodeId(id).setHost("127.0.0." + id)
                .setPort(9000 + id).setReadLeaseMs(3_000).setMaxFeatureLevel(dev.segstore.protocol.FeatureLevels.MAX).build()))).getNode().getIncarnation();
    }

    /**
     * A second move while the first old leader may still serve: what the meta leader knows of the second old leader
     * says nothing of the first, so the newest leader is told nothing and waits its whole lease. Once the first old
     * leader stepped down, a second move is told as the first was.
     */
    @Test
    void aNewLeaderIsToldNothingWhileALeaderBeforeTheOneItReplacedMayStillServe() throws Exception {
        long[] inc = {0, registerWithLease(1), registerWithLease(2), registerWithLease(3)};
        createShard("m", 1, 2, 3);
        createShard("n", 1, 2, 3);
        for (int id = 1; id <= 3; id++) {
            await(heartbeat(id, inc[id], state.appliedCommands()));
        }
        for (String shard : List.of("m", "n")) {
            await(service.moveLeader(dev.segstore.protocol.meta.MoveLeaderRequest.newBuilder().setShard(shard).setTo(2).build()));
        }
        await(service.moveLeader(dev.segstore.protocol.meta.MoveLeaderRequest.newBuilder().setShard("m").setTo(3).build()));
        assertEquals(List.of(), ((NodeAssignments) await(heartbeat(3, inc[3], state.appliedCommands()))).getLeaseWaitsList(),
                "node 1, leader of m before node 2, has not stepped down: node 3 must wait its own lease");
        await(heartbeat(1, inc[1], state.appliedCommands())); // node 1 stepped down from both
        await(service.moveLeader(dev.segstore.protocol.meta.MoveLeaderRequest.newBuilder().setShard("n").setTo(3).build()));
        NodeAssignments a = (NodeAssignments) await(heartbeat(3, inc[3], state.appliedCommands()));
        long n = state.shard("n").orElseThrow().getShardId();
        assertEquals(List.of(n + "@2"), a.getLeaseWaitsList().stream().map(w -> w.getShardId() + "@" + w.getLeaderEpoch()).toList());
        assertTrue(a.getLeaseWaits(0).getRemainingMs() > 0, "node 2 has not stepped down from n yet");
    }

    @Test
    void aStorageOfflineReportFromAnOldIncarnationFencesNothing() throws Exception {
        long old = register(1).getNode().getIncarnation();
        long current = register(1).getNode().getIncarnation();
        raft.proposed.clear();
        RpcException e = rpcFailure(service.heartbeat(HeartbeatRequest.newBuilder().setNodeId(1).setIncarnation(old)
                .setStorageOffline(true).build()));
        assertEquals(ErrorCode.FENCED_EPOCH.code(), e.code());
        assertEquals(List.of(), raft.proposed, "an old incarnation's report must not fence the current one");
        assertEquals(NodeState.ALIVE, state.node(1).orElseThrow().getState());
        assertEquals(current, state.node(1).orElseThrow().getIncarnation());
    }

    @Test
    void aNodeWhoseStorageIsOfflineCannotRegister() throws Exception {
        raft.proposed.clear();
        RpcException e = rpcFailure(service.registerNode(RegisterNodeRequest.newBuilder().setNodeId(1).setHost("127.0.0.1")
                .setPort(9001).setStorageOffline(true).build()));
        assertEquals(ErrorCode.UNAVAILABLE.code(), e.code());
        assertTrue(e.getMessage().contains("storage is offline"), e.getMessage());
        assertEquals(List.of(), raft.proposed);
        assertTrue(state.node(1).isEmpty());
    }

    // ---- command times (issue 15, item 6) ----------------------------------------------------------------------

    @Test
    void aLeaderWhoseClockIsBehindStampsCommandsNoEarlierThanTheLastOneApplied() throws Exception {
        // A command a previous leader, whose clock was ahead, stamped at 90000.
        assertTrue(state.apply(Command.newBuilder().setVersion(MetaState.VERSION).setTimestampMs(90_000).setMonotonicTimestamp(true)
                .setRegisterNode(dev.segstore.protocol.meta.RegisterNodeCommand.newBuilder().setNodeId(7).setHost("h").setPort(1))
                .build()).isOk());
        raft.proposed.clear();
        register(1); // this leader's clock reads about 1000
        assertEquals(90_000, raft.proposed.get(0).getTimestampMs(), "command times must not go back");
        assertTrue(raft.proposed.get(0).getMonotonicTimestamp());
        assertEquals(90_000, state.node(1).orElseThrow().getRegisteredAtMs());
    }

    // ---- shard identity (issue 15, items 3-4) -----------------------------------------------------------------

    private CompletableFuture<Message> heartbeat(int id, long incarnation, long applied) {
        return service.heartbeat(HeartbeatRequest.newBuilder().setNodeId(id).setIncarnation(incarnation)
                .setAppliedMetadataVersion(applied).build());
    }

    @Test
    void aDeleteIsAnsweredOnlyOnceEveryNodeThatHostedTheShardHasDroppedIt() throws Exception {
        long inc1 = register(1).getNode().getIncarnation();
        long inc2 = register(2).getNode().getIncarnation();
        createShard("del", 1, 2);
        long id = state.route("del").getShard().getShardId();
        CompletableFuture<Message> deleted = service.deleteShard(dev.segstore.protocol.meta.DeleteShardRequest.newBuilder().setName("del").build());
        assertFalse(deleted.isDone(), "answered before the nodes hosting the shard dropped it");
        NodeAssignments a1 = (NodeAssignments) await(heartbeat(1, inc1, 0));
        assertEquals(List.of(id), a1.getDeletedShardIdsList(), "node 1 is told the id is deleted");
        assertTrue(a1.getSegmentsList().isEmpty());
        assertFalse(deleted.isDone(), "node 1 has not applied that answer yet");
        await(heartbeat(1, inc1, a1.getMetadataVersion()));
        assertFalse(deleted.isDone(), "node 2 has not applied it yet");
        NodeAssignments a2 = (NodeAssignments) await(heartbeat(2, inc2, 0));
        await(heartbeat(2, inc2, a2.getMetadataVersion()));
        await(deleted);
        assertTrue(state.snapshot().getShardsList().isEmpty(), "the delete is finished: " + state.snapshot().getShardsList());
        assertEquals(List.of(), ((NodeAssignments) await(heartbeat(2, inc2, a2.getMetadataVersion()))).getDeletedShardIdsList());
    }

    @Test
    void aDeleteDoesNotWaitForANodeThatIsNoLongerAlive() throws Exception {
        long inc1 = register(1).getNode().getIncarnation();
        long inc2 = register(2).getNode().getIncarnation();
        createShard("del2", 1, 2);
        CompletableFuture<Message> deleted = service.deleteShard(dev.segstore.protocol.meta.DeleteShardRequest.newBuilder().setName("del2").build());
        await(raft.propose(Command.newBuilder().setVersion(MetaState.VERSION).setTimestampMs(now++)
                .setFenceNode(FenceNodeCommand.newBuilder().setNodeId(2).setIncarnation(inc2)).build()));
        NodeAssignments a1 = (NodeAssignments) await(heartbeat(1, inc1, 0));
        await(heartbeat(1, inc1, a1.getMetadataVersion()));
        await(deleted);
    }

    @Test
    void aRollAskedByANodeThatDoesNotLeadTheSegmentIsFenced() throws Exception {
        register(1);
        register(2);
        createShard("roll", 1, 2);
        Segment open = state.route("roll").getSegments(0);
        RpcException e = rpcFailure(service.rollSegment(dev.segstore.protocol.meta.RollSegmentRequest.newBuilder().setShard("roll")
                .setShardId(open.getShardId()).setSequence(0).setLeader(2).setLeaderEpoch(0).setEndOffset(5).build()));
        assertEquals(ErrorCode.FENCED_EPOCH.code(), e.code(), e.getMessage());
        assertEquals(1, state.route("roll").getSegmentsCount(), "not rolled");
    }

    @Test
    void aNewClusterTakesItsFeatureLevelWithItsFirstShardAndAnUnknownLevelIsRefused() throws Exception {
        register(1);
        int before = raft.proposed.size();
        await(service.createShard(dev.segstore.protocol.meta.CreateShardRequest.newBuilder().setName("first")
                .setSettings(ShardSettings.newBuilder().setReplicaCount(1).setMinInSyncReplicas(1)).build()));
        assertEquals(before + 1, raft.proposed.size(), "one command");
        assertEquals(MetaState.MAX_FEATURE_LEVEL, raft.proposed.get(before).getCreateShard().getNewClusterFeatureLevel(),
                "the create carries the level a new cluster takes with it");
        assertEquals(MetaState.MAX_FEATURE_LEVEL, state.featureLevel());
        int proposed = raft.proposed.size();
        RpcException e = rpcFailure(service.setFeatureLevel(dev.segstore.protocol.meta.SetFeatureLevelRequest.newBuilder()
                .setLevel(MetaState.MAX_FEATURE_LEVEL + 1).build()));
        assertEquals(ErrorCode.INVALID_ARGUMENT.code(), e.code(), e.getMessage());
        assertEquals(proposed, raft.proposed.size(), "a level this build does not know is never proposed");
    }

    private NodeAssignments registerKnowing(int id, int level) throws Exception {
        return (NodeAssignments) await(service.registerNode(RegisterNodeRequest.newBuilder().setNodeId(id)
                .setHost("127.0.0." + id).setPort(9000 + id).setMaxFeatureLevel(level).build()));
    }

    @Test
    void aRaiseNamesTheStorageNodesHeardToKnowTheLevelAndAnOlderNodeIsThenRefusedWithoutACommand() throws Exception {
        long inc1 = registerKnowing(1, 0).getNode().getIncarnation(); // an older build: it does not say
        long inc2 = register(2).getNode().getIncarnation();
        createShard("old", 1); // applied as an older leader's create: the cluster stays at level 0
        assertEquals(null, state.apply(Command.newBuilder().setVersion(MetaState.VERSION).setSetFeatureLevel(
                dev.segstore.protocol.meta.SetFeatureLevelCommand.newBuilder().setLevel(1)).build()).error());
        int before = raft.proposed.size();
        RpcException held = rpcFailure(service.setFeatureLevel(dev.segstore.protocol.meta.SetFeatureLevelRequest.newBuilder().setLevel(2).build()));
        assertEquals(ErrorCode.INVALID_ARGUMENT.code(), held.code(), held.getMessage());
        assertTrue(held.getMessage().contains("storage nodes [1 (incarnation " + inc1 + ")]"), held.getMessage());
        assertEquals(before, raft.proposed.size(), "a refused raise takes no log entry (a meta node of an older build would stop at it)");
        assertEquals(1, state.featureLevel());

        // A meta leader elected since (it heard nothing yet) learns from heartbeats; node 1 upgraded registers again.
        MetaService newLeader = new MetaService(state, raft, controller, () -> now++, List.of());
        long inc1Upgraded = registerKnowing(1, FeatureLevels.MAX).getNode().getIncarnation();
        assertTrue(inc1Upgraded > inc1);
        assertEquals(ErrorCode.INVALID_ARGUMENT.code(), rpcFailure(newLeader.setFeatureLevel(
                dev.segstore.protocol.meta.SetFeatureLevelRequest.newBuilder().setLevel(2).build())).code(), "nothing heard yet");
        for (long[] node : new long[][] {{1, inc1Upgraded}, {2, inc2}}) {
            await(newLeader.heartbeat(HeartbeatRequest.newBuilder().setNodeId((int) node[0]).setIncarnation(node[1])
                    .setMaxFeatureLevel(FeatureLevels.MAX).build()));
        }
        await(newLeader.setFeatureLevel(dev.segstore.protocol.meta.SetFeatureLevelRequest.newBuilder().setLevel(2).build()));
        assertEquals(2, state.featureLevel());
        assertEquals(java.util.Set.of(dev.segstore.protocol.meta.NodeIncarnation.newBuilder().setNodeId(1).setIncarnation(inc1Upgraded).build(),
                dev.segstore.protocol.meta.NodeIncarnation.newBuilder().setNodeId(2).setIncarnation(inc2).build()),
                java.util.Set.copyOf(raft.proposed.get(raft.proposed.size() - 1).getSetFeatureLevel().getStorageNodesList()),
                "the raise names the nodes heard to know it");

        // From then on a storage node of an older build is refused before anything is proposed.
        int proposed = raft.proposed.size();
        RpcException old = rpcFailure(newLeader.registerNode(RegisterNodeRequest.newBuilder().setNodeId(3).setHost("127.0.0.3").setPort(9003).build()));
        assertEquals(ErrorCode.INVALID_ARGUMENT.code(), old.code(), old.getMessage());
        assertTrue(old.getMessage().contains("storage node 3"), old.getMessage());
        assertEquals(proposed, raft.proposed.size(), "a refused registration takes no log entry");
        assertTrue(state.node(3).isEmpty());
    }

    @Test
    void aNewClustersFirstShardWaitsToHearItsNodesFromAMetaLeaderElectedSinceTheyRegistered() throws Exception {
        long inc1 = register(1).getNode().getIncarnation();
        MetaService newLeader = new MetaService(state, raft, controller, () -> now++, List.of()); // heard nothing yet
        CompletableFuture<Message> created = newLeader.createShard(dev.segstore.protocol.meta.CreateShardRequest.newBuilder().setName("first")
                .setSettings(ShardSettings.newBuilder().setReplicaCount(1).setMinInSyncReplicas(1)).build());
        assertFalse(created.isDone(), "waits for node 1's next heartbeat");
        await(newLeader.heartbeat(HeartbeatRequest.newBuilder().setNodeId(1).setIncarnation(inc1).setMaxFeatureLevel(FeatureLevels.MAX).build()));
        await(created);
        assertEquals(MetaState.MAX_FEATURE_LEVEL, state.featureLevel(), "heard in time: the new cluster takes its build's level");
    }

    @Test
    void aRefusedRegistrationIsNoSignOfTheNodesLife() throws Exception {
        register(1);
        createShard("first", 1);
        assertEquals(null, state.apply(Command.newBuilder().setVersion(MetaState.VERSION).setSetFeatureLevel(
                dev.segstore.protocol.meta.SetFeatureLevelCommand.newBuilder().setLevel(2).addStorageNodes(dev.segstore.protocol.meta.NodeIncarnation
                        .newBuilder().setNodeId(1).setIncarnation(state.node(1).orElseThrow().getIncarnation()))).build()).error());
        Long heard = controller.lastHeartbeatMs(1);
        now += 5_000;
        // Node 1 restarted on an older build: refused, and its registered incarnation must still be fenced once quiet.
        RpcException e = rpcFailure(service.registerNode(RegisterNodeRequest.newBuilder().setNodeId(1).setHost("127.0.0.1").setPort(9001).build()));
        assertEquals(ErrorCode.INVALID_ARGUMENT.code(), e.code(), e.getMessage());
        assertEquals(heard, controller.lastHeartbeatMs(1), "a refused registration does not count as the node's heartbeat");
    }

    @Test
    void aNewClusterTakesLevel2OnlyIfItsLeaderHeardEveryAliveStorageNodeKnowIt() throws Exception {
        registerKnowing(1, 0);
        register(2);
        int before = raft.proposed.size();
        CompletableFuture<Message> created = service.createShard(dev.segstore.protocol.meta.CreateShardRequest.newBuilder().setName("first")
                .setSettings(ShardSettings.newBuilder().setReplicaCount(1).setMinInSyncReplicas(1)).build());
        // Proposed at once: node 1 was heard, at an older level, and will not say more. Before, the create waited its
        // 2 s for it all the same, and a node registered by segstore-admin (which never heartbeats) could be fenced
        // meanwhile: AdminCommandsTest then failed with NOT_ENOUGH_REPLICAS, 2 runs in 3.
        assertEquals(before + 1, raft.proposed.size(), "proposed without waiting for a node heard at an older level");
        await(created);
        assertEquals(1, state.featureLevel(), "node 1 runs an older build");
        assertEquals(1, raft.proposed.get(before).getCreateShard().getNewClusterFeatureLevel(),
                "sent as 1: a meta node that knows level 1 at most does not stop at it");
    }

    @Test
    void belowTheFeatureLevelNoCloseIsProposedEvenForASegmentNotOpenYet() throws Exception {
        register(1);
        createShard("old", 1); // applied as an older leader's create: the cluster stays at level 0
        assertEquals(0, state.featureLevel());
        Segment open = state.route("old").getSegments(0);
        int proposed = raft.proposed.size();
        // The next segment (taken ahead, its seal not applied yet) asks to close: a command would be applied by other
        // rules on a meta node of an older build.
        RpcException e = rpcFailure(service.closeSegment(dev.segstore.protocol.meta.CloseSegmentRequest.newBuilder().setShard("old")
                .setShardId(open.getShardId()).setSequence(1).setLeader(1).setLeaderEpoch(0).build()));
        assertEquals(ErrorCode.INVALID_ARGUMENT.code(), e.code(), e.getMessage());
        assertTrue(e.getMessage().contains("feature level 0"), e.getMessage());
        assertEquals(proposed, raft.proposed.size(), "nothing proposed below the level");
    }

    @Test
    void aCloseThatWouldBeRefusedIsAnsweredWithoutACommand() throws Exception {
        register(1);
        register(2);
        await(service.createShard(dev.segstore.protocol.meta.CreateShardRequest.newBuilder().setName("unclean")
                .setSettings(ShardSettings.newBuilder().setReplicaCount(2).setMinInSyncReplicas(1).setUncleanLeaderElection(true)).build()));
        Segment open = state.route("unclean").getSegments(0);
        int proposed = raft.proposed.size();
        RpcException e = rpcFailure(service.closeSegment(dev.segstore.protocol.meta.CloseSegmentRequest.newBuilder().setShard("unclean")
                .setShardId(open.getShardId()).setSequence(0).setLeader(open.getLeader()).setLeaderEpoch(open.getLeaderEpoch()).build()));
        assertEquals(ErrorCode.INVALID_ARGUMENT.code(), e.code(), e.getMessage());
        assertTrue(e.getMessage().contains("unclean"), e.getMessage());
        assertEquals(proposed, raft.proposed.size(), "a refusal takes no log entry (and wakes no assignment watch)");
        // What the command answers otherwise is its own: a stale epoch is FENCED_EPOCH, as before.
        RpcException stale = rpcFailure(service.closeSegment(dev.segstore.protocol.meta.CloseSegmentRequest.newBuilder().setShard("unclean")
                .setShardId(open.getShardId()).setSequence(0).setLeader(open.getLeader()).setLeaderEpoch(open.getLeaderEpoch() + 1).build()));
        assertEquals(ErrorCode.FENCED_EPOCH.code(), stale.code(), stale.getMessage());
        // A meta node that does not lead answers NOT_LEADER, not a refusal from its own (maybe stale) state.
        raft.leader = false;
        RpcException follower = rpcFailure(service.closeSegment(dev.segstore.protocol.meta.CloseSegmentRequest.newBuilder().setShard("unclean")
                .setShardId(open.getShardId()).setSequence(0).setLeader(open.getLeader()).setLeaderEpoch(open.getLeaderEpoch()).build()));
        assertEquals(ErrorCode.NOT_LEADER.code(), follower.code(), follower.getMessage());
    }

    @Test
    void aCreateRetriedAfterItsAnswerWasLostIsAnsweredWithTheShardItMade() throws Exception {
        register(1);
        dev.segstore.protocol.meta.CreateShardRequest create = dev.segstore.protocol.meta.CreateShardRequest.newBuilder().setName("c")
                .setSettings(ShardSettings.newBuilder().setReplicaCount(1).setMinInSyncReplicas(1))
                .setRequestId(com.google.protobuf.ByteString.copyFromUtf8("one-call")).build();
        raft.loseNextAnswer = true;
        assertEquals(ErrorCode.TIMEOUT.code(), rpcFailure(service.createShard(create)).code());
        long id = state.route("c").getShard().getShardId();
        dev.segstore.protocol.meta.ShardRoute route = (dev.segstore.protocol.meta.ShardRoute) await(service.createShard(create));
        assertEquals(id, route.getShard().getShardId(), "the retry is answered with the shard the first attempt made");
        assertEquals(1, route.getSegmentsCount());
    }

    @Test
    void aDeleteRetriedAfterItFinishedIsAnsweredOk() throws Exception {
        long inc1 = register(1).getNode().getIncarnation();
        createShard("d", 1);
        dev.segstore.protocol.meta.DeleteShardRequest delete = dev.segstore.protocol.meta.DeleteShardRequest.newBuilder().setName("d")
                .setRequestId(com.google.protobuf.ByteString.copyFromUtf8("one-call")).build();
        raft.loseNextAnswer = true;
        assertEquals(ErrorCode.TIMEOUT.code(), rpcFailure(service.deleteShard(delete)).code());
        NodeAssignments a1 = (NodeAssignments) await(heartbeat(1, inc1, 0));
        await(heartbeat(1, inc1, a1.getMetadataVersion())); // node 1 dropped it: the controller finishes the delete
        assertTrue(state.snapshot().getShardsList().isEmpty(), "the delete finished: " + state.snapshot().getShardsList());
        await(service.deleteShard(delete)); // the retry: OK, not SHARD_NOT_FOUND
        assertEquals(ErrorCode.SHARD_NOT_FOUND.code(), rpcFailure(service.deleteShard(delete.toBuilder()
                .setRequestId(com.google.protobuf.ByteString.copyFromUtf8("another-call")).build())).code());
    }

    private static dev.segstore.protocol.meta.CommitOffsetsRequest commit(String shard, long offset) {
        return dev.segstore.protocol.meta.CommitOffsetsRequest.newBuilder().addOffsets(dev.segstore.protocol.meta.GroupOffset.newBuilder()
                .setGroup("g").setShard(shard).setOffset(offset)).build();
    }

    @Test
    void aFollowerWhoseStateLacksTheShardAnswersNotLeaderNotShardNotFound() {
        raft.leader = false;
        assertEquals(ErrorCode.NOT_LEADER.code(), rpcFailure(service.commitOffsets(commit("not-applied-here-yet", 1))).code(),
                "SHARD_NOT_FOUND is final for the client; this replica may only be behind");
    }

    @Test
    void aLeaderLooksForAMissingShardAgainAfterItsReadBarrier() throws Exception {
        register(1);
        // The leader's applied state lags what it committed: the shard is there once the read barrier completes.
        raft.barrier = () -> {
            if (state.route("late") == null) {
                createShard("late", 1);
            }
            return CompletableFuture.completedFuture(null);
        };
        await(service.commitOffsets(commit("late", 5)));
        assertEquals(5L, state.groupOffset("g", "late").orElseThrow());
        assertEquals(ErrorCode.SHARD_NOT_FOUND.code(), rpcFailure(service.commitOffsets(commit("never", 1))).code());
    }
}
