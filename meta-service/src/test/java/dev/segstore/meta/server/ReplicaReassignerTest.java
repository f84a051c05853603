package dev.segstore.meta.server;

import dev.segstore.meta.state.MetaState;
import dev.segstore.protocol.meta.Command;
import dev.segstore.protocol.meta.CreateShardCommand;
import dev.segstore.protocol.meta.FenceNodeCommand;
import dev.segstore.protocol.meta.RegisterNodeCommand;
import dev.segstore.protocol.meta.ShardSettings;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link ReplicaReassigner} on a scripted Raft group ({@link MetaServiceTest.FakeRaft}) and an injected monotonic
 * clock: replicas move off a node only once it has been seen not alive for the whole setting, by this leader.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class ReplicaReassignerTest {
    private static final long AFTER_MS = 10_000;
    private final MetaState state = new MetaState();
    private final MetaServiceTest.FakeRaft raft = new MetaServiceTest.FakeRaft(state);
    private long monotonic = 1_000_000;
    private long wall = 5_000;
    private final ReplicaReassigner reassigner = new ReplicaReassigner(state, raft, AFTER_MS, () -> monotonic, () -> wall);

    private void apply(Command.Builder c) {
        assertTrue(state.apply(c.setVersion(MetaState.VERSION).setTimestampMs(wall++).build()).isOk());
    }

    private long register(int id) {
        apply(Command.newBuilder().setRegisterNode(RegisterNodeCommand.newBuilder().setNodeId(id).setHost("h").setPort(id)));
        return state.node(id).orElseThrow().getIncarnation();
    }

    private void create(String name, Integer... replicas) {
        apply(Command.newBuilder().setCreateShard(CreateShardCommand.newBuilder().setName(name)
                .setSettings(ShardSettings.newBuilder().setReplicaCount(replicas.length).setMinInSyncReplicas(1)).addAllReplicas(List.of(replicas))));
    }

    private List<Command> moves() {
        return raft.proposed.stream().filter(Command::hasReassignReplica).toList();
    }

    @Test
    void aNodeGoneForTheWholeSettingLosesItsReplicasOutsideTheIsrToTheLeastLoadedLiveNodes() {
        register(1);
        register(2);
        long inc3 = register(3);
        register(4);
        register(5);
        create("a", 1, 2, 3);
        create("b", 3, 1, 2);
        create("c", 3); // node 3 alone: its only ISR member, never moved
        create("d", 4); // node 4 holds more than node 5
        apply(Command.newBuilder().setFenceNode(FenceNodeCommand.newBuilder().setNodeId(3).setIncarnation(inc3)));
        reassigner.tick(); // first seen gone now
        monotonic += AFTER_MS - 1;
        wall += 3_600_000; // a wall-clock step changes nothing
        reassigner.tick();
        assertEquals(List.of(), moves(), "not gone long enough on the monotonic clock");
        monotonic += 1;
        reassigner.tick();
        assertEquals(2, moves().size(), "the replicas of a and b: " + moves());
        assertEquals(List.of(1, 2, 5), state.route("a").getSegments(0).getReplicasList(), "the least loaded node first");
        assertEquals(List.of(4, 1, 2), state.route("b").getSegments(0).getReplicasList(), "then the next");
        assertEquals(List.of(3), state.route("c").getSegments(0).getReplicasList(), "the last ISR member stays");
        reassigner.tick();
        assertEquals(2, moves().size(), "nothing more to move");
    }

    @Test
    void aDecommissionedNodesReplicasMoveAsSoonAsItIsNotAliveAndItTakesNone() {
        register(1);
        register(2);
        long inc3 = register(3);
        register(4);
        create("a", 1, 2, 3);
        apply(Command.newBuilder().setDecommissionNode(dev.segstore.protocol.meta.DecommissionNodeCommand.newBuilder().setNodeId(4)
                .setDecommissioned(true)));
        apply(Command.newBuilder().setDecommissionNode(dev.segstore.protocol.meta.DecommissionNodeCommand.newBuilder().setNodeId(3)
                .setDecommissioned(true)));
        reassigner.tick();
        assertEquals(List.of(), moves(), "node 3 runs: its replica stays (it is in the ISR)");
        apply(Command.newBuilder().setFenceNode(FenceNodeCommand.newBuilder().setNodeId(3).setIncarnation(inc3))); // stopped
        reassigner.tick();
        assertEquals(List.of(), moves(), "node 4, the only node without a replica, is decommissioned too: no target");
        register(5);
        reassigner.tick();
        assertEquals(1, moves().size(), "moved at once, without waiting " + AFTER_MS + " ms: " + moves());
        assertEquals(List.of(1, 2, 5), state.route("a").getSegments(0).getReplicasList());
    }

    @Test
    void aNodeBackInTimeOrALeaderChangeRestartsTheCount() {
        register(1);
        long inc2 = register(2);
        register(3);
        create("a", 1, 2);
        apply(Command.newBuilder().setFenceNode(FenceNodeCommand.newBuilder().setNodeId(2).setIncarnation(inc2)));
        reassigner.tick();
        monotonic += AFTER_MS / 2;
        raft.leader = false;
        reassigner.tick(); // not leading: forgets what it saw
        raft.leader = true;
        reassigner.tick(); // leads again: counts from now
        monotonic += AFTER_MS / 2 + 1;
        reassigner.tick();
        assertEquals(List.of(), moves(), "a leader counts the whole setting itself");
        register(2); // back
        monotonic += AFTER_MS;
        reassigner.tick();
        assertEquals(List.of(), moves(), "a node that came back keeps its replicas");
        assertEquals(List.of(1, 2), state.route("a").getSegments(0).getReplicasList());
    }
}
