package dev.segstore.meta;

import dev.segstore.adapter.ErrorCode;
import dev.segstore.meta.state.CommandResult;
import dev.segstore.meta.state.MetaState;
import dev.segstore.protocol.FeatureLevels;
import dev.segstore.protocol.meta.ChangeIsrCommand;
import dev.segstore.protocol.meta.CloseSegmentCommand;
import dev.segstore.protocol.meta.Command;
import dev.segstore.protocol.meta.CreateShardCommand;
import dev.segstore.protocol.meta.FenceNodeCommand;
import dev.segstore.protocol.meta.MoveLeaderCommand;
import dev.segstore.protocol.meta.ReassignReplicaCommand;
import dev.segstore.protocol.meta.RegisterNodeCommand;
import dev.segstore.protocol.meta.RollSegmentCommand;
import dev.segstore.protocol.meta.Segment;
import dev.segstore.protocol.meta.SegmentStatus;
import dev.segstore.protocol.meta.ShardSettings;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Close ahead in the state machine (meta.proto, {@code Segment.closing_version}): a closing segment and its next one
 * are one log until the seal is recorded, so the seal creates the next segment as the closing one is then, and
 * nothing may give the closing one a leader or a replica that does not hold what its leader ended it at.
 */
class CloseAheadStateTest {
    private final MetaState state = new MetaState();
    private long now = 1;

    private CommandResult apply(Command.Builder c) {
        return apply(state, c);
    }

    private CommandResult apply(MetaState on, Command.Builder c) {
        return on.apply(c.setVersion(MetaState.VERSION).setTimestampMs(now++).setMonotonicTimestamp(true).build());
    }

    /** A raise to {@code level}, naming the storage node incarnations the meta leader heard know it. */
    private static Command.Builder featureLevel(int level, dev.segstore.protocol.meta.NodeIncarnation... nodes) {
        return Command.newBuilder().setSetFeatureLevel(dev.segstore.protocol.meta.SetFeatureLevelCommand.newBuilder().setLevel(level)
                .addAllStorageNodes(List.of(nodes)));
    }

