package dev.segstore.meta.server;

import dev.segstore.meta.state.CommandResult;
import dev.segstore.meta.state.MetaState;
import dev.segstore.protocol.meta.Command;
import dev.segstore.protocol.meta.CreateShardCommand;
import dev.segstore.protocol.meta.NodeState;
import dev.segstore.protocol.meta.RegisterNodeCommand;
import dev.segstore.protocol.meta.RollSegmentCommand;
import dev.segstore.protocol.meta.ShardSettings;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The {@link Controller}'s clocks (issue 15, item 6): a wall clock that only stamps commands and a monotonic one
 * that measures every duration, both driven by the test, which also runs the controller's periodic checks
 * itself ({@code fenceExpired}, {@code expireRetained}) instead of its timer. The wall clock jumps; sessions and
 * retention must not.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class ControllerClockTest {
    private static final long SESSION_MS = 6_000;
    private static final long RETENTION_MS = 60_000;
    private static final long HOUR_MS = 3_600_000;
    /** Some wall-clock time: 2024-01-01. */
    private static final long T = 1_704_067_200_000L;

    private final MetaState state = new MetaState();
    private final MetaServiceTest.FakeRaft raft = new MetaServiceTest.FakeRaft(state);
    private final List<Controller> controllers = new ArrayList<>();
    private long wall = T;
    private long mono = 5_000;

    @AfterEach
    void close() {
        controllers.forEach(Controller::close);
    }

    /** A controller on this node, just elected: its term starts now. */
    private Controller leader() {
        Controller c = new Controller(state, raft, SESSION_MS, () -> wall, () -> mono);
        controllers.add(c);
        c.beginTerm();
        return c;
    }

    private void apply(long timestampMs, Command.Builder c) {
        CommandResult r = state.apply(c.setVersion(MetaState.VERSION).setTimestampMs(timestampMs).setMonotonicTimestamp(true).build());
        assertEquals(null, r.error(), r.message());
    }

    private void register(int id) {
        register(id, 0);
    }

    private void register(int id, long readLeaseMs) {
        apply(wall, Command.newBuilder().setRegisterNode(RegisterNodeCommand.newBuilder().setNodeId(id).setHost("h").setPort(id)
                .setReadLeaseMs(readLeaseMs)));
    }

    /** Shard "r" (retention {@link #RETENTION_MS}) on node 1, its segment 0 sealed at {@code sealedAt}. */
    private void sealedSegment(long sealedAt) {
        register(1);
        apply(wall, Command.newBuilder().setCreateShard(CreateShardCommand.newBuilder().setName("r")
                .setSettings(ShardSettings.newBuilder().setReplicaCount(1).setMinInSyncReplicas(1).setRetentionMs(RETENTION_MS))
                .addReplicas(1)));
        apply(sealedAt, Command.newBuilder().setRollSegment(RollSegmentCommand.newBuilder().setShard("r").setSequence(0)
                .setLeaderEpoch(0).setEndOffset(5).addNextReplicas(1)));
        assertEquals(sealedAt, state.route("r").getSegments(0).getSealedAtMs());
    }

    /** Real time passes: both clocks run {@code ms} on. */
    private void elapse(long ms) {
        mono += ms;
        wall += ms;
    }

    /** From now on, segment 0 is kept until 1 ms short of the retention, and dropped once the retention has passed. */
    private void assertDroppedOnceRetentionHasPassed(Controller controller) {
        elapse(RETENTION_MS - 1);
        controller.expireRetained();
        assertEquals(0, oldestSegment(), "1 ms short of the retention");
        elapse(1);
        controller.expireRetained();
        assertEquals(1, oldestSegment(), "the retention has passed on the monotonic clock: dropped");
    }

    private long oldestSegment() {
        return state.route("r").getSegments(0).getSequence();
    }

    private List<Command.KindCase> proposed() {
        return raft.proposed.stream().map(Command::getKindCase).toList();
    }

    private NodeState nodeState(int id) {
        return state.node(id).orElseThrow().getState();
    }

    // ---- sessions --------------------------------------------------------------------------------------------

    @Test
    void aWallClockStepForwardFencesNoNode() {
        register(1);
        register(2);
        Controller controller = leader();
        controller.heartbeat(1);
        controller.heartbeat(2);
        wall += 5 * HOUR_MS; // NTP steps the leader's clock; no time has passed
        mono += 10;
        controller.fenceExpired();
        assertEquals(List.of(), proposed(), "a wall-clock step is not a silent node");
        assertEquals(NodeState.ALIVE, nodeState(1));
        assertEquals(NodeState.ALIVE, nodeState(2));
    }

    @Test
    void aNodeSilentForASessionIsFencedEvenIfTheWallClockWentBack() {
        register(1);
        register(2);
        Controller controller = leader();
        controller.heartbeat(1);
        controller.heartbeat(2);
        wall -= 5 * HOUR_MS; // stepped back
        mono += SESSION_MS / 2;
        controller.heartbeat(1); // node 1 keeps sending; node 2 has died
        mono += SESSION_MS / 2 + 1;
        controller.fenceExpired();
        assertEquals(List.of(Command.KindCase.FENCE_NODE), proposed(), "node 2 sent nothing for a session timeout");
        assertEquals(2, raft.proposed.get(0).getFenceNode().getNodeId());
        assertEquals(NodeState.FENCED, nodeState(2));
        assertEquals(NodeState.ALIVE, nodeState(1));
        assertTrue(raft.proposed.get(0).getTimestampMs() >= T, "the fence is stamped no earlier than the commands before it: "
                + raft.proposed.get(0).getTimestampMs());
    }

    /**
     * A silent node is fenced after the session timeout. Its successors need not wait for its leader read leases only
     * if its last heartbeat is older than its read.lease.ms; a lease as long as the session, or not reported, may
     * still run.
     */
    @Test
    void aFenceSaysTheNodeMayStillServeWhenItsReadLeaseIsNotShorterThanItsSilence() {
        register(1, SESSION_MS / 2);
        register(2, SESSION_MS + 1_000);
        register(3);
        Controller controller = leader();
        mono += SESSION_MS + 1;
        controller.fenceExpired();
        Map<Integer, Boolean> mayServe = new java.util.TreeMap<>();
        raft.proposed.forEach(c -> mayServe.put(c.getFenceNode().getNodeId(), c.getFenceNode().getLeaderMayServe()));
        assertEquals(Map.of(1, false, 2, true, 3, true), mayServe, "node 1's lease ended before its session; not the others'");
    }

    /**
     * A segment whose leadership was moved from a live node makes its new leaders wait out the old one's lease; the
     * controller unsets that once it has seen the segment so, in its epoch, for the longest read.lease.ms of any node:
     * every deposed leader's lease ended by then. A later epoch is counted afresh.
     */
    @Test
    void aDeposedLeadersWaitIsClearedOnceTheLongestLeaseHasPassedSinceItWasSeen() {
        register(1, 2_000);
        register(2, 3_000);
        for (String shard : List.of("m", "n")) {
            apply(wall, Command.newBuilder().setCreateShard(CreateShardCommand.newBuilder().setName(shard)
                    .setSettings(ShardSettings.newBuilder().setReplicaCount(2).setMinInSyncReplicas(1)).addReplicas(1).addReplicas(2)));
            apply(wall, Command.newBuilder().setMoveLeader(dev.segstore.protocol.meta.MoveLeaderCommand.newBuilder().setShard(shard)
                    .setShardId(state.shard(shard).orElseThrow().getShardId()).setSequence(0).setLeaderEpoch(0).setTo(2)));
            assertTrue(state.route(shard).getSegments(0).getDeposedLeaderMayServe());
        }
        long id = state.shard("m").orElseThrow().getShardId();
        Controller controller = leader();
        controller.clearDeposed(); // seen now
        mono += 2_999;
        controller.clearDeposed();
        assertEquals(List.of(), proposed(), "node 2's lease (3 s) may still run: it is the longest");
        mono += 1;
        controller.clearDeposed();
        assertEquals(List.of(Command.KindCase.CLEAR_DEPOSED_LEADER), proposed(), "one command for both segments");
        assertEquals(2, raft.proposed.get(0).getClearDeposedLeader().getSegmentsCount());
        assertEquals(false, state.route("m").getSegments(0).getDeposedLeaderMayServe(), "cleared");
        assertEquals(false, state.route("n").getSegments(0).getDeposedLeaderMayServe(), "cleared");
        // Moved again: a new epoch, seen afresh.
        apply(wall, Command.newBuilder().setMoveLeader(dev.segstore.protocol.meta.MoveLeaderCommand.newBuilder().setShard("m")
                .setShardId(id).setSequence(0).setLeaderEpoch(1).setTo(1)));
        raft.proposed.clear();
        controller.clearDeposed();
        mono += 2_999;
        controller.clearDeposed();
        assertEquals(List.of(), proposed());
    }

    // ---- retention -------------------------------------------------------------------------------------------

    @Test
    void aWallClockStepForwardDropsNoSegmentBeforeRetentionHasPassedOnTheMonotonicClock() {
        sealedSegment(wall);
        Controller controller = leader();
        wall += RETENTION_MS + HOUR_MS; // stepped forward by more than the retention
        controller.expireRetained();
        assertEquals(List.of(), proposed(), "sealed moments ago: a clock step must not drop it");
        assertEquals(0, oldestSegment());
        assertDroppedOnceRetentionHasPassed(controller);
        assertEquals(List.of(Command.KindCase.EXPIRE_SEGMENTS), proposed());
    }

    @Test
    void aNewLeaderWhoseWallClockIsAheadDropsNoSegmentEarly() {
        sealedSegment(wall);
        leader(); // the old leader; it fails over
        wall += 10 * HOUR_MS; // the new leader's clock is ten hours ahead
        mono = 777; // and its monotonic clock has nothing to do with the old one's
        Controller next = leader();
        next.expireRetained();
        assertEquals(List.of(), proposed(), "the log shows the segment sealed moments ago");
        assertDroppedOnceRetentionHasPassed(next);
    }

    @Test
    void aNewLeaderDropsAtOnceWhatTheLogAlreadyShowsPastRetention() {
        sealedSegment(wall);
        wall += RETENTION_MS;
        register(2); // a later command: the log attests that the retention has passed since the seal
        wall += 50;
        mono = 3;
        leader().expireRetained();
        assertEquals(1, oldestSegment(), "no retention-long wait after a failover");
    }

    @Test
    void aSegmentSealedUnderTheCurrentLeaderExpiresOnceRetentionHasPassed() {
        Controller controller = leader(); // a new cluster: no command in the log yet
        elapse(1_000);
        sealedSegment(wall);
        assertDroppedOnceRetentionHasPassed(controller);
    }
}
