package dev.segstore.meta;

import dev.segstore.adapter.ErrorCode;
import dev.segstore.meta.state.CommandResult;
import dev.segstore.meta.state.MetaState;
import dev.segstore.protocol.meta.ChangeIsrCommand;
import dev.segstore.protocol.meta.Command;
import dev.segstore.protocol.meta.ControlledShutdownCommand;
import dev.segstore.protocol.meta.CreateShardCommand;
import dev.segstore.protocol.meta.FenceNodeCommand;
import dev.segstore.protocol.meta.MetaSnapshot;
import dev.segstore.protocol.meta.NodeAssignments;
import dev.segstore.protocol.meta.NodeState;
import dev.segstore.protocol.meta.RegisterNodeCommand;
import dev.segstore.protocol.meta.RollSegmentCommand;
import dev.segstore.protocol.meta.Segment;
import dev.segstore.protocol.meta.ShardSettings;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The state machine's rules for a controlled shutdown (issue 13 item 2): the node's leaderships move to an active
 * (alive, not shutting down) ISR member in a new epoch, it leaves every ISR that keeps an active member, it keeps
 * what no active member can take, it stays alive, and, until it registers again, it joins no ISR and leads no new
 * segment. A stale incarnation changes nothing.
 */
class ControlledShutdownTest {
    private final MetaState state = new MetaState();
    private long now = 1;

    private CommandResult apply(Command.Builder c) {
        return state.apply(c.setVersion(MetaState.VERSION).setTimestampMs(now++).setMonotonicTimestamp(true).build());
    }

    private long register(int id) {
        apply(Command.newBuilder().setRegisterNode(RegisterNodeCommand.newBuilder().setNodeId(id).setHost("h").setPort(id)));
        return state.node(id).orElseThrow().getIncarnation();
    }

    private CommandResult shutDown(int id, long incarnation) {
        return apply(Command.newBuilder().setControlledShutdown(ControlledShutdownCommand.newBuilder().setNodeId(id).setIncarnation(incarnation)));
    }

    private void create(String name, Integer... replicas) {
        assertEquals(null, apply(Command.newBuilder().setCreateShard(CreateShardCommand.newBuilder().setName(name)
                .setSettings(ShardSettings.newBuilder().setReplicaCount(replicas.length).setMinInSyncReplicas(1))
                .addAllReplicas(List.of(replicas)))).error());
    }

    private CommandResult changeIsr(String shard, int leader, int epoch, int version, Integer... isr) {
        return apply(Command.newBuilder().setChangeIsr(ChangeIsrCommand.newBuilder().setShard(shard).setSequence(0)
                .setLeader(leader).setLeaderEpoch(epoch).setIsrVersion(version).addAllNewIsr(List.of(isr))));
    }

    private Segment segment(String shard) {
        return state.route(shard).getSegments(0);
    }

    @Test
    void leadershipsMoveToALiveIsrMemberInANewEpochAndTheNodeLeavesEveryIsr() {
        long inc1 = register(1);
        register(2);
        register(3);
        create("led", 1, 2, 3);      // node 1 leads
        create("followed", 2, 1, 3); // node 1 follows
        create("elsewhere", 2, 3);   // node 1 is no replica

        CommandResult r = shutDown(1, inc1);

        assertEquals(null, r.error(), r.message());
        Segment led = segment("led");
        assertEquals(2, led.getLeader(), "the first active ISR member other than the node");
        assertEquals(1, led.getLeaderEpoch());
        assertEquals(List.of(2, 3), led.getIsrList());
        assertEquals(1, led.getIsrVersion());
        assertEquals(List.of(1, 2, 3), led.getReplicasList(), "it stays a replica: it goes on following while it shuts down");
        Segment followed = segment("followed");
        assertEquals(2, followed.getLeader());
        assertEquals(0, followed.getLeaderEpoch(), "a leader that does not change keeps its epoch");
        assertEquals(List.of(2, 3), followed.getIsrList(), "acknowledgements no longer wait for the node");
        assertEquals(1, followed.getIsrVersion());
        Segment elsewhere = segment("elsewhere");
        assertEquals(0, elsewhere.getIsrVersion());
        assertEquals(0, elsewhere.getLeaderEpoch());

        var node = state.node(1).orElseThrow();
        assertEquals(NodeState.ALIVE, node.getState(), "not fenced: it still heartbeats and serves as a follower");
        assertEquals(inc1, node.getIncarnation());
        assertTrue(node.getShuttingDown());
        NodeAssignments answer = (NodeAssignments) r.value();
        assertEquals(state.appliedCommands(), answer.getMetadataVersion());
        assertTrue(answer.getSegmentsList().stream().noneMatch(s -> s.getLeader() == 1), "the answer shows it leads nothing: " + answer);
    }

    @Test
    void aSegmentWithNoOtherLiveIsrMemberKeepsItsLeader() {
        long inc1 = register(1);
        register(2);
        long inc3 = register(3);
        create("lagging-peer", 1, 2);
        assertEquals(null, changeIsr("lagging-peer", 1, 0, 0, 1).error()); // node 2 fell behind: ISR [1]
        create("dead-peer", 1, 3);
        assertEquals(null, apply(Command.newBuilder().setFenceNode(FenceNodeCommand.newBuilder().setNodeId(3).setIncarnation(inc3))).error());
        assertEquals(List.of(1), segment("dead-peer").getIsrList(), "the fence took node 3 out");

        assertEquals(null, shutDown(1, inc1).error());

        for (String shard : List.of("lagging-peer", "dead-peer")) {
            Segment s = segment(shard);
            assertEquals(1, s.getLeader(), shard + ": no other live ISR member, so the node keeps it (it holds what no one else does)");
            assertEquals(List.of(1), s.getIsrList(), shard);
            assertEquals(0, s.getLeaderEpoch(), shard + ": unchanged, no new epoch for nothing");
        }
        assertEquals(1, segment("lagging-peer").getIsrVersion());
    }