    @Test
    void segmentsCloseAheadOnlyAtTheFeatureLevelEveryMetaNodeKnows() {
        // A cluster with shards from before feature levels (or with a meta node of an older build): level 0. A meta
        // node of an older build cannot apply CloseSegmentCommand, so this build's close is refused until an operator
        // raises the level; a new cluster takes its build's level with its first shard.
        MetaState upgraded = new MetaState();
        apply(upgraded, Command.newBuilder().setRegisterNode(RegisterNodeCommand.newBuilder().setNodeId(1).setHost("h").setPort(1)));
        assertEquals(null, apply(upgraded, Command.newBuilder().setCreateShard(CreateShardCommand.newBuilder().setName("u")
                .setSettings(ShardSettings.newBuilder().setReplicaCount(1).setMinInSyncReplicas(1)).addReplicas(1))).error());
        assertEquals(0, upgraded.featureLevel(), "a shard created by an older leader");
        assertEquals(null, apply(upgraded, Command.newBuilder().setCreateShard(CreateShardCommand.newBuilder().setName("v")
                .setSettings(ShardSettings.newBuilder().setReplicaCount(1).setMinInSyncReplicas(1)).addReplicas(1)
                .setNewClusterFeatureLevel(MetaState.MAX_FEATURE_LEVEL))).error());
        assertEquals(0, upgraded.featureLevel(), "only a cluster's first shard ever brings its level: this one may have been upgraded");
        long shardId = upgraded.shard("u").orElseThrow().getShardId();
        CloseSegmentCommand.Builder close = CloseSegmentCommand.newBuilder().setShard("u").setShardId(shardId)
                .setSequence(0).setLeader(1).setLeaderEpoch(0).setRules(MetaState.CLOSE_RULES);
        assertTrue(upgraded.closeRefusal(close.build()).contains("feature level 0"), "the leader refuses it without a command");
        CommandResult refused = apply(upgraded, Command.newBuilder().setCloseSegment(close.clone()));
        assertEquals(ErrorCode.INVALID_ARGUMENT, refused.error(), "no close ahead at level 0");
        assertTrue(refused.message().contains("feature level 0"), refused.message());
        assertEquals(0, upgraded.route("u").getSegments(0).getClosingVersion());

        // A close of the build that introduced close ahead (rules 0), replayed from its log: applied as it was then,
        // at level 0 too, or a meta node replaying it would differ from those that applied it before.
        assertEquals(null, apply(upgraded, Command.newBuilder().setCloseSegment(close.clone().setRules(0).setShard("v")
                .setShardId(upgraded.shard("v").orElseThrow().getShardId()))).error(), "an older build's close, by its rules");
        assertTrue(upgraded.route("v").getSegments(0).getClosingVersion() > 0);
        // By its rules, not this build's: a leader other than the preferred replica, and a replica on a fenced node, closed
        // then; an unclean shard did not.
        apply(upgraded, Command.newBuilder().setRegisterNode(RegisterNodeCommand.newBuilder().setNodeId(2).setHost("h").setPort(2)));
        apply(upgraded, Command.newBuilder().setRegisterNode(RegisterNodeCommand.newBuilder().setNodeId(3).setHost("h").setPort(3)));
        long inc3 = upgraded.node(3).orElseThrow().getIncarnation();
        for (String name : List.of("w", "z")) {
            assertEquals(null, apply(upgraded, Command.newBuilder().setCreateShard(CreateShardCommand.newBuilder().setName(name)
                    .setSettings(ShardSettings.newBuilder().setReplicaCount(3).setMinInSyncReplicas(1).setUncleanLeaderElection(name.equals("z")))
                    .addAllReplicas(List.of(1, 2, 3)))).error());
        }
        assertEquals(null, apply(upgraded, Command.newBuilder().setMoveLeader(MoveLeaderCommand.newBuilder().setShard("w")
                .setShardId(upgraded.shard("w").orElseThrow().getShardId()).setSequence(0).setLeaderEpoch(0).setTo(2))).error());
        apply(upgraded, Command.newBuilder().setFenceNode(FenceNodeCommand.newBuilder().setNodeId(3).setIncarnation(inc3)));
        Segment w = upgraded.route("w").getSegments(0);
        assertEquals(2, w.getLeader());
        assertEquals(null, apply(upgraded, Command.newBuilder().setCloseSegment(CloseSegmentCommand.newBuilder().setShard("w")
                .setShardId(w.getShardId()).setSequence(0).setLeader(2).setLeaderEpoch(w.getLeaderEpoch()))).error(),
                "rules 0: a leader other than the preferred replica, a replica on a fenced node");
        Segment z = upgraded.route("z").getSegments(0);
        assertEquals(ErrorCode.INVALID_ARGUMENT, apply(upgraded, Command.newBuilder().setCloseSegment(CloseSegmentCommand.newBuilder().setShard("z")
                .setShardId(z.getShardId()).setSequence(0).setLeader(z.getLeader()).setLeaderEpoch(z.getLeaderEpoch()))).error(),
                "rules 0 too: a shard that allows unclean election");

        // The operator raises the level to 1: the closes of the build that brought feature levels (rules 2) are taken
        // from then on, and it never goes back down; this build's (rules 3) wait for level 2 (the next test).
        assertEquals(null, apply(upgraded, featureLevel(FeatureLevels.CLOSE_SEGMENT_COMMAND)).error());
        assertTrue(upgraded.closeRefusal(close.build()).contains("feature level 1"), "this build's rules need level 2");
        assertEquals(null, upgraded.closeRefusal(close.clone().setRules(2).build()));
        assertEquals(null, apply(upgraded, Command.newBuilder().setCloseSegment(close.clone().setRules(2))).error(), "rules 2 at level 1");
        assertTrue(upgraded.route("u").getSegments(0).getClosingVersion() > 0);
        assertEquals(ErrorCode.INVALID_ARGUMENT, apply(upgraded, featureLevel(0)).error(), "levels only rise");

        // Kept in snapshots; a level this build does not know stops it rather than be applied or restored.
        MetaState restored = new MetaState();
        restored.restore(upgraded.snapshot());
        assertEquals(FeatureLevels.CLOSE_SEGMENT_COMMAND, restored.featureLevel());
        Command beyond = featureLevel(MetaState.MAX_FEATURE_LEVEL + 1).setVersion(MetaState.VERSION).build();
        assertNotNull(restored.beyondThisBuild(beyond));
        assertNotNull(new MetaState().beyondThisBuild(Command.newBuilder().setCreateShard(CreateShardCommand.newBuilder().setName("x")
                .setNewClusterFeatureLevel(MetaState.MAX_FEATURE_LEVEL + 1)).build()), "a new cluster at a level this build does not know");
        assertNotNull(restored.beyondThisBuild(Command.newBuilder().setCloseSegment(close.clone().setRules(MetaState.CLOSE_RULES + 1)).build()),
                "close rules this build does not know");
        assertThrows(IllegalStateException.class, () -> restored.apply(beyond));
        assertEquals(FeatureLevels.CLOSE_SEGMENT_COMMAND, restored.featureLevel());
        assertThrows(IllegalStateException.class, () -> new MetaState().restore(upgraded.snapshot().toBuilder()
                .setFeatureLevel(MetaState.MAX_FEATURE_LEVEL + 1).build()));

        register(1);
        create("n", false, 1);
        assertEquals(MetaState.MAX_FEATURE_LEVEL, state.featureLevel(), "a new cluster starts at its build's highest level");
    }

