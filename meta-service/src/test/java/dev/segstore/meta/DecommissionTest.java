package dev.segstore.meta;

import dev.segstore.adapter.ErrorCode;
import dev.segstore.meta.state.CommandResult;
import dev.segstore.meta.state.MetaState;
import dev.segstore.protocol.meta.ChangeIsrCommand;
import dev.segstore.protocol.meta.Command;
import dev.segstore.protocol.meta.CreateShardCommand;
import dev.segstore.protocol.meta.DecommissionNodeCommand;
import dev.segstore.protocol.meta.DecommissionNodeResponse;
import dev.segstore.protocol.meta.MoveLeaderCommand;
import dev.segstore.protocol.meta.RegisterNodeCommand;
import dev.segstore.protocol.meta.RollSegmentCommand;
import dev.segstore.protocol.meta.Segment;
import dev.segstore.protocol.meta.ShardSettings;
import dev.segstore.protocol.meta.MetaSnapshot;
import dev.segstore.protocol.meta.NodeState;
import dev.segstore.protocol.meta.StorageNode;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.Map;
import java.util.Random;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The state machine's rules for decommissioning a storage node (issue 13 item 5): its leaderships move to an ISR
 * member that is alive, not shutting down and not decommissioned, each in a new epoch; it stays in its ISRs; it is
 * refused as a new shard's replica, as a roll's leader and as a move's target, and counts for no placement load;
 * the flag survives a re-registration until an operator takes it back.
 */
class DecommissionTest {
    private final MetaState state = new MetaState();
    private long now = 1;

    private CommandResult apply(Command.Builder c) {
        return state.apply(c.setVersion(MetaState.VERSION).setTimestampMs(now++).setMonotonicTimestamp(true).build());
    }

    private void register(int id) {
        assertEquals(null, apply(Command.newBuilder().setRegisterNode(RegisterNodeCommand.newBuilder().setNodeId(id).setHost("h").setPort(id))).error());
    }

    private CommandResult decommission(int id, boolean on) {
        return apply(Command.newBuilder().setDecommissionNode(DecommissionNodeCommand.newBuilder().setNodeId(id).setDecommissioned(on)));
    }

    private CommandResult create(String name, Integer... replicas) {
        return apply(Command.newBuilder().setCreateShard(CreateShardCommand.newBuilder().setName(name)
                .setSettings(ShardSettings.newBuilder().setReplicaCount(replicas.length).setMinInSyncReplicas(1))
                .addAllReplicas(List.of(replicas))));
    }

    private Segment open(String shard) {
        return state.route(shard).getSegments(state.route(shard).getSegmentsCount() - 1);
    }

    @Test
    void itsLeadershipsMoveToAnotherIsrMemberAndItStaysInTheIsr() {
        register(1);
        register(2);
        register(3);
        assertEquals(null, create("led", 1, 2, 3).error());
        assertEquals(null, create("followed", 2, 1, 3).error());
        assertEquals(null, create("alone", 1, 2).error());
        assertEquals(null, apply(Command.newBuilder().setChangeIsr(ChangeIsrCommand.newBuilder().setShard("alone").setSequence(0)
                .setLeader(1).setLeaderEpoch(0).setIsrVersion(0).addNewIsr(1))).error(), "node 2 fell behind: ISR [1]");

        CommandResult r = decommission(1, true);

        assertEquals(null, r.error(), r.message());
        assertEquals(2, open("led").getLeader(), "the first other ISR member leads");
        assertEquals(1, open("led").getLeaderEpoch(), "in a new epoch");
        assertEquals(List.of(1, 2, 3), open("led").getIsrList(), "the node stays in the ISR while it runs");
        assertEquals(0, open("followed").getLeaderEpoch(), "a segment it does not lead is left alone");
        assertEquals(1, open("alone").getLeader(), "no other ISR member: it keeps the leadership (it holds what no one else does)");
        assertEquals(0, open("alone").getLeaderEpoch());
        DecommissionNodeResponse left = (DecommissionNodeResponse) r.value();
        assertTrue(left.getNode().getDecommissioned());
        assertEquals(1, left.getLeaderships(), "'alone' is left");
        assertEquals(3, left.getReplicas());
        assertFalse(state.load().containsKey(1), "it counts for no placement: " + state.load());
    }