    @Test
    void anIsrMemberThatIsShuttingDownTooDoesNotTakeOver() {
        long inc1 = register(1);
        long inc2 = register(2);
        register(3);
        create("a", 1, 2, 3);
        assertEquals(null, changeIsr("a", 1, 0, 0, 1, 2).error()); // ISR [1, 2]: node 3 lags
        create("b", 2, 1);
        assertEquals(null, changeIsr("b", 2, 0, 0, 2).error()); // ISR [2]: node 1 lags

        assertEquals(null, shutDown(2, inc2).error());
        assertEquals(List.of(1), segment("a").getIsrList(), "node 2 left: node 1 is active");
        assertEquals(2, segment("b").getLeader(), "node 2 keeps b: its only ISR member");
        assertEquals(null, changeIsr("b", 2, 0, 1, 2, 1).error(), "node 1 caught up and joins b's ISR");

        assertEquals(null, shutDown(1, inc1).error());
        assertEquals(1, segment("a").getLeader(), "node 3 is alive but out of the ISR: no unclean hand-over");
        assertEquals(List.of(1), segment("a").getIsrList());
        assertEquals(2, segment("b").getLeader());
        assertEquals(List.of(2, 1), segment("b").getIsrList(), "its other member is shutting down too: node 1 stays in the ISR");
    }

    @Test
    void aStaleIncarnationChangesNothing() {
        long old = register(1);
        register(2);
        create("s", 1, 2);
        long current = register(1); // restarted: a new incarnation (fsync mode: it keeps its place in a new epoch)
        assertTrue(current > old);
        MetaSnapshot before = state.snapshot();

        CommandResult r = shutDown(1, old);

        assertEquals(ErrorCode.FENCED_EPOCH, r.error(), r.message());
        MetaSnapshot after = state.snapshot();
        assertEquals(before.getNodesList(), after.getNodesList());
        assertEquals(before.getSegmentsList(), after.getSegmentsList());
        // A node that is not alive (fenced) has nothing to hand over either.
        assertEquals(null, apply(Command.newBuilder().setFenceNode(FenceNodeCommand.newBuilder().setNodeId(2)
                .setIncarnation(state.node(2).orElseThrow().getIncarnation()))).error());
        MetaSnapshot fenced = state.snapshot();
        assertEquals(ErrorCode.FENCED_EPOCH, shutDown(2, state.node(2).orElseThrow().getIncarnation()).error());
        assertEquals(fenced.getSegmentsList(), state.snapshot().getSegmentsList());
        assertFalse(state.node(2).orElseThrow().getShuttingDown());
    }

    @Test
    void aNodeShuttingDownJoinsNoIsrAndLeadsNoNewSegmentUntilItRegistersAgain() {
        register(1);
        register(2);
        long inc3 = register(3);
        create("s", 1, 2, 3);
        assertEquals(null, shutDown(3, inc3).error());
        assertEquals(List.of(1, 2), segment("s").getIsrList());

        CommandResult join = changeIsr("s", 1, 0, 1, 1, 2, 3);
        assertEquals(ErrorCode.INVALID_ARGUMENT, join.error(), "its leader saw it caught up, but it is about to stop: " + join.message());
        assertFalse(state.load().containsKey(3), "placement leaves it out");
        CommandResult create = apply(Command.newBuilder().setCreateShard(CreateShardCommand.newBuilder().setName("new")
                .setSettings(ShardSettings.newBuilder().setReplicaCount(1).setMinInSyncReplicas(1)).addReplicas(3)));
        assertEquals(ErrorCode.NOT_ENOUGH_REPLICAS, create.error(), create.message());
        CommandResult rollOntoIt = apply(Command.newBuilder().setRollSegment(RollSegmentCommand.newBuilder().setShard("s").setSequence(0)
                .setLeader(1).setLeaderEpoch(0).setEndOffset(10).addAllNextReplicas(List.of(3, 1, 2))));
        assertEquals(ErrorCode.NOT_ENOUGH_REPLICAS, rollOntoIt.error(), "it cannot lead the next segment: " + rollOntoIt.message());
        CommandResult roll = apply(Command.newBuilder().setRollSegment(RollSegmentCommand.newBuilder().setShard("s").setSequence(0)
                .setLeader(1).setLeaderEpoch(0).setEndOffset(10).addAllNextReplicas(List.of(1, 2, 3))));
        assertEquals(null, roll.error(), roll.message());
        Segment next = state.route("s").getSegments(1);
        assertEquals(List.of(1, 2, 3), next.getReplicasList());
        assertEquals(List.of(1, 2), next.getIsrList(), "its replica of the next segment starts outside the ISR, as a fenced node's does");

        register(3); // back: a new incarnation, no longer shutting down
        assertFalse(state.node(3).orElseThrow().getShuttingDown());
        CommandResult rejoin = apply(Command.newBuilder().setChangeIsr(ChangeIsrCommand.newBuilder().setShard("s").setSequence(1)
                .setLeader(1).setLeaderEpoch(0).setIsrVersion(0).addAllNewIsr(List.of(1, 2, 3))));
        assertEquals(null, rejoin.error(), rejoin.message());
        assertTrue(state.load().containsKey(3));
    }
}