    private long register(int id) {
        CommandResult r = register(state, id, FeatureLevels.MAX);
        assertEquals(null, r.error(), r.message());
        return state.node(id).orElseThrow().getIncarnation();
    }

    /** Registers storage node {@code id}, whose build knows feature level {@code knows} (0: a build that does not say). */
    private CommandResult register(MetaState on, int id, int knows) {
        return apply(on, Command.newBuilder().setRegisterNode(RegisterNodeCommand.newBuilder().setNodeId(id).setHost("h").setPort(id)
                .setMaxFeatureLevel(knows)));
    }

    private long create(String name, boolean unclean, Integer... replicas) {
        CommandResult r = apply(Command.newBuilder().setCreateShard(CreateShardCommand.newBuilder().setName(name)
                .setSettings(ShardSettings.newBuilder().setReplicaCount(replicas.length).setMinInSyncReplicas(1).setUncleanLeaderElection(unclean))
                .addAllReplicas(List.of(replicas)).setNewClusterFeatureLevel(MetaState.MAX_FEATURE_LEVEL)
                .addAllStorageNodes(state.nodes().stream().map(n -> incarnation(state, n.getNodeId())).toList()))); // a leader that heard them all
        assertEquals(null, r.error(), r.message());
        return state.shard(name).orElseThrow().getShardId();
    }

    private Segment segment(String shard, int seq) {
        return state.route(shard).getSegments(seq);
    }

    private CommandResult close(String shard, long seq, int leader, int epoch) {
        return apply(Command.newBuilder().setCloseSegment(CloseSegmentCommand.newBuilder().setShard(shard)
                .setShardId(state.shard(shard).orElseThrow().getShardId()).setSequence(seq).setLeader(leader).setLeaderEpoch(epoch)
                .setRules(MetaState.CLOSE_RULES)));
    }

    private CommandResult roll(String shard, long seq, int leader, int epoch, long end, Integer... nextReplicas) {
        return apply(Command.newBuilder().setRollSegment(RollSegmentCommand.newBuilder().setShard(shard)
                .setShardId(state.shard(shard).orElseThrow().getShardId()).setSequence(seq).setLeader(leader).setLeaderEpoch(epoch)
                .setEndOffset(end).addAllNextReplicas(List.of(nextReplicas))));
    }

    private CommandResult shrinkIsr(String shard, long seq, int leader, int epoch, int version, Integer... isr) {
        return apply(Command.newBuilder().setChangeIsr(ChangeIsrCommand.newBuilder().setShard(shard).setSequence(seq)
                .setLeader(leader).setLeaderEpoch(epoch).setIsrVersion(version).addAllNewIsr(List.of(isr))));
    }

