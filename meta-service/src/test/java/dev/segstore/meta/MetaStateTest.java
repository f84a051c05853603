package dev.segstore.meta;

import dev.segstore.adapter.ErrorCode;
import dev.segstore.meta.state.CommandResult;
import dev.segstore.meta.state.MetaState;
import dev.segstore.protocol.meta.Command;
import dev.segstore.protocol.meta.CreateShardCommand;
import dev.segstore.protocol.meta.ExpireSegmentsCommand;
import dev.segstore.protocol.meta.FenceNodeCommand;
import dev.segstore.protocol.meta.RegisterNodeCommand;
import dev.segstore.protocol.meta.RollSegmentCommand;
import dev.segstore.protocol.meta.Segment;
import dev.segstore.protocol.meta.SegmentStatus;
import dev.segstore.protocol.meta.ShardSettings;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class MetaStateTest {
    private final MetaState state = new MetaState();
    private long now = 1;

    private CommandResult apply(Command.Builder c) {
        return state.apply(c.setVersion(MetaState.VERSION).setTimestampMs(now++).setMonotonicTimestamp(true).build());
    }

    private long register(int id) {
        apply(Command.newBuilder().setRegisterNode(RegisterNodeCommand.newBuilder().setNodeId(id).setHost("h").setPort(1)));
        return state.node(id).orElseThrow().getIncarnation();
    }

    private void create(String name, boolean unclean, Integer... replicas) {
        create(name, unclean, dev.segstore.protocol.meta.DurabilityMode.FSYNC, replicas);
    }

    private void create(String name, boolean unclean, dev.segstore.protocol.meta.DurabilityMode durability, Integer... replicas) {
        CommandResult r = apply(Command.newBuilder().setCreateShard(CreateShardCommand.newBuilder().setName(name)
                .setSettings(ShardSettings.newBuilder().setReplicaCount(replicas.length).setMinInSyncReplicas(1).setUncleanLeaderElection(unclean)
                        .setDurability(durability))
                .addAllReplicas(List.of(replicas))));
        assertEquals(null, r.error(), r.message());
    }

    private Segment segment(String shard, int seq) {
        return state.route(shard).getSegments(seq);
    }

    @Test
    void aSegmentWithoutALiveIsrMemberWaitsAndGetsItsLeaderBack() {
        long inc1 = register(1);
        register(2);
        create("solo", false, 1, 2);
        // Shrink the ISR to the leader alone, then lose the leader: nobody eligible, the segment waits.
        assertEquals(null, apply(Command.newBuilder().setChangeIsr(dev.segstore.protocol.meta.ChangeIsrCommand.newBuilder()
                .setShard("solo").setSequence(0).setLeader(1).setLeaderEpoch(0).setIsrVersion(0).addNewIsr(1))).error());
        apply(Command.newBuilder().setFenceNode(FenceNodeCommand.newBuilder().setNodeId(1).setIncarnation(inc1)));
        Segment waiting = segment("solo", 0);
        assertEquals(-1, waiting.getLeader(), "no unclean election: node 2 was not in the ISR");
        assertEquals(1, waiting.getLeaderEpoch());
        assertEquals(List.of(1), waiting.getIsrList(), "the last ISR member stays, so it can lead again");
        // A second fence of the same incarnation changes nothing.
        apply(Command.newBuilder().setFenceNode(FenceNodeCommand.newBuilder().setNodeId(1).setIncarnation(inc1)));
        assertEquals(1, segment("solo", 0).getLeaderEpoch());
        register(1);
        assertEquals(1, segment("solo", 0).getLeader());
        assertEquals(2, segment("solo", 0).getLeaderEpoch());
    }

    @Test
    void aSealedSegmentWithoutALiveIsrMemberGetsItsLeaderBackToo() {
        long inc1 = register(1);
        register(2);
        create("sealed", false, 1, 2);
        assertEquals(null, apply(Command.newBuilder().setRollSegment(RollSegmentCommand.newBuilder()
                .setShard("sealed").setSequence(0).setLeaderEpoch(0).setEndOffset(5).addNextReplicas(2).addNextReplicas(1))).error());
        assertEquals(null, apply(Command.newBuilder().setChangeIsr(dev.segstore.protocol.meta.ChangeIsrCommand.newBuilder()
                .setShard("sealed").setSequence(0).setLeader(1).setLeaderEpoch(0).setIsrVersion(0).addNewIsr(1))).error());
        apply(Command.newBuilder().setFenceNode(FenceNodeCommand.newBuilder().setNodeId(1).setIncarnation(inc1)));
        assertEquals(-1, segment("sealed", 0).getLeader(), "the sealed segment's only ISR member is gone: it waits");
        register(1);
        assertEquals(1, segment("sealed", 0).getLeader(), "and gets its leader back when the node returns");
        assertEquals(2, segment("sealed", 0).getLeaderEpoch());
    }

    @Test
    void uncleanElectionWhenTheShardAllowsIt() {
        long inc1 = register(1);
        register(2);
        create("loose", true, 1, 2);
        apply(Command.newBuilder().setChangeIsr(dev.segstore.protocol.meta.ChangeIsrCommand.newBuilder()
                .setShard("loose").setSequence(0).setLeader(1).setLeaderEpoch(0).setIsrVersion(0).addNewIsr(1)));
        apply(Command.newBuilder().setFenceNode(FenceNodeCommand.newBuilder().setNodeId(1).setIncarnation(inc1)));
        assertEquals(2, segment("loose", 0).getLeader());
    }

    @Test
    void rollSealsTheOpenSegmentAndOpensTheNext() {
        register(1);
        register(2);
        register(3);
        create("r", false, 1, 2);
        assertEquals(ErrorCode.FENCED_EPOCH, apply(Command.newBuilder().setRollSegment(RollSegmentCommand.newBuilder()
                .setShard("r").setSequence(0).setLeaderEpoch(3).setEndOffset(10).addNextReplicas(2).addNextReplicas(3))).error());
        assertEquals(null, apply(Command.newBuilder().setRollSegment(RollSegmentCommand.newBuilder()
                .setShard("r").setSequence(0).setLeaderEpoch(0).setEndOffset(10).addNextReplicas(2).addNextReplicas(3))).error());
        assertEquals(SegmentStatus.SEALED, segment("r", 0).getStatus());
        assertEquals(10, segment("r", 0).getEndOffset());
        Segment next = segment("r", 1);
        assertEquals(SegmentStatus.OPEN, next.getStatus());
        assertEquals(10, next.getStartOffset());
        assertEquals(2, next.getLeader());
        assertEquals(ErrorCode.INVALID_ARGUMENT, apply(Command.newBuilder().setRollSegment(RollSegmentCommand.newBuilder()
                .setShard("r").setSequence(0).setLeaderEpoch(0).setEndOffset(20).addNextReplicas(2).addNextReplicas(3))).error(),
                "a sealed segment cannot roll again");
        assertFalse(state.assignments(3).getSegmentsList().isEmpty());
    }

    @Test
    void aRollWithANodeDownKeepsItsReplicaOutsideTheIsrUntilItIsBack() {
        register(1);
        register(2);
        long inc3 = register(3);
        CommandResult created = apply(Command.newBuilder().setCreateShard(CreateShardCommand.newBuilder().setName("r3")
                .setSettings(ShardSettings.newBuilder().setReplicaCount(3).setMinInSyncReplicas(2)).addAllReplicas(List.of(1, 2, 3))));
        assertEquals(null, created.error());
        apply(Command.newBuilder().setFenceNode(FenceNodeCommand.newBuilder().setNodeId(3).setIncarnation(inc3)));
        assertEquals(null, apply(Command.newBuilder().setRollSegment(RollSegmentCommand.newBuilder()
                .setShard("r3").setSequence(0).setLeaderEpoch(0).setEndOffset(10).addAllNextReplicas(List.of(1, 2, 3)))).error());
        Segment next = segment("r3", 1);
        assertEquals(List.of(1, 2, 3), next.getReplicasList());
        assertEquals(List.of(1, 2), next.getIsrList(), "the fenced node's replica starts outside the ISR");
        assertTrue(state.assignments(3).getSegmentsList().stream().anyMatch(s -> s.getSequence() == 1),
                "node 3 learns of it when it registers again");
        assertEquals(ErrorCode.NOT_ENOUGH_REPLICAS, apply(Command.newBuilder().setRollSegment(RollSegmentCommand.newBuilder()
                .setShard("r3").setSequence(1).setLeaderEpoch(0).setEndOffset(20).addAllNextReplicas(List.of(3, 1, 2)))).error(),
                "the leader must be alive");
    }

    @Test
    void deletingAShardForgetsItsSegmentsAndOffsets() {
        register(1);
        create("d", false, 1);
        apply(Command.newBuilder().setCommitOffsets(dev.segstore.protocol.meta.CommitOffsetsCommand.newBuilder()
                .addOffsets(dev.segstore.protocol.meta.GroupOffset.newBuilder().setGroup("g").setShard("d").setOffset(5))));
        assertEquals(5L, state.groupOffset("g", "d").orElseThrow());
        assertEquals(null, apply(Command.newBuilder().setDeleteShard(dev.segstore.protocol.meta.DeleteShardCommand.newBuilder().setName("d").setTwoPhase(true))).error());
        assertFalse(state.groupOffset("g", "d").isPresent(), "offsets go with the first phase");
        assertEquals(null, apply(Command.newBuilder().setFinishDeleteShard(dev.segstore.protocol.meta.FinishDeleteShardCommand.newBuilder()
                .setName("d").setShardId(1))).error());
        assertEquals(ErrorCode.SHARD_NOT_FOUND, apply(Command.newBuilder().setDeleteShard(dev.segstore.protocol.meta.DeleteShardCommand.newBuilder().setName("d").setTwoPhase(true))).error());
        create("d", false, 1);
        assertFalse(state.groupOffset("g", "d").isPresent(), "a re-created shard starts without offsets");
        assertEquals(2, state.shard("d").orElseThrow().getShardId(), "ids are never reused");
    }

    @Test
    void aDeleteWrittenBeforeTwoPhaseDeletesIsReplayedAsItWasApplied() {
        // An old log: create, delete (one phase, as applied then), create again, which got the next id.
        register(1);
        create("old", false, 1);
        assertEquals(null, apply(Command.newBuilder().setDeleteShard(dev.segstore.protocol.meta.DeleteShardCommand.newBuilder()
                .setName("old"))).error());
        assertTrue(state.deletingShards().isEmpty(), "gone at once, nothing left DELETING");
        create("old", false, 1);
        assertEquals(2, state.shard("old").orElseThrow().getShardId(), "the re-create succeeds, with the id it got then");
    }

    private CommandResult roll(String shard, long sequence, long end) {
        return apply(Command.newBuilder().setRollSegment(RollSegmentCommand.newBuilder()
                .setShard(shard).setSequence(sequence).setLeaderEpoch(0).setEndOffset(end).addNextReplicas(1)));
    }

    private CommandResult expire(String shard, long shardId, long beforeSequence) {
        return apply(Command.newBuilder().setExpireSegments(ExpireSegmentsCommand.newBuilder()
                .setShard(shard).setShardId(shardId).setBeforeSequence(beforeSequence)));
    }

    @Test
    void retentionDropsTheOldestSegmentsSealedLongEnoughAgoAndNeverTheOpenOne() throws Exception {
        register(1);
        assertEquals(null, apply(Command.newBuilder().setCreateShard(CreateShardCommand.newBuilder().setName("r")
                .setSettings(ShardSettings.newBuilder().setReplicaCount(1).setMinInSyncReplicas(1).setRetentionMs(1_000))
                .addReplicas(1))).error());
        long id = state.shard("r").orElseThrow().getShardId();
        now = 10_000;
        assertEquals(null, roll("r", 0, 5).error()); // sealed at 10000
        assertEquals(null, roll("r", 1, 9).error()); // sealed at 10001
        assertEquals(10_000, segment("r", 0).getSealedAtMs(), "the seal time is the roll command's time");
        assertEquals(0, segment("r", 2).getSealedAtMs(), "the open segment has none");

        assertEquals(List.of(), state.expired(10_999), "nothing is a full retention past its seal yet");
        assertEquals(List.of(ExpireSegmentsCommand.newBuilder().setShard("r").setShardId(id).setBeforeSequence(1).build()),
                state.expired(11_000));
        assertEquals(2, state.expired(50_000).get(0).getBeforeSequence(), "the open segment 2 is never due");

        now = 11_000;
        assertEquals(ErrorCode.INVALID_ARGUMENT, expire("r", id, 2).error(), "segment 1 is not due at 11000: the state machine checks");
        assertEquals(ErrorCode.SHARD_NOT_FOUND, expire("r", id + 1, 1).error(), "another shard's id");
        assertEquals(3, state.route("r").getSegmentsCount(), "refused commands drop nothing");
        assertEquals(null, expire("r", id, 1).error());
        List<Segment> left = state.route("r").getSegmentsList();
        assertEquals(List.of(1L, 2L), left.stream().map(Segment::getSequence).toList());
        assertEquals(5, left.get(0).getStartOffset());
        assertEquals(null, expire("r", id, 1).error(), "a repeated expiry changes nothing");
        assertEquals(2, state.route("r").getSegmentsCount());

        // Sequences still name segments: a proposal for the dropped one fails, the open one rolls on.
        assertEquals(ErrorCode.INVALID_ARGUMENT, apply(Command.newBuilder().setChangeIsr(dev.segstore.protocol.meta.ChangeIsrCommand.newBuilder()
                .setShard("r").setSequence(0).setLeader(1).setLeaderEpoch(0).setIsrVersion(0).addNewIsr(1))).error());
        assertEquals(ErrorCode.INVALID_ARGUMENT, roll("r", 1, 12).error(), "segment 1 is sealed");
        assertEquals(null, roll("r", 2, 12).error());
        assertEquals(List.of(1L, 2L, 3L), state.route("r").getSegmentsList().stream().map(Segment::getSequence).toList());
        assertTrue(state.assignments(1).getSegmentsList().stream().noneMatch(s -> s.getSequence() == 0),
                "the node no longer hosts the dropped segment, so it deletes its replica");

        MetaState restored = new MetaState();
        restored.restore(dev.segstore.protocol.meta.MetaSnapshot.parseFrom(state.snapshot().toByteArray()));
        assertEquals(state.route("r"), restored.route("r"), "a snapshot keeps the shard's segments from the oldest left");
        assertEquals(null, restored.apply(Command.newBuilder().setVersion(MetaState.VERSION).setTimestampMs(now)
                .setChangeIsr(dev.segstore.protocol.meta.ChangeIsrCommand.newBuilder().setShard("r").setSequence(3).setLeader(1)
                        .setLeaderEpoch(0).setIsrVersion(0).addNewIsr(1)).build()).error(), "restored state finds segments by sequence");
    }

    // ---- command times (issue 15, item 6) ----------------------------------------------------------------------

    @Test
    void commandTimesNeverGoBackInTheState() {
        now = 10_000;
        register(1);
        now = 5_000; // a later command stamped earlier (a new leader whose clock is behind)
        assertEquals(null, apply(Command.newBuilder().setCreateShard(CreateShardCommand.newBuilder().setName("t")
                .setSettings(ShardSettings.newBuilder().setReplicaCount(1).setMinInSyncReplicas(1).setRetentionMs(1_000))
                .addReplicas(1))).error());
        assertEquals(10_000, state.shard("t").orElseThrow().getCreatedAtMs(), "created at the newest command time applied");
        assertEquals(null, roll("t", 0, 5).error());
        assertEquals(10_000, segment("t", 0).getSealedAtMs(), "sealed at the newest command time applied, not before");
        register(2);
        assertEquals(10_000, state.node(2).orElseThrow().getRegisteredAtMs());
        now = 11_000;
        register(3);
        now = 0;
        // Retention is judged at the newest command time applied too (11000: segment 0 is a full second old).
        assertEquals(null, expire("t", state.shard("t").orElseThrow().getShardId(), 1).error());
    }

    @Test
    void theNewestCommandTimeAppliedIsKeptInSnapshots() throws Exception {
        now = 50_000;
        register(1);
        create("k", false, 1);
        MetaState restored = new MetaState();
        restored.restore(dev.segstore.protocol.meta.MetaSnapshot.parseFrom(state.snapshot().toByteArray()));
        assertEquals(null, restored.apply(Command.newBuilder().setVersion(MetaState.VERSION).setTimestampMs(1_000).setMonotonicTimestamp(true)
                .setRollSegment(RollSegmentCommand.newBuilder().setShard("k").setSequence(0).setLeaderEpoch(0).setEndOffset(5)
                        .addNextReplicas(1)).build()).error());
        assertEquals(50_001, restored.route("k").getSegments(0).getSealedAtMs(),
                "a replica restored from a snapshot must stamp as one that applied the whole log");
    }

    @Test
    void aCommandOfAnOlderBuildIsAppliedAtItsOwnTimeAndDoesNotCount() throws Exception {
        // An old log (commands without monotonic_timestamp) is applied as it was when it was written, whatever
        // snapshot a replica starts from: its times do not count towards the newest command time.
        MetaState old = new MetaState();
        for (long t : new long[] {50_000, 40_000}) {
            assertTrue(old.apply(Command.newBuilder().setVersion(MetaState.VERSION).setTimestampMs(t).setRegisterNode(
                    RegisterNodeCommand.newBuilder().setNodeId((int) (t / 10_000)).setHost("h").setPort(1)).build()).isOk());
        }
        assertEquals(40_000, old.node(4).orElseThrow().getRegisteredAtMs(), "as the older build applied it");
        assertEquals(0, old.lastCommandTimeMs());
        assertEquals(50_000, old.newestTimeMs(), "what the controller takes as the newest time the log shows");
        MetaState restored = new MetaState();
        restored.restore(dev.segstore.protocol.meta.MetaSnapshot.parseFrom(old.snapshot().toByteArray()));
        assertEquals(0, restored.lastCommandTimeMs());
        assertEquals(old.snapshot(), restored.snapshot());
    }

    @Test
    void aShardWithoutRetentionKeepsEverySegment() {
        register(1);
        create("keep", false, 1);
        now = 10_000;
        assertEquals(null, roll("keep", 0, 5).error());
        assertEquals(List.of(), state.expired(Long.MAX_VALUE / 2));
        assertEquals(ErrorCode.INVALID_ARGUMENT, expire("keep", state.shard("keep").orElseThrow().getShardId(), 1).error());
    }

    private CommandResult changeIsr(String shard, long seq, int leader, int epoch, int version, Integer... isr) {
        return apply(Command.newBuilder().setChangeIsr(dev.segstore.protocol.meta.ChangeIsrCommand.newBuilder()
                .setShard(shard).setSequence(seq).setLeader(leader).setLeaderEpoch(epoch).setIsrVersion(version)
                .addAllNewIsr(List.of(isr))));
    }

    @Test
    void aLiveNodeThatRegistersAgainLosesItsLeadershipsToANewEpochInPageCacheMode() {
        dev.segstore.protocol.meta.DurabilityMode pageCache = dev.segstore.protocol.meta.DurabilityMode.PAGE_CACHE;
        long inc2 = register(2);
        register(1);
        register(3);
        create("multi", false, pageCache, 2, 1, 3);
        // Epoch 1 led by node 1, ISR [1, 3, 2]: fence node 2, bring it back, grow the ISR again.
        apply(Command.newBuilder().setFenceNode(FenceNodeCommand.newBuilder().setNodeId(2).setIncarnation(inc2)));
        register(2);
        assertEquals(null, changeIsr("multi", 0, 1, 1, 1, 1, 3, 2).error());
        Segment before = segment("multi", 0);
        assertEquals(1, before.getLeader());
        assertEquals(1, before.getLeaderEpoch());
        assertEquals(List.of(1, 3, 2), before.getIsrList());
        // A segment whose ISR is node 1 alone, and one node 1 only follows in.
        create("solo", false, pageCache, 1, 2);
        assertEquals(null, changeIsr("solo", 0, 1, 0, 0, 1).error());
        create("follows", false, pageCache, 3, 1);
        long inc1 = state.node(1).orElseThrow().getIncarnation();

        register(1); // a new incarnation of node 1 replaces the live one (it may have lost acknowledged bytes)

        assertEquals(inc1 + 1, state.node(1).orElseThrow().getIncarnation());
        Segment multi = segment("multi", 0);
        assertEquals(3, multi.getLeader(), "leadership moves to the first live ISR member other than node 1");
        assertEquals(2, multi.getLeaderEpoch(), "in a new epoch");
        assertEquals(List.of(3, 2), multi.getIsrList(), "node 1 leaves the ISR");
        assertEquals(before.getIsrVersion() + 1, multi.getIsrVersion());
        Segment solo = segment("solo", 0);
        assertEquals(1, solo.getLeader(), "the sole ISR member keeps the segment");
        assertEquals(1, solo.getLeaderEpoch(), "but in a new epoch (one bump, not two)");
        assertEquals(List.of(1), solo.getIsrList());
        Segment follows = segment("follows", 0);
        assertEquals(3, follows.getLeader());
        assertEquals(0, follows.getLeaderEpoch(), "a leader that did not restart keeps its epoch");
        assertEquals(List.of(3), follows.getIsrList(), "the restarted follower leaves the ISR and catches up again");
        assertEquals(1, follows.getIsrVersion());
    }

    @Test
    void aLiveNodeThatRegistersAgainInFsyncModeKeepsItsPlaceInANewEpoch() {
        register(1);
        register(2);
        long inc3 = register(3);
        create("f", false, 1, 2, 3);
        assertEquals(null, changeIsr("f", 0, 1, 0, 0, 1, 3).error()); // ISR [1, 3]
        // Node 3 is dead but not fenced yet when node 1 restarts. In fsync mode node 1 only ever counted forced
        // bytes, so it holds everything acknowledged: it keeps leading, in a new epoch, and stays in the ISR.
        register(1);
        Segment f = segment("f", 0);
        assertEquals(1, f.getLeader(), "not handed to node 3, which may be dead");
        assertEquals(1, f.getLeaderEpoch(), "a new epoch: followers truncate to the restarted leader's log");
        assertEquals(List.of(1, 3), f.getIsrList());
        // Node 3's session ends: node 1 leads on. (Moving the leadership to node 3 left the segment waiting
        // for it, with node 1, which holds everything, out of the ISR.)
        apply(Command.newBuilder().setFenceNode(FenceNodeCommand.newBuilder().setNodeId(3).setIncarnation(inc3)));
        assertEquals(1, segment("f", 0).getLeader());
        assertEquals(List.of(1), segment("f", 0).getIsrList());
    }

    private long register(int id, String pageCacheId) {
        apply(Command.newBuilder().setRegisterNode(RegisterNodeCommand.newBuilder().setNodeId(id).setHost("h").setPort(1)
                .setPageCacheId(pageCacheId)));
        return state.node(id).orElseThrow().getIncarnation();
    }

    /**
     * Campaign 6747654017441015232 run 0044, on the state machine: page-cache shard led by node 3, ISR [3, 2, 1].
     * Node 2's process is killed and restarted (same boot: its page cache kept everything), nodes 3 and 1 crash
     * losing their page cache (new boot ids); node 2 and then node 1 register again before the controller notices
     * anything. Node 2 must keep its ISR place, so that when node 3's session ends the leadership goes to node 2,
     * which holds every acknowledged record. (Before: node 2 left the ISR as a possible loss, the ISR became [3],
     * node 3 came back with a shortened log as the only member and led alone: acknowledged offsets lost.)
     */
    @Test
    void aPageCacheNodeRestartedOnTheSameBootKeepsItsIsrPlaceAndTakesOverFromOnesThatLostTheirs() {
        dev.segstore.protocol.meta.DurabilityMode pageCache = dev.segstore.protocol.meta.DurabilityMode.PAGE_CACHE;
        register(1, "boot-a");
        register(2, "boot-b");
        long inc3 = register(3, "boot-c");
        create("p", false, pageCache, 3, 2, 1);
        assertEquals(null, changeIsr("p", 0, 3, 0, 0, 3, 2, 1).error());
        int version = segment("p", 0).getIsrVersion();

        register(2, "boot-b"); // killed and started again: same boot
        Segment afterTwo = segment("p", 0);
        assertEquals(List.of(3, 2, 1), afterTwo.getIsrList(), "a restart on the same boot keeps its ISR place");
        assertEquals(version, afterTwo.getIsrVersion());
        assertEquals(3, afterTwo.getLeader());
        assertEquals(0, afterTwo.getLeaderEpoch(), "node 2 led nothing: no new epoch");

        register(1, "boot-a2"); // crashed with the machine: a new boot, it may have lost acknowledged bytes
        assertEquals(List.of(3, 2), segment("p", 0).getIsrList(), "a restart after a machine crash leaves the ISR");

        apply(Command.newBuilder().setFenceNode(FenceNodeCommand.newBuilder().setNodeId(3).setIncarnation(inc3)));
        Segment p = segment("p", 0);
        assertEquals(2, p.getLeader(), "the member that kept everything leads");
        assertEquals(List.of(2), p.getIsrList());
        assertEquals(1, p.getLeaderEpoch());
        assertEquals("boot-b", state.node(2).orElseThrow().getPageCacheId());
    }

    @Test
    void aPageCacheLeaderRestartedOnTheSameBootKeepsLeadingInANewEpochButAnUnknownPageCacheDoesNot() {
        dev.segstore.protocol.meta.DurabilityMode pageCache = dev.segstore.protocol.meta.DurabilityMode.PAGE_CACHE;
        register(1, "boot-a");
        register(2, "");
        create("p", false, pageCache, 1, 2);
        assertEquals(null, changeIsr("p", 0, 1, 0, 0, 1, 2).error());
        register(1, "boot-a");
        assertEquals(1, segment("p", 0).getLeader());
        assertEquals(1, segment("p", 0).getLeaderEpoch(), "never the epoch it led before the restart");
        assertEquals(List.of(1, 2), segment("p", 0).getIsrList());
        // An empty id proves nothing, even twice: node 2 leaves the ISR.
        register(2, "");
        assertEquals(List.of(1), segment("p", 0).getIsrList());
    }

    @Test
    void aRetriedRegistrationOfTheSameProcessChangesNothing() {
        RegisterNodeCommand.Builder same = RegisterNodeCommand.newBuilder().setNodeId(1).setHost("h").setPort(1).setInstanceId(77);
        apply(Command.newBuilder().setRegisterNode(same));
        register(2);
        create("r", false, 1, 2);
        long inc = state.node(1).orElseThrow().getIncarnation();
        apply(Command.newBuilder().setRegisterNode(same)); // its answer was lost: the node retries
        assertEquals(inc, state.node(1).orElseThrow().getIncarnation());
        assertEquals(0, segment("r", 0).getLeaderEpoch(), "no new epoch");
        apply(Command.newBuilder().setRegisterNode(same.clone().setInstanceId(78))); // a restarted process
        assertEquals(inc + 1, state.node(1).orElseThrow().getIncarnation());
        assertEquals(1, segment("r", 0).getLeaderEpoch());
    }

    @Test
    void aRetriedIsrChangeThatAlreadyCommittedIsAnsweredWithTheCurrentSegment() {
        register(1);
        register(2);
        register(3);
        create("retry", false, 1, 2, 3);
        CommandResult first = changeIsr("retry", 0, 1, 0, 0, 1, 2);
        assertEquals(null, first.error(), first.message());
        Segment committed = segment("retry", 0);
        assertEquals(1, committed.getIsrVersion());

        CommandResult retry = changeIsr("retry", 0, 1, 0, 0, 1, 2); // the leader lost the first answer
        assertEquals(null, retry.error(), retry.message());
        assertEquals(committed, ((dev.segstore.protocol.meta.SegmentResponse) retry.value()).getSegment());
        assertEquals(committed, segment("retry", 0), "a retry changes nothing");

        assertEquals(ErrorCode.FENCED_EPOCH, changeIsr("retry", 0, 1, 0, 0, 1, 3).error(), "another ISR on the old version is stale");
        assertEquals(ErrorCode.FENCED_EPOCH, changeIsr("retry", 0, 1, 1, 0, 1, 2).error(), "another epoch is stale");
        assertEquals(null, changeIsr("retry", 0, 1, 0, 1, 1).error());
        assertEquals(ErrorCode.FENCED_EPOCH, changeIsr("retry", 0, 1, 0, 0, 1, 2).error(), "two versions behind is stale");
    }

    @Test
    void theMetadataVersionGrowsAndSegmentsKeepTheVersionThatCreatedThem() throws Exception {
        register(1);
        long registered = state.assignments(1).getMetadataVersion();
        assertEquals(state.appliedCommands(), registered, "an assignment carries the applied-command count");
        assertTrue(registered > 0);
        create("v", false, 1);
        Segment first = segment("v", 0);
        assertEquals(state.appliedCommands(), first.getCreatedVersion(), "created by the CreateShard command");
        assertEquals(null, roll("v", 0, 5).error());
        Segment second = segment("v", 1);
        assertEquals(state.appliedCommands(), second.getCreatedVersion(), "created by the RollSegment command");
        assertTrue(second.getCreatedVersion() > first.getCreatedVersion());
        assertEquals(first.getCreatedVersion(), segment("v", 0).getCreatedVersion(), "sealing keeps it");
        long beforeRefused = state.appliedCommands();
        assertEquals(ErrorCode.SHARD_EXISTS, apply(Command.newBuilder().setCreateShard(CreateShardCommand.newBuilder().setName("v")
                .setSettings(ShardSettings.newBuilder().setReplicaCount(1).setMinInSyncReplicas(1)).addReplicas(1))).error());
        assertEquals(beforeRefused + 1, state.appliedCommands(), "a refused command is applied on every replica, and counts");
        dev.segstore.protocol.meta.NodeAssignments a = state.assignments(1);
        assertEquals(state.appliedCommands(), a.getMetadataVersion());
        assertTrue(a.getMetadataVersion() > registered, "the version only grows");
        assertTrue(a.getSegmentsList().stream().allMatch(s -> s.getCreatedVersion() > 0 && s.getCreatedVersion() <= a.getMetadataVersion()));

        MetaState restored = new MetaState();
        restored.restore(dev.segstore.protocol.meta.MetaSnapshot.parseFrom(state.snapshot().toByteArray()));
        assertEquals(state.appliedCommands(), restored.appliedCommands(), "the snapshot keeps the version");
        assertEquals(a, restored.assignments(1), "and every segment's created_version");
        Command next = Command.newBuilder().setVersion(MetaState.VERSION).setTimestampMs(now++)
                .setRollSegment(RollSegmentCommand.newBuilder().setShard("v").setSequence(1).setLeaderEpoch(0).setEndOffset(9).addNextReplicas(1)).build();
        assertEquals(null, state.apply(next).error());
        assertEquals(null, restored.apply(next).error());
        assertEquals(state.snapshot(), restored.snapshot(), "a restored replica goes on counting as the others");
        assertEquals(state.appliedCommands(), restored.route("v").getSegments(2).getCreatedVersion());
    }

    // ---- shard identity (issue 15, items 3-4) -----------------------------------------------------------------

    private CommandResult delete(String name) {
        return apply(Command.newBuilder().setDeleteShard(dev.segstore.protocol.meta.DeleteShardCommand.newBuilder().setName(name).setTwoPhase(true)));
    }

    private CommandResult finishDelete(String name, long id) {
        return apply(Command.newBuilder().setFinishDeleteShard(dev.segstore.protocol.meta.FinishDeleteShardCommand.newBuilder()
                .setName(name).setShardId(id)));
    }

    /** Deletes the shard (both phases) and creates it again on the same replicas: returns the old id. */
    private long recreate(String name, Integer... replicas) {
        long old = state.shard(name).orElseThrow().getShardId();
        delete(name);
        finishDelete(name, old);
        create(name, false, replicas);
        assertTrue(state.shard(name).orElseThrow().getShardId() != old);
        return old;
    }

    @Test
    void aDeleteHidesTheShardAtOnceButFreesItsNameOnlyOnceFinished() {
        register(1);
        register(2);
        create("d2", false, 1, 2);
        long id = state.shard("d2").orElseThrow().getShardId();
        assertEquals(null, delete("d2").error());
        assertTrue(state.shard("d2").isEmpty(), "a deleting shard reads as missing");
        assertEquals(null, state.route("d2"));
        assertTrue(state.assignments(1).getSegmentsList().isEmpty(), "its replicas leave every assignment at once");
        assertEquals(List.of(id), state.assignments(2).getDeletedShardIdsList(), "and the nodes are told its id is deleted");
        assertEquals(null, delete("d2").error(), "a delete of a deleting shard is answered as the first one");
        CommandResult early = apply(Command.newBuilder().setCreateShard(CreateShardCommand.newBuilder().setName("d2")
                .setSettings(ShardSettings.newBuilder().setReplicaCount(1).setMinInSyncReplicas(1)).addReplicas(1)));
        assertEquals(ErrorCode.UNAVAILABLE, early.error(), "the name is not free before the delete is finished: " + early.message());
        assertEquals(null, finishDelete("d2", id + 1).error(), "another id: a no-op");
        assertEquals(ErrorCode.UNAVAILABLE, apply(Command.newBuilder().setCreateShard(CreateShardCommand.newBuilder().setName("d2")
                .setSettings(ShardSettings.newBuilder().setReplicaCount(1).setMinInSyncReplicas(1)).addReplicas(1))).error());
        assertEquals(null, finishDelete("d2", id).error());
        assertEquals(List.of(), state.assignments(2).getDeletedShardIdsList());
        create("d2", false, 1);
        assertEquals(null, finishDelete("d2", id).error(), "finishing again: a no-op");
        assertTrue(state.shard("d2").isPresent(), "the new shard stays");
    }

    @Test
    void aRollRetriedAcrossADeleteAndRecreateCannotSealTheNewShard() {
        register(1);
        create("x", false, 1);
        long old = recreate("x", 1);
        CommandResult r = apply(Command.newBuilder().setRollSegment(RollSegmentCommand.newBuilder().setShard("x").setShardId(old)
                .setLeader(1).setSequence(0).setLeaderEpoch(0).setEndOffset(100).addNextReplicas(1)));
        assertEquals(ErrorCode.SHARD_NOT_FOUND, r.error(), "the roll names the deleted shard: " + r.message());
        assertEquals(SegmentStatus.OPEN, segment("x", 0).getStatus(), "the new shard's first segment stays open");
        assertEquals(1, state.route("x").getSegmentsCount());
    }

    @Test
    void aRollNamingAnotherLeaderIsFenced() {
        register(1);
        register(2);
        create("y", false, 1, 2);
        CommandResult r = apply(Command.newBuilder().setRollSegment(RollSegmentCommand.newBuilder().setShard("y")
                .setShardId(state.shard("y").orElseThrow().getShardId()).setLeader(2).setSequence(0).setLeaderEpoch(0)
                .setEndOffset(100).addNextReplicas(1).addNextReplicas(2)));
        assertEquals(ErrorCode.FENCED_EPOCH, r.error(), "node 2 does not lead y/0: " + r.message());
        assertEquals(SegmentStatus.OPEN, segment("y", 0).getStatus());
    }

    @Test
    void anIsrChangeRetriedAcrossADeleteAndRecreateCannotTouchTheNewShard() {
        register(1);
        register(2);
        create("z", false, 1, 2);
        long old = recreate("z", 1, 2);
        CommandResult r = apply(Command.newBuilder().setChangeIsr(dev.segstore.protocol.meta.ChangeIsrCommand.newBuilder()
                .setShard("z").setShardId(old).setSequence(0).setLeader(1).setLeaderEpoch(0).setIsrVersion(0).addNewIsr(1)));
        assertEquals(ErrorCode.SHARD_NOT_FOUND, r.error(), r.message());
        assertEquals(List.of(1, 2), segment("z", 0).getIsrList(), "the new shard's ISR is unchanged");
    }

    @Test
    void aGroupOffsetCommittedForADeletedShardDoesNotLandInTheNewOne() {
        register(1);
        create("g", false, 1);
        long old = recreate("g", 1);
        apply(Command.newBuilder().setCommitOffsets(dev.segstore.protocol.meta.CommitOffsetsCommand.newBuilder()
                .addOffsets(dev.segstore.protocol.meta.GroupOffset.newBuilder().setGroup("grp").setShard("g").setShardId(old).setOffset(7))));
        assertFalse(state.groupOffset("grp", "g").isPresent(), "a commit for the deleted shard");
        long current = state.shard("g").orElseThrow().getShardId();
        apply(Command.newBuilder().setCommitOffsets(dev.segstore.protocol.meta.CommitOffsetsCommand.newBuilder()
                .addOffsets(dev.segstore.protocol.meta.GroupOffset.newBuilder().setGroup("grp").setShard("g").setShardId(current).setOffset(8))
                .addOffsets(dev.segstore.protocol.meta.GroupOffset.newBuilder().setGroup("old-client").setShard("g").setOffset(9))));
        assertEquals(8L, state.groupOffset("grp", "g").orElseThrow());
        assertEquals(9L, state.groupOffset("old-client", "g").orElseThrow(), "id 0: unchecked");
    }

    private CommandResult moveLeader(String shard, long seq, int epoch, int to) {
        return apply(Command.newBuilder().setMoveLeader(dev.segstore.protocol.meta.MoveLeaderCommand.newBuilder().setShard(shard)
                .setShardId(state.shard(shard).orElseThrow().getShardId()).setSequence(seq).setLeaderEpoch(epoch).setTo(to)));
    }

    @Test
    void aLeadershipMovesOnlyToALiveIsrMemberOfTheOpenSegmentInTheEpochSeen() {
        register(1);
        register(2);
        long inc3 = register(3);
        create("m", false, 1, 2, 3);
        assertEquals(null, changeIsr("m", 0, 1, 0, 0, 1, 2).error()); // 3 left the ISR
        CommandResult notInIsr = moveLeader("m", 0, 0, 3);
        assertEquals(ErrorCode.INVALID_ARGUMENT, notInIsr.error(), "node 3 is not in the ISR: it may lack acknowledged records");
        assertEquals(1, segment("m", 0).getLeader());
        assertEquals(null, moveLeader("m", 0, 0, 2).error());
        assertEquals(2, segment("m", 0).getLeader());
        assertEquals(1, segment("m", 0).getLeaderEpoch(), "a new epoch: the old leader's later appends are truncated by it");
        assertEquals(List.of(1, 2), segment("m", 0).getIsrList(), "the ISR is unchanged");
        assertEquals(ErrorCode.FENCED_EPOCH, moveLeader("m", 0, 0, 1).error(), "a move decided on epoch 0 is stale in epoch 1");
        assertEquals(null, moveLeader("m", 0, 1, 2).error(), "a retry of a move that was applied is answered OK");
        assertEquals(1, segment("m", 0).getLeaderEpoch(), "and changes nothing");
        apply(Command.newBuilder().setControlledShutdown(dev.segstore.protocol.meta.ControlledShutdownCommand.newBuilder().setNodeId(3)
                .setIncarnation(inc3)));
        assertEquals(ErrorCode.INVALID_ARGUMENT, moveLeader("m", 0, 1, 3).error(), "not to a node shutting down either");
    }

    /**
     * A move takes the lead from a leader that may be alive and still answer reads from its lease: the segment says
     * so until the controller clears it, and every later leader of it waits that lease out. A fence (no heartbeat for a session, or the
     * process gone) elects without it.
     */
    @Test
    void aMovedLeadershipMarksTheSegmentSoItsNewLeadersWaitOutTheOldLeadersLease() {
        long inc1 = register(1);
        register(2);
        long inc3 = register(3);
        create("f", false, 1, 2, 3);
        apply(Command.newBuilder().setFenceNode(FenceNodeCommand.newBuilder().setNodeId(1).setIncarnation(inc1)));
        assertEquals(2, segment("f", 0).getLeader());
        assertFalse(segment("f", 0).getDeposedLeaderMayServe(), "a fenced leader holds no lease its successor must wait for");
        create("m", false, 2, 3);
        assertEquals(null, moveLeader("m", 0, 0, 3).error());
        assertTrue(segment("m", 0).getDeposedLeaderMayServe(), "node 2 may still answer reads from its lease");
        apply(Command.newBuilder().setFenceNode(FenceNodeCommand.newBuilder().setNodeId(3).setIncarnation(inc3)));
        assertTrue(segment("m", 0).getLeader() == 2 && segment("m", 0).getDeposedLeaderMayServe(),
                "a later change cannot prove node 2's lease over: still set, " + segment("m", 0));
        // A fence of a node whose lease the controller cannot prove over (silent for less than its read.lease.ms).
        long again = register(1);
        create("l", false, 1, 2);
        apply(Command.newBuilder().setFenceNode(FenceNodeCommand.newBuilder().setNodeId(1).setIncarnation(again).setLeaderMayServe(true)));
        assertEquals(2, segment("l", 0).getLeader());
        assertTrue(segment("l", 0).getDeposedLeaderMayServe(), "node 1 may still answer reads from its lease");
        // The controller clears it once no deposed leader can serve: for the epoch it saw only.
        long id = state.shard("l").orElseThrow().getShardId();
        apply(Command.newBuilder().setClearDeposedLeader(dev.segstore.protocol.meta.ClearDeposedLeaderCommand.newBuilder().addSegments(
                dev.segstore.protocol.meta.DeposedSegment.newBuilder().setShard("l").setShardId(id).setSequence(0).setLeaderEpoch(0))));
        assertTrue(segment("l", 0).getDeposedLeaderMayServe(), "seen in epoch 0: the segment is in epoch 1 now");
        apply(Command.newBuilder().setClearDeposedLeader(dev.segstore.protocol.meta.ClearDeposedLeaderCommand.newBuilder().addSegments(
                dev.segstore.protocol.meta.DeposedSegment.newBuilder().setShard("l").setShardId(id).setSequence(0).setLeaderEpoch(1))));
        assertFalse(segment("l", 0).getDeposedLeaderMayServe());
        // A registration replacing a live incarnation (a restart, or another process alive under the same id): the
        // segments it led wait out the old one's lease, with this node id as leader too; not after a controlled shutdown.
        register(1);
        create("r", false, 2, 1);
        register(2);
        assertEquals(2, segment("r", 0).getLeader());
        assertTrue(segment("r", 0).getDeposedLeaderMayServe(), "the old process of node 2 may still serve: " + segment("r", 0));
        create("s", false, 2, 1);
        long inc2 = state.node(2).orElseThrow().getIncarnation();
        apply(Command.newBuilder().setControlledShutdown(dev.segstore.protocol.meta.ControlledShutdownCommand.newBuilder().setNodeId(2)
                .setIncarnation(inc2)));
        register(2);
        assertFalse(segment("s", 0).getDeposedLeaderMayServe(), "it stopped leader reads before asking to hand over");
    }

    @Test
    void aShardsRetentionIsAlteredAndKeptInSnapshots() throws Exception {
        register(1);
        create("r2", false, 1);
        long id = state.shard("r2").orElseThrow().getShardId();
        CommandResult r = apply(Command.newBuilder().setAlterShard(dev.segstore.protocol.meta.AlterShardCommand.newBuilder().setName("r2")
                .setShardId(id).setRetentionMs(60_000)));
        assertEquals(null, r.error(), r.message());
        assertEquals(60_000, state.shard("r2").orElseThrow().getSettings().getRetentionMs());
        assertEquals(ErrorCode.SHARD_NOT_FOUND, apply(Command.newBuilder().setAlterShard(dev.segstore.protocol.meta.AlterShardCommand.newBuilder()
                .setName("r2").setShardId(id + 1).setRetentionMs(1))).error(), "another shard of that name: nothing changes");
        assertEquals(ErrorCode.INVALID_ARGUMENT, apply(Command.newBuilder().setAlterShard(dev.segstore.protocol.meta.AlterShardCommand.newBuilder()
                .setName("r2").setShardId(id).setRetentionMs(0))).error());
        MetaState restored = new MetaState();
        restored.restore(dev.segstore.protocol.meta.MetaSnapshot.parseFrom(state.snapshot().toByteArray()));
        assertEquals(60_000, restored.shard("r2").orElseThrow().getSettings().getRetentionMs());
    }

    private long registerHolding(int id, dev.segstore.protocol.meta.SegmentId... held) {
        CommandResult r = apply(Command.newBuilder().setRegisterNode(RegisterNodeCommand.newBuilder().setNodeId(id).setHost("h").setPort(1)
                .setHeldReported(true).addAllHeldSegments(List.of(held))));
        assertTrue(((dev.segstore.protocol.meta.NodeAssignments) r.value()).getHeldChecked(), "the answer says the logs were checked");
        return state.node(id).orElseThrow().getIncarnation();
    }

    private dev.segstore.protocol.meta.SegmentId idOf(String shard, int seq) {
        Segment s = segment(shard, seq);
        return dev.segstore.protocol.meta.SegmentId.newBuilder().setShardId(s.getShardId()).setSequence(s.getSequence()).build();
    }

    private CommandResult markOffline(int node, long incarnation, dev.segstore.protocol.meta.SegmentId... ids) {
        return apply(Command.newBuilder().setMarkReplicasOffline(dev.segstore.protocol.meta.MarkReplicasOfflineCommand.newBuilder()
                .setNodeId(node).setIncarnation(incarnation).addAllSegments(List.of(ids))));
    }

    /**
     * An fsync-mode leader restarts with an empty disk (its log lost: a replaced disk, a directory that did not come
     * up). Before, a restart in fsync mode kept every ISR place and leadership, so it led again from an empty log.
     * Now its registration lists the logs it holds, and a segment it lacks is marked offline for it: it leaves the
     * ISR and the leadership goes to a member that holds the records. A segment it holds keeps it.
     */
    @Test
    void aNodeThatRegistersWithoutALogLeavesThatSegmentsIsrAndLeadership() {
        registerHolding(1);
        registerHolding(2);
        registerHolding(3);
        create("lost", false, 1, 2, 3);
        create("kept", false, 1, 2, 3);
        assertEquals(1, segment("lost", 0).getLeader());

        registerHolding(1, idOf("kept", 0)); // restarted holding only "kept"
        Segment lost = segment("lost", 0);
        assertEquals(List.of(1), lost.getOfflineReplicasList());
        assertEquals(List.of(2, 3), lost.getIsrList(), "a replica without its log leaves the ISR");
        assertEquals(2, lost.getLeader(), "and leads no more: a member that holds the records does");
        assertTrue(lost.getLeaderEpoch() > 0);
        Segment kept = segment("kept", 0);
        assertEquals(List.of(), kept.getOfflineReplicasList());
        assertEquals(List.of(1, 2, 3), kept.getIsrList(), "fsync mode: a restart holding its log keeps its places");
        assertEquals(1, kept.getLeader());

        // Once it has caught up, the leader adds it back: the mark goes.
        assertEquals(null, changeIsr("lost", 0, 2, lost.getLeaderEpoch(), lost.getIsrVersion(), 2, 3, 1).error());
        assertEquals(List.of(), segment("lost", 0).getOfflineReplicasList());
        assertEquals(List.of(2, 3, 1), segment("lost", 0).getIsrList());
    }

    /**
     * The last ISR member's directory fails: it stays in the ISR (nothing else holds what it held) but leads no
     * more, and no registration without the log gives it the lead back; once it registers holding the log again
     * (the directory came back) it leads again.
     */
    @Test
    void theLastIsrMemberWithAnOfflineCopyNeverLeadsUntilItHoldsTheLogAgain() {
        long inc1 = registerHolding(1);
        registerHolding(2);
        create("solo", true, 1, 2); // unclean election allowed: still no leader from an offline copy
        assertEquals(null, changeIsr("solo", 0, 1, 0, 0, 1).error());
        assertEquals(null, markOffline(1, inc1, idOf("solo", 0)).error());
        Segment s = segment("solo", 0);
        assertEquals(List.of(1), s.getIsrList(), "the last member stays in the ISR");
        assertEquals(List.of(1), s.getOfflineReplicasList());
        assertEquals(2, s.getLeader(), "unclean election may pick node 2, never the offline copy");

        long inc1b = registerHolding(1); // restarted, the directory still missing
        assertEquals(List.of(1), segment("solo", 0).getOfflineReplicasList());
        assertEquals(ErrorCode.FENCED_EPOCH, markOffline(1, inc1, idOf("solo", 0)).error(), "an old incarnation's report is refused");
        registerHolding(1, idOf("solo", 0)); // the directory is back
        assertEquals(List.of(), segment("solo", 0).getOfflineReplicasList(), "its copy is readable again");
        assertTrue(inc1b > inc1);
    }

    /** A reported offline copy: out of the ISR, its leadership moved, and the leader may not be moved back to it. */
    @Test
    void anOfflineCopyLeavesTheIsrAndCannotBeMadeLeader() {
        long inc1 = registerHolding(1);
        registerHolding(2);
        registerHolding(3);
        create("d", false, 1, 2, 3);
        assertTrue(state.offlineAlready(1, List.of()));
        assertFalse(state.offlineAlready(1, List.of(idOf("d", 0))));
        assertEquals(null, markOffline(1, inc1, idOf("d", 0)).error());
        assertTrue(state.offlineAlready(1, List.of(idOf("d", 0))));
        Segment d = segment("d", 0);
        assertEquals(List.of(2, 3), d.getIsrList());
        assertEquals(2, d.getLeader());
        assertEquals(1, d.getLeaderEpoch());
        // A fence of node 2 must not hand the lead to the offline copy.
        apply(Command.newBuilder().setFenceNode(FenceNodeCommand.newBuilder().setNodeId(2).setIncarnation(state.node(2).orElseThrow().getIncarnation())));
        assertEquals(3, segment("d", 0).getLeader());
        assertEquals(ErrorCode.INVALID_ARGUMENT, moveLeader("d", 0, segment("d", 0).getLeaderEpoch(), 1).error());
    }

    /** A move away from a silent leader (UnreachableLeaders) also takes it out of the ISR; an operator's move does not. */
    @Test
    void aMoveAwayFromASilentLeaderTakesItOutOfTheIsr() {
        register(1);
        register(2);
        register(3);
        create("m", false, 1, 2, 3);
        Segment s = segment("m", 0);
        assertEquals(null, moveLeader("m", 0, s.getLeaderEpoch(), 2).error());
        assertEquals(List.of(1, 2, 3), segment("m", 0).getIsrList(), "an operator's move keeps the ISR");
        Segment t = segment("m", 0);
        assertEquals(null, apply(Command.newBuilder().setMoveLeader(dev.segstore.protocol.meta.MoveLeaderCommand.newBuilder().setShard("m")
                .setShardId(t.getShardId()).setSequence(0).setLeaderEpoch(t.getLeaderEpoch()).setTo(3).setOldLeaderLeavesIsr(true))).error());
        Segment u = segment("m", 0);
        assertEquals(3, u.getLeader());
        assertEquals(List.of(1, 3), u.getIsrList(), "the silent leader left the ISR");
        assertEquals(t.getIsrVersion() + 1, u.getIsrVersion());
    }
}
