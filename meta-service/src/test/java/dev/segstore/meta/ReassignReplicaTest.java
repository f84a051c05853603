package dev.segstore.meta;

import dev.segstore.adapter.ErrorCode;
import dev.segstore.meta.state.CommandResult;
import dev.segstore.meta.state.MetaState;
import dev.segstore.protocol.meta.Command;
import dev.segstore.protocol.meta.CreateShardCommand;
import dev.segstore.protocol.meta.FenceNodeCommand;
import dev.segstore.protocol.meta.MetaSnapshot;
import dev.segstore.protocol.meta.ReassignReplicaCommand;
import dev.segstore.protocol.meta.RegisterNodeCommand;
import dev.segstore.protocol.meta.Segment;
import dev.segstore.protocol.meta.ShardSettings;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The state machine's rules for moving a replica off a node lost for good (issue 15 item 9): only a replica that
 * is not in the ISR, of a node that is not alive, to a live node that is not a replica yet; the leader epoch goes up.
 */
class ReassignReplicaTest {
    private final MetaState state = new MetaState();
    private long now = 1;

    private CommandResult apply(Command.Builder c) {
        return state.apply(c.setVersion(MetaState.VERSION).setTimestampMs(now++).build());
    }

    private long register(int id) {
        apply(Command.newBuilder().setRegisterNode(RegisterNodeCommand.newBuilder().setNodeId(id).setHost("h").setPort(id)));
        return state.node(id).orElseThrow().getIncarnation();
    }

    private void fence(int id, long incarnation) {
        assertEquals(null, apply(Command.newBuilder().setFenceNode(FenceNodeCommand.newBuilder().setNodeId(id).setIncarnation(incarnation))).error());
    }

    private CommandResult reassign(long shardId, int oldNode, int newNode) {
        return apply(Command.newBuilder().setReassignReplica(ReassignReplicaCommand.newBuilder().setShard("s").setShardId(shardId)
                .setSequence(0).setOldNode(oldNode).setNewNode(newNode)));
    }

    private Segment segment() {
        return state.route("s").getSegments(0);
    }

    private long createOn(Integer... replicas) {
        assertEquals(null, apply(Command.newBuilder().setCreateShard(CreateShardCommand.newBuilder().setName("s")
                .setSettings(ShardSettings.newBuilder().setReplicaCount(replicas.length).setMinInSyncReplicas(1))
                .addAllReplicas(List.of(replicas)))).error());
        return state.route("s").getShard().getShardId();
    }

    @Test
    void aFencedReplicaOutsideTheIsrMovesToALiveNodeInANewEpoch() {
        register(1);
        register(2);
        long inc3 = register(3);
        register(4);
        long id = createOn(1, 2, 3);
        fence(3, inc3);
        assertEquals(List.of(1, 2), segment().getIsrList());
        int epoch = segment().getLeaderEpoch();
        assertEquals(List.of(segment()), state.reassignable(3), "the controller may move it");
        CommandResult r = reassign(id, 3, 4);
        assertEquals(null, r.error(), r.message());
        assertEquals(List.of(1, 2, 4), segment().getReplicasList(), "replaced in place");
        assertEquals(List.of(1, 2), segment().getIsrList(), "the new replica joins the ISR once caught up, not before");
        assertEquals(epoch + 1, segment().getLeaderEpoch(), "a new epoch tells the leader its replicas");
        assertEquals(1, segment().getLeader());
        assertEquals(List.of(), state.reassignable(3));
    }

    @Test
    void whatCouldLoseRecordsOrBreakTheReplicaSetIsRefused() throws Exception {
        register(1);
        long inc2 = register(2);
        long inc3 = register(3);
        register(4);
        long id = createOn(1, 2, 3);
        assertEquals(ErrorCode.INVALID_ARGUMENT, reassign(id, 3, 4).error(), "node 3 is alive");
        fence(3, inc3);
        assertEquals(ErrorCode.INVALID_ARGUMENT, reassign(id, 3, 2).error(), "node 2 is a replica already");
        assertEquals(ErrorCode.INVALID_ARGUMENT, reassign(id, 3, 5).error(), "node 5 is not alive (not registered)");
        assertEquals(ErrorCode.INVALID_ARGUMENT, reassign(id, 4, 2).error(), "node 4 is not a replica");
        assertEquals(ErrorCode.SHARD_NOT_FOUND, reassign(id + 1, 3, 4).error(), "another shard id");
        // Node 2 dies too: fencing leaves 1 alone in the ISR; then node 1 dies, the last ISR member, which stays.
        fence(2, inc2);
        long inc1 = state.node(1).orElseThrow().getIncarnation();
        fence(1, inc1);
        assertEquals(List.of(1), segment().getIsrList());
        assertEquals(List.of(), state.reassignable(1), "the last ISR member holds records no one else has");
        assertEquals(ErrorCode.INVALID_ARGUMENT, reassign(id, 1, 4).error(), "so it is never moved");
        assertEquals(null, reassign(id, 2, 4).error(), "node 2, out of the ISR, may be");
        MetaState restored = new MetaState();
        restored.restore(MetaSnapshot.parseFrom(state.snapshot().toByteArray()));
        assertEquals(state.route("s"), restored.route("s"));
    }
}