    @Test
    void thisBuildsClosesWaitForLevel2WhereEveryAliveStorageNodeKnowsIt() {
        // Close ahead hands over to followers that must know it (a follower of an older build would take the next
        // segment as a committed one and drop its log at its next assignment). So from level 2 on, the meta-service
        // holds the storage nodes to the level: it rises only if the command names every alive node's incarnation as
        // one the meta leader heard know it, and a node whose build knows less cannot register.
        MetaState mixed = new MetaState();
        assertEquals(null, register(mixed, 1, 0).error(), "a build that does not say: it knows level 1");
        assertEquals(null, register(mixed, 2, FeatureLevels.MAX).error());
        assertEquals(null, register(mixed, 3, FeatureLevels.MAX).error());
        CreateShardCommand.Builder create = CreateShardCommand.newBuilder().setName("s").addAllReplicas(List.of(1, 2, 3))
                .setSettings(ShardSettings.newBuilder().setReplicaCount(3).setMinInSyncReplicas(1)).setNewClusterFeatureLevel(MetaState.MAX_FEATURE_LEVEL);
        assertEquals(null, apply(mixed, Command.newBuilder().setCreateShard(create.clone().addStorageNodes(incarnation(mixed, 2))
                .addStorageNodes(incarnation(mixed, 3)))).error());
        assertEquals(1, mixed.featureLevel(), "a new cluster with an alive storage node not heard to know level 2");
        assertEquals(1, mixed.assignments(2).getFeatureLevel(), "storage nodes are told the level: they close ahead only from 2");

        // At level 1, this build's close is refused (by the leader before it proposes, and as a command).
        Segment s = mixed.route("s").getSegments(0);
        CloseSegmentCommand.Builder close = CloseSegmentCommand.newBuilder().setShard("s").setShardId(s.getShardId()).setSequence(0)
                .setLeader(1).setLeaderEpoch(0).setRules(MetaState.CLOSE_RULES);
        assertTrue(mixed.closeRefusal(close.build()).contains("feature level 1"), mixed.closeRefusal(close.build()));
        CommandResult refused = apply(mixed, Command.newBuilder().setCloseSegment(close.clone()));
        assertEquals(ErrorCode.INVALID_ARGUMENT, refused.error(), "this build's close at level 1");
        assertTrue(refused.message().contains("feature level 1"), refused.message());
        assertEquals(0, mixed.route("s").getSegments(0).getClosingVersion());

        // The level does not rise while an alive node is not named, or is named in an older incarnation.
        CommandResult held = apply(mixed, featureLevel(FeatureLevels.STORAGE_NODES_CHECKED, incarnation(mixed, 2), incarnation(mixed, 3),
                incarnation(mixed, 1).toBuilder().setIncarnation(incarnation(mixed, 1).getIncarnation() - 1).build()));
        assertEquals(ErrorCode.INVALID_ARGUMENT, held.error(), "node 1 runs an older build");
        assertTrue(held.message().contains("storage nodes [1 (incarnation " + incarnation(mixed, 1).getIncarnation() + ")]"), held.message());
        assertEquals(1, mixed.featureLevel());
        // A node that is not alive does not hold it: it registers again before it takes part, and is checked then.
        apply(mixed, Command.newBuilder().setFenceNode(FenceNodeCommand.newBuilder().setNodeId(1).setIncarnation(incarnation(mixed, 1).getIncarnation())));
        assertEquals(null, apply(mixed, featureLevel(FeatureLevels.STORAGE_NODES_CHECKED, incarnation(mixed, 2), incarnation(mixed, 3))).error(),
                "node 1 is fenced");
        assertEquals(2, mixed.featureLevel());
        assertEquals(2, mixed.assignments(2).getFeatureLevel());

        // From level 2, a storage node whose build knows less is refused registration, and nothing of it is applied.
        long incarnation1 = incarnation(mixed, 1).getIncarnation();
        assertTrue(mixed.olderThanTheCluster(1, 0).contains("storage node 1"), "the meta leader refuses it before it proposes");
        CommandResult old = register(mixed, 1, 0);
        assertEquals(ErrorCode.INVALID_ARGUMENT, old.error(), "node 1 back on its older build");
        assertTrue(old.message().contains("storage node 1"), old.message());
        assertEquals(dev.segstore.protocol.meta.NodeState.FENCED, mixed.node(1).orElseThrow().getState());
        assertEquals(incarnation1, mixed.node(1).orElseThrow().getIncarnation());
        assertEquals(ErrorCode.INVALID_ARGUMENT, register(mixed, 4, 1).error(), "a new node of an older build");
        assertTrue(mixed.node(4).isEmpty());
        assertEquals(null, mixed.olderThanTheCluster(1, FeatureLevels.MAX));
        assertEquals(null, register(mixed, 1, FeatureLevels.MAX).error(), "node 1 upgraded");

        // This build's closes are taken at level 2.
        assertEquals(null, apply(mixed, Command.newBuilder().setCreateShard(create.clone().setName("t"))).error());
        Segment t = mixed.route("t").getSegments(0);
        CommandResult taken = apply(mixed, Command.newBuilder().setCloseSegment(close.clone().setShard("t").setShardId(t.getShardId())
                .setLeader(t.getLeader()).setLeaderEpoch(t.getLeaderEpoch())));
        assertEquals(null, taken.error(), taken.message());
        assertTrue(mixed.route("t").getSegments(0).getClosingVersion() > 0);

        // The level, and so the check, is kept in snapshots.
        MetaState restored = new MetaState();
        restored.restore(mixed.snapshot());
        assertEquals(ErrorCode.INVALID_ARGUMENT, register(restored, 4, 0).error());

        // A new cluster whose leader heard every alive node know its level takes it with its first shard.
        MetaState fresh = new MetaState();
        register(fresh, 1, FeatureLevels.MAX);
        register(fresh, 2, FeatureLevels.MAX);
        assertEquals(null, apply(fresh, Command.newBuilder().setCreateShard(create.clone().clearReplicas().addAllReplicas(List.of(1, 2))
                .setSettings(ShardSettings.newBuilder().setReplicaCount(2).setMinInSyncReplicas(1))
                .addStorageNodes(incarnation(fresh, 1)).addStorageNodes(incarnation(fresh, 2)))).error());
        assertEquals(MetaState.MAX_FEATURE_LEVEL, fresh.featureLevel());
    }