    @Test
    void itIsRefusedForNewReplicasNewLeadershipsAndMovesUntilTakenBackAndKeepsTheFlagAcrossARestart() {
        register(1);
        register(2);
        register(3);
        assertEquals(null, create("s", 2, 3).error());
        assertEquals(null, decommission(1, true).error());

        CommandResult created = create("new", 1, 2);
        assertEquals(ErrorCode.NOT_ENOUGH_REPLICAS, created.error(), "a new shard is not placed on it: " + created.message());
        CommandResult rolled = apply(Command.newBuilder().setRollSegment(RollSegmentCommand.newBuilder().setShard("s").setSequence(0)
                .setLeader(2).setLeaderEpoch(0).setEndOffset(0).addAllNextReplicas(List.of(1, 2))));
        assertTrue(rolled.error() != null, "a roll's next segment is not led by it");
        Segment s = open("s");
        CommandResult moved = apply(Command.newBuilder().setMoveLeader(MoveLeaderCommand.newBuilder().setShard("s")
                .setShardId(state.route("s").getShard().getShardId()).setSequence(s.getSequence()).setLeaderEpoch(s.getLeaderEpoch()).setTo(1)));
        assertEquals(ErrorCode.INVALID_ARGUMENT, moved.error(), "no leadership is moved to it");

        register(1); // a restart: a new incarnation
        assertTrue(state.node(1).orElseThrow().getDecommissioned(), "an operator's decommission outlives restarts");
        assertFalse(state.load().containsKey(1));

        assertEquals(null, decommission(1, false).error());
        assertFalse(state.node(1).orElseThrow().getDecommissioned());
        assertTrue(state.load().containsKey(1), "placed again");
        assertEquals(null, create("new", 1, 2).error(), "taken back: it may hold new replicas again");
        assertEquals(ErrorCode.INVALID_ARGUMENT, decommission(9, true).error(), "an unknown node");
    }

    /** Found by the property below once replicas could be offline: a decommission handed a leadership to an offline copy. */
    @net.jqwik.api.Example
    void aDecommissionHandsNoLeadershipToAnOfflineCopy() throws Exception {
        decommissionsKeepTheInvariants(-88696L);
    }

    @Provide
    Arbitrary<Long> seeds() {
        return Arbitraries.longs();
    }

    /**
     * MetaStateProperties' random command sequences with decommissions (and their undoing) put in at random places
     * (from a seed that jqwik prints and every failure message repeats): two replicas and one restored from a snapshot
     * agree, the state machine's invariants hold after every command, a decommissioned node counts for no placement,
     * and right after its decommission a node leads no segment that another ISR member (alive, not shutting down,
     * not decommissioned, its copy online) could lead.
     */
    @Property(tries = 200)
    void decommissionsKeepTheInvariants(@ForAll("seeds") long seed) throws Exception {
        Random random = new Random(seed);
        String context = "seed " + seed;
        List<Command> commands = new ArrayList<>(MetaStateProperties.generate(random, 20 + random.nextInt(200)));
        for (int k = random.nextInt(6); k >= 0; k--) {
            Command at = commands.get(random.nextInt(commands.size()));
            commands.add(random.nextInt(commands.size() + 1), Command.newBuilder().setVersion(MetaState.VERSION)
                    .setTimestampMs(at.getTimestampMs()).setMonotonicTimestamp(true).setDecommissionNode(DecommissionNodeCommand.newBuilder()
                            .setNodeId(1 + random.nextInt(6)).setDecommissioned(random.nextInt(4) > 0)).build());
        }
        MetaState a = new MetaState();
        MetaState b = new MetaState();
        Map<String, Integer> epochs = new HashMap<>();
        int decommissioned = 0;
        for (int i = 0; i < commands.size(); i++) {
            Command cmd = commands.get(i);
            CommandResult ra = a.apply(cmd);
            assertEquals(ra, b.apply(cmd), context + " command " + i);
            String where = context + " after command " + i + " " + cmd.getKindCase();
            MetaStateProperties.checkInvariants(a, epochs, where);
            for (StorageNode n : a.nodes()) {
                assertTrue(!n.getDecommissioned() || !a.load().containsKey(n.getNodeId()), where + ": decommissioned node " + n.getNodeId() + " counts for placement");
            }
            if (ra.isOk() && cmd.hasDecommissionNode() && cmd.getDecommissionNode().getDecommissioned()) {
                decommissioned++;
                int id = cmd.getDecommissionNode().getNodeId();
                for (Segment seg : a.snapshot().getSegmentsList()) {
                    boolean others = seg.getIsrList().stream().anyMatch(n -> n != id && !seg.getOfflineReplicasList().contains(n)
                            && a.node(n).map(x -> x.getState() == NodeState.ALIVE
                            && !x.getShuttingDown() && !x.getDecommissioned()).orElse(false));
                    assertTrue(seg.getLeader() != id || !others, where + ": node " + id + " still leads " + seg.getShard() + "/"
                            + seg.getSequence() + " (ISR " + seg.getIsrList() + ") although another member could");
                }
            }
        }
        MetaState d = new MetaState();
        d.restore(MetaSnapshot.parseFrom(a.snapshot().toByteArray()));
        assertEquals(java.util.Arrays.toString(a.snapshot().toByteArray()), java.util.Arrays.toString(b.snapshot().toByteArray()), context);
        assertEquals(java.util.Arrays.toString(a.snapshot().toByteArray()), java.util.Arrays.toString(d.snapshot().toByteArray()), context + " (restored)");
        DECOMMISSIONS.addAndGet(decommissioned);
    }

    private static final java.util.concurrent.atomic.AtomicInteger DECOMMISSIONS = new java.util.concurrent.atomic.AtomicInteger();

    @net.jqwik.api.lifecycle.AfterContainer
    static void report() {
        System.out.println("DecommissionTest: " + DECOMMISSIONS.get() + " decommissions applied");
    }
}