    @Test
    void aDecommissionedNodeThatStillRunsHoldsTheLevelBack() {
        // Decommissioned, it still runs and stays in its ISRs until it stops: it may follow a hand-over.
        MetaState s = new MetaState();
        register(s, 1, FeatureLevels.MAX);
        register(s, 2, 0);
        apply(s, Command.newBuilder().setDecommissionNode(dev.segstore.protocol.meta.DecommissionNodeCommand.newBuilder().setNodeId(2).setDecommissioned(true)));
        CommandResult r = apply(s, featureLevel(FeatureLevels.STORAGE_NODES_CHECKED, incarnation(s, 1)));
        assertEquals(ErrorCode.INVALID_ARGUMENT, r.error(), "node 2 is decommissioned but alive");
        assertTrue(r.message().contains("storage nodes [2 (incarnation"), r.message());
    }

    private static dev.segstore.protocol.meta.NodeIncarnation incarnation(MetaState on, int id) {
        return dev.segstore.protocol.meta.NodeIncarnation.newBuilder().setNodeId(id).setIncarnation(on.node(id).orElseThrow().getIncarnation()).build();
    }

    @Test
    void theSealOfAClosingSegmentCreatesTheNextAsTheClosingOneIsThen() {
        register(1);
        register(2);
        register(3);
        register(4);
        create("c", false, 1, 2, 3);
        CommandResult closed = close("c", 0, 1, 0);
        assertEquals(null, closed.error(), closed.message());
        long closingVersion = state.appliedCommands();
        // Then a leader in a later epoch, with a lease wait and a smaller ISR: all of it carries over.
        assertEquals(null, apply(Command.newBuilder().setMoveLeader(MoveLeaderCommand.newBuilder().setShard("c")
                .setShardId(state.shard("c").orElseThrow().getShardId()).setSequence(0).setLeaderEpoch(0).setTo(2))).error());
        assertEquals(null, shrinkIsr("c", 0, 2, 1, 0, 2, 3).error());
        Segment before = segment("c", 0);
        assertEquals(2, before.getLeader());
        assertEquals(1, before.getLeaderEpoch());
        assertTrue(before.getDeposedLeaderMayServe());
        assertEquals(closingVersion, segment("c", 0).getClosingVersion(), "marked closing at the close's version");
        assertEquals(SegmentStatus.OPEN, segment("c", 0).getStatus(), "still the open segment: its end is not known yet");
        assertEquals(1, state.route("c").getSegmentsCount(), "no next segment before the seal is recorded");

        // The seal: the placement the service would have proposed (node 4) is not used.
        CommandResult sealed = roll("c", 0, 2, 1, 7, 4, 1, 3);
        assertEquals(null, sealed.error(), sealed.message());
        Segment s = segment("c", 0);
        assertEquals(SegmentStatus.SEALED, s.getStatus());
        assertEquals(7, s.getEndOffset());
        assertEquals(0, s.getClosingVersion(), "closed: a sealed segment's ISR grows again");
        Segment next = segment("c", 1);
        assertEquals(SegmentStatus.OPEN, next.getStatus());
        assertEquals(7, next.getStartOffset());
        assertEquals(-1, next.getEndOffset());
        assertEquals(List.of(1, 2, 3), next.getReplicasList(), "the closing segment's replicas, not a new placement");
        assertEquals(2, next.getLeader());
        assertEquals(1, next.getLeaderEpoch(), "the epoch its leader may already lead it in");
        assertEquals(List.of(2, 3), next.getIsrList());
        assertEquals(before.getIsrVersion(), next.getIsrVersion(), "the closing segment's ISR version, so its leader's next proposal fits");
        assertTrue(next.getDeposedLeaderMayServe(), "the deposed leader's lease wait holds for the next segment too");
        assertEquals(0, next.getClosingVersion());
        assertEquals(state.appliedCommands(), next.getCreatedVersion(), "created by the seal's command");
    }

    @Test
    void aCloseIsConditionalOnTheOpenSegmentAndItsLeaderAndAskedAgainChangesNothing() {
        register(1);
        register(2);
        create("k", false, 1, 2);
        assertEquals(ErrorCode.FENCED_EPOCH, close("k", 0, 1, 3).error(), "another epoch");
        assertEquals(ErrorCode.FENCED_EPOCH, close("k", 0, 2, 0).error(), "not the leader");
        assertEquals(0, segment("k", 0).getClosingVersion());
        assertEquals(null, close("k", 0, 1, 0).error());
        long version = segment("k", 0).getClosingVersion();
        assertTrue(version > 0);
        assertEquals(null, close("k", 0, 1, 0).error(), "a retry whose answer was lost");
        assertEquals(version, segment("k", 0).getClosingVersion(), "the first close's version stays");

        assertEquals(null, roll("k", 0, 1, 0, 5).error(), "no placement needed to record a closing segment's seal");
        assertEquals(ErrorCode.INVALID_ARGUMENT, close("k", 0, 1, 0).error(), "a sealed segment");
        assertEquals(null, close("k", 1, 1, 0).error(), "the next one closes in its own turn");
    }

    @Test
    void aSegmentWhoseNextIsToBePlacedAnewDoesNotCloseAhead() {
        register(1);
        register(2);
        register(3);
        create("p", false, 1, 2);
        long id = state.shard("p").orElseThrow().getShardId();
        dev.segstore.protocol.meta.AlterShardCommand.Builder alter = dev.segstore.protocol.meta.AlterShardCommand.newBuilder().setName("p")
                .setShardId(id).setKeepRetention(true).setSetPlacement(true);
        assertEquals(null, apply(Command.newBuilder().setAlterShard(alter.clearPlacement().addPlacement(3).addPlacement(2))).error());
        CommandResult r = close("p", 0, 1, 0);
        assertEquals(ErrorCode.INVALID_ARGUMENT, r.error(), "an operator placed the next segments elsewhere: " + r.message());
        assertEquals(0, segment("p", 0).getClosingVersion());
        assertEquals(null, apply(Command.newBuilder().setAlterShard(alter.clearPlacement().addPlacement(1).addPlacement(2))).error());
        assertEquals(null, close("p", 0, 1, 0).error(), "placed where it is: it closes ahead");
    }

    @Test
    void aShardThatAllowsUncleanElectionDoesNotCloseAheadAndAClosingSegmentIsNeverLedUncleanly() {
        register(1);
        register(2);
        create("unclean", true, 1, 2);
        CommandResult r = close("unclean", 0, 1, 0);
        assertEquals(ErrorCode.INVALID_ARGUMENT, r.error(), "an unclean election must always be able to end a segment: " + r.message());
        assertEquals(0, segment("unclean", 0).getClosingVersion());
    }

    @Test
    void aClosingSegmentWaitsForItsIsr() {
        long inc1 = register(1);
        register(2);
        create("clean", false, 1, 2);
        assertEquals(null, shrinkIsr("clean", 0, 1, 0, 0, 1).error());
        assertEquals(null, close("clean", 0, 1, 0).error());
        apply(Command.newBuilder().setFenceNode(FenceNodeCommand.newBuilder().setNodeId(1).setIncarnation(inc1)));
        assertEquals(-1, segment("clean", 0).getLeader(), "node 2 may hold another tail than the end node 1 handed over at");
        register(1);
        assertEquals(1, segment("clean", 0).getLeader(), "the ISR member back");
        assertTrue(segment("clean", 0).getClosingVersion() > 0, "still closing");
    }

    @Test
    void aClosingSegmentsReplicasAreNotReassignedUntilItsSeal() {
        register(1);
        register(2);
        long inc3 = register(3);
        register(4);
        long id = create("r", false, 1, 2, 3);
        assertEquals(null, shrinkIsr("r", 0, 1, 0, 0, 1, 2).error());
        int epoch = segment("r", 0).getLeaderEpoch();
        assertEquals(null, close("r", 0, 1, epoch).error());
        // Node 3 goes after the close (a segment with a replica on a fenced node does not close ahead).
        apply(Command.newBuilder().setFenceNode(FenceNodeCommand.newBuilder().setNodeId(3).setIncarnation(inc3)));
        assertEquals(List.of(), state.reassignable(3), "not while closing: its replicas are the next segment's");
        ReassignReplicaCommand.Builder reassign = ReassignReplicaCommand.newBuilder().setShard("r").setShardId(id).setSequence(0)
                .setOldNode(3).setNewNode(4);
        assertEquals(ErrorCode.INVALID_ARGUMENT, apply(Command.newBuilder().setReassignReplica(reassign)).error());
        assertEquals(null, roll("r", 0, 1, epoch, 4).error());
        assertEquals(List.of(1, 2, 3), segment("r", 1).getReplicasList());
        assertTrue(state.reassignable(3).contains(segment("r", 1)), "node 3, gone and outside the ISR, may be replaced once the seal is recorded");
        assertEquals(null, apply(Command.newBuilder().setReassignReplica(reassign.setSequence(1))).error(), "the next segment, once recorded");
        assertEquals(List.of(1, 2, 4), segment("r", 1).getReplicasList());
    }

    @Test
    void aSegmentClosesAheadOnlyWhereItsCopyIsWhatPlacementWouldChoose() {
        register(1);
        register(2);
        long inc3 = register(3);
        register(4);
        create("p", false, 1, 2, 3);
        long shardId = state.shard("p").orElseThrow().getShardId();
        // A leadership moved away from the preferred replica: the roll places leaders anew, a copy would keep it there.
        assertEquals(null, apply(Command.newBuilder().setMoveLeader(MoveLeaderCommand.newBuilder().setShard("p")
                .setShardId(shardId).setSequence(0).setLeaderEpoch(0).setTo(2))).error());
        CommandResult moved = close("p", 0, 2, 1);
        assertEquals(ErrorCode.INVALID_ARGUMENT, moved.error(), "a leader other than the preferred replica: " + moved.message());
        assertTrue(moved.message().contains("preferred replica 1"), moved.message());
        assertEquals(state.closeRefusal(CloseSegmentCommand.newBuilder().setShard("p").setShardId(shardId).setSequence(0).setLeader(2)
                .setLeaderEpoch(1).setRules(MetaState.CLOSE_RULES).build()), moved.message(), "the proposing leader refuses it alike, without a command");
        assertEquals(null, roll("p", 0, 2, 1, 4, 1, 2, 3).error());
        assertEquals(1, segment("p", 1).getLeader(), "placed anew");

        // A replica on a node that is fenced (dead, or cut off) or decommissioned would be copied into the next segment.
        apply(Command.newBuilder().setFenceNode(FenceNodeCommand.newBuilder().setNodeId(3).setIncarnation(inc3)));
        Segment open = segment("p", 1);
        CommandResult fenced = close("p", 1, 1, open.getLeaderEpoch());
        assertEquals(ErrorCode.INVALID_ARGUMENT, fenced.error(), "a replica on a fenced node: " + fenced.message());
        assertTrue(fenced.message().contains("replica 3"), fenced.message());
        assertEquals(0, segment("p", 1).getClosingVersion());
        register(3);
        apply(Command.newBuilder().setDecommissionNode(dev.segstore.protocol.meta.DecommissionNodeCommand.newBuilder().setNodeId(2).setDecommissioned(true)));
        open = segment("p", 1);
        assertEquals(1, open.getLeader());
        CommandResult retiring = close("p", 1, 1, open.getLeaderEpoch());
        assertEquals(ErrorCode.INVALID_ARGUMENT, retiring.error(), "a replica on a decommissioned node: " + retiring.message());
        assertTrue(retiring.message().contains("replica 2"), retiring.message());
        apply(Command.newBuilder().setDecommissionNode(dev.segstore.protocol.meta.DecommissionNodeCommand.newBuilder().setNodeId(2).setDecommissioned(false)));
        assertEquals(null, state.closeRefusal(CloseSegmentCommand.newBuilder().setShard("p").setShardId(shardId).setSequence(1).setLeader(1)
                .setLeaderEpoch(segment("p", 1).getLeaderEpoch()).setRules(MetaState.CLOSE_RULES).build()), "every replica placeable, led by the preferred one");
        assertEquals(null, close("p", 1, 1, segment("p", 1).getLeaderEpoch()).error());
    }

    @Test
    void aClosingSegmentsIsrOnlyShrinksUntilItsSeal() {
        register(1);
        register(2);
        register(3);
        create("i", false, 1, 2, 3);
        assertEquals(null, shrinkIsr("i", 0, 1, 0, 0, 1, 2).error());
        assertEquals(null, close("i", 0, 1, 0).error());
        assertEquals(ErrorCode.INVALID_ARGUMENT, shrinkIsr("i", 0, 1, 0, 1, 1, 2, 3).error(),
                "node 3 caught up with the closing segment, not with what the next one may hold already");
        assertEquals(null, shrinkIsr("i", 0, 1, 0, 1, 1).error(), "a shrink is taken");
        assertEquals(List.of(1), segment("i", 0).getIsrList());
        assertEquals(null, roll("i", 0, 1, 0, 3).error());
        assertEquals(List.of(1), segment("i", 1).getIsrList());
        assertEquals(null, shrinkIsr("i", 1, 1, 0, 2, 1, 2).error(), "the next segment's ISR grows as any open one's");
        assertEquals(null, shrinkIsr("i", 0, 1, 0, 2, 1, 3).error(), "and so does the sealed one's");
    }

    @Test
    void aClosingSegmentsNewLeaderRecordsTheSealAndLeadsTheNextTheOldOneCannot() {
        long inc1 = register(1);
        register(2);
        create("f", false, 1, 2);
        assertEquals(null, close("f", 0, 1, 0).error());
        apply(Command.newBuilder().setFenceNode(FenceNodeCommand.newBuilder().setNodeId(1).setIncarnation(inc1)));
        Segment s = segment("f", 0);
        assertEquals(2, s.getLeader());
        assertEquals(1, s.getLeaderEpoch());
        assertTrue(s.getClosingVersion() > 0, "a new leader of a closing segment finds it closing");
        assertEquals(ErrorCode.FENCED_EPOCH, roll("f", 0, 1, 0, 9).error(), "the deposed leader records nothing");
        assertEquals(null, roll("f", 0, 2, 1, 9).error());
        Segment next = segment("f", 1);
        assertEquals(2, next.getLeader());
        assertEquals(1, next.getLeaderEpoch());
        assertEquals(9, next.getStartOffset());
        assertFalse(next.getIsrList().isEmpty());
    }
}
