package dev.segstore.meta.state;

import dev.segstore.adapter.ErrorCode;
import dev.segstore.protocol.FeatureLevels;
import dev.segstore.protocol.meta.ChangeIsrCommand;
import dev.segstore.protocol.meta.Command;
import dev.segstore.protocol.meta.CommitOffsetsCommand;
import dev.segstore.protocol.meta.CreateShardCommand;
import dev.segstore.protocol.meta.DeleteShardCommand;
import dev.segstore.protocol.meta.Empty;
import dev.segstore.protocol.meta.ExpireSegmentsCommand;
import dev.segstore.protocol.meta.GroupOffset;
import dev.segstore.protocol.meta.MetaSnapshot;
import dev.segstore.protocol.meta.NodeAssignments;
import dev.segstore.protocol.meta.NodeState;
import dev.segstore.protocol.meta.RegisterNodeCommand;
import dev.segstore.protocol.meta.RollSegmentCommand;
import dev.segstore.protocol.meta.Segment;
import dev.segstore.protocol.meta.SegmentStatus;
import dev.segstore.protocol.meta.Shard;
import dev.segstore.protocol.meta.ShardRoute;
import dev.segstore.protocol.meta.ShardState;
import dev.segstore.protocol.meta.StorageNode;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.LongUnaryOperator;

import static dev.segstore.meta.state.SegmentTable.expirable;
import static dev.segstore.meta.state.SegmentTable.indexOf;
import static dev.segstore.meta.state.SegmentTable.isLive;
import static dev.segstore.meta.state.SegmentTable.leaveIsr;
import static dev.segstore.meta.state.SegmentTable.offline;
import static dev.segstore.meta.state.SegmentTable.without;

/**
 * The metadata of the cluster, changed only by {@link #apply}: a deterministic function of the state and the
 * command (the command carries its timestamp and every choice the controller made), so every replica of the
 * Raft group, and a replica rebuilt from a snapshot plus the log, holds the same state. Sorted maps keep
 * snapshots byte-identical across replicas.
 *
 * <p>Threads: {@code apply} runs on the Raft apply thread; reads come from RPC threads. All public methods are
 * synchronized; a snapshot copies the state under the lock and is written elsewhere. Parts of the state are kept by
 * package-private classes ({@link SegmentTable}, {@link NodeRegistry}, {@link FeatureRules}) with no locks of their
 * own: they are reached only from inside these methods, and none of their collections is handed to a caller.
 *
 * <p>Safety rules enforced here, whoever proposes: a segment's leader epoch only grows and every leader change
 * bumps it; an ISR change must name the current leader, epoch and ISR version (a stale proposal is
 * {@link ErrorCode#FENCED_EPOCH}; a retry of the change that made the current version, same leader, epoch and
 * ISR, one version behind, is answered OK with the current segment and changes nothing); only an ISR member (or, if the shard allows unclean election, any live
 * replica) becomes leader; a node shutting down (ControlledShutdown) joins no ISR, leads no new segment and is
 * handed no leadership while an ISR member that is not shutting down is alive; group offsets are last-writer-wins; time never goes back (a command's time is the
 * larger of its timestamp and the newest command time applied before it; see Command.monotonic_timestamp).
 */
public final class MetaState {
    public static final int VERSION = 1;
    /**
     * The highest feature level this build knows (meta.proto, SetFeatureLevelCommand; {@link FeatureLevels}). Level 1:
     * CloseSegmentCommand; level 2: every storage node's build follows close-ahead hand-overs. A new cluster takes it
     * with its first shard; an upgraded one once an operator raises it ({@code segstore-admin feature-level --set})
     * after every meta node and storage node runs this build.
     */
    public static final int MAX_FEATURE_LEVEL = FeatureLevels.MAX;
    /** The feature level from which this build's closes (rules {@link #CLOSE_RULES}) are taken. */
    public static final int CLOSE_AHEAD_LEVEL = FeatureLevels.STORAGE_NODES_CHECKED;
    /**
     * CloseSegmentCommand.rules of this build's proposals (meta.proto): placement's rules at feature level 2, where every
     * storage node follows hand-overs. Rules 2 (the same at level 1) are still applied as they were, from older leaders.
     */
    public static final int CLOSE_RULES = 3;

    private final TreeMap<String, Shard> shards = new TreeMap<>();
    /** Shards deleted but not yet finished (state DELETING): invisible, but their names are not free yet. */
    private final TreeMap<String, Shard> deleting = new TreeMap<>();
    /** Every shard's segments, and their health counts. */
    private final SegmentTable segments = new SegmentTable();
    /** The storage nodes, and what their lives do to the segments. */
    private final NodeRegistry nodes = new NodeRegistry(segments, shards::get);
    private final TreeMap<String, TreeMap<String, Long>> groupOffsets = new TreeMap<>(); // shard -> group -> offset
    private final RecentRequests recentRequests = new RecentRequests();
    private long nextShardId = 1;
    private long appliedCommands;
    /** The newest command time applied (of commands with monotonic_timestamp): the state's "now", which never goes back. */
    private long lastCommandTimeMs;
    /** The cluster's feature level and the rules of closes ahead. */
    private final FeatureRules features = new FeatureRules(shards::get, nodes::placeable, nodes::unlisted);

    /**
     * Why this build cannot apply {@code c} (a feature level or close rules it does not know: applying it, and what
     * follows, could differ from what the other meta nodes do), or null. The state machine stops rather than apply it.
     */
    public synchronized String beyondThisBuild(Command c) {
        return FeatureRules.beyondThisBuild(c, neverHadShard());
    }

    public synchronized CommandResult apply(Command c) {
        String beyond = beyondThisBuild(c);
        if (beyond != null) {
            throw new IllegalStateException(beyond);
        }
        appliedCommands++;
        if (c.getVersion() != VERSION) {
            return CommandResult.fail(ErrorCode.INTERNAL, "command version " + c.getVersion() + " is not supported");
        }
        // A leader whose clock is behind the last one's (a failover, a clock stepped back) must not register, create
        // or seal before what the state already shows, nor see a segment younger than it was. Derived from applied
        // commands only, and kept in snapshots: the same on every replica. A command of an older build (no flag)
        // is applied at its own time, as it was then, and does not count: a replica that restored a snapshot
        // taken after it must not have a different "now" from one that replayed it.
        long now = c.getTimestampMs();
        if (c.getMonotonicTimestamp()) {
            now = Math.max(now, lastCommandTimeMs);
            lastCommandTimeMs = now;
        }
        return switch (c.getKindCase()) {
            case REGISTER_NODE -> registerNode(c.getRegisterNode(), now);
            case FENCE_NODE -> nodes.fenceNode(c.getFenceNode());
            case CREATE_SHARD -> createShard(c.getCreateShard(), now);
            case DELETE_SHARD -> deleteShard(c.getDeleteShard(), now);
            case CHANGE_ISR -> changeIsr(c.getChangeIsr());
            case ROLL_SEGMENT -> rollSegment(c.getRollSegment(), now);
            case EXPIRE_SEGMENTS -> expireSegments(c.getExpireSegments(), now);
            case COMMIT_OFFSETS -> commitOffsets(c.getCommitOffsets());
            case FINISH_DELETE_SHARD -> finishDeleteShard(c.getFinishDeleteShard());
            case REASSIGN_REPLICA -> reassignReplica(c.getReassignReplica());
            case CONTROLLED_SHUTDOWN -> controlledShutdown(c.getControlledShutdown());
            case ALTER_SHARD -> alterShard(c.getAlterShard());
            case MOVE_LEADER -> moveLeader(c.getMoveLeader());
            case DECOMMISSION_NODE -> nodes.decommissionNode(c.getDecommissionNode());
            case MARK_REPLICAS_OFFLINE -> markReplicasOffline(c.getMarkReplicasOffline());
            case CLEAR_DEPOSED_LEADER -> clearDeposedLeader(c.getClearDeposedLeader());
            case CLOSE_SEGMENT -> closeSegment(c.getCloseSegment());
            case SET_FEATURE_LEVEL -> features.setFeatureLevel(c.getSetFeatureLevel());
            case KIND_NOT_SET -> CommandResult.fail(ErrorCode.INTERNAL, "empty command");
        };
    }

    // ---- commands ---------------------------------------------------------------------------------------------

    private CommandResult registerNode(RegisterNodeCommand c, long now) {
        String tooOld = features.olderThanTheCluster(c.getNodeId(), c.getMaxFeatureLevel());
        if (tooOld != null) {
            // Before anything else: such a node would take part in work its build cannot follow (close-ahead hand-overs).
            return CommandResult.fail(ErrorCode.INVALID_ARGUMENT, tooOld);
        }
        nodes.register(c, now); // the same process again (its answer was lost) changes nothing, and is answered the same
        return CommandResult.ok(assignments(c.getNodeId()).toBuilder().setHeldChecked(c.getHeldReported()).build());
    }

    /** MarkReplicasOfflineCommand in meta.proto ({@link NodeRegistry#markReplicasOffline}), answered with the node's assignments. */
    private CommandResult markReplicasOffline(dev.segstore.protocol.meta.MarkReplicasOfflineCommand c) {
        CommandResult refused = nodes.markReplicasOffline(c);
        return refused != null ? refused : CommandResult.ok(assignments(c.getNodeId()));
    }

    /** A controlled shutdown ({@link NodeRegistry#controlledShutdown}), answered with the node's assignments after the change. */
    private CommandResult controlledShutdown(dev.segstore.protocol.meta.ControlledShutdownCommand c) {
        CommandResult refused = nodes.controlledShutdown(c);
        return refused != null ? refused : CommandResult.ok(assignments(c.getNodeId()));
    }

    /**
     * Whether each of {@code ids} that is a live segment listing node {@code nodeId} as a replica marks it offline
     * already (the leader proposes MarkReplicasOffline only when one does not).
     */
    public synchronized boolean offlineAlready(int nodeId, List<dev.segstore.protocol.meta.SegmentId> ids) {
        return segments.offlineAlready(nodeId, ids);
    }

    private CommandResult createShard(CreateShardCommand c, long now) {
        Optional<dev.segstore.protocol.meta.AppliedRequest> retried = recentRequests.find(c.getRequestId(), c.getName(), false);
        if (retried.isPresent()) {
            // This create was applied and its answer lost: answer it again. The shard it made may have been
            // deleted since; then the answer is that shard alone, with no segments (a route of nothing).
            Shard current = shards.get(c.getName());
            return current != null && current.getShardId() == retried.get().getShardId() ? CommandResult.ok(route(c.getName()))
                    : CommandResult.ok(ShardRoute.newBuilder().setShard(Shard.newBuilder().setName(c.getName())
                            .setShardId(retried.get().getShardId()).setState(ShardState.DELETING)).build());
        }
        if (shards.containsKey(c.getName())) {
            return CommandResult.fail(ErrorCode.SHARD_EXISTS, "shard '" + c.getName() + "' already exists");
        }
        if (deleting.containsKey(c.getName())) {
            // Retriable: the name is free once every node that hosted the old shard has dropped it.
            return CommandResult.fail(ErrorCode.UNAVAILABLE, "shard '" + c.getName() + "' is being deleted; try again shortly");
        }
        Optional<String> bad = nodes.checkReplicas(c.getReplicasList(), c.getSettings().getReplicaCount());
        if (bad.isPresent()) {
            return CommandResult.fail(ErrorCode.NOT_ENOUGH_REPLICAS, "cannot create shard '" + c.getName() + "': " + bad.get());
        }
        if (neverHadShard()) {
            // A new cluster: no meta node of an older build ever applied its log.
            features.adoptNewClusterLevel(c.getNewClusterFeatureLevel(), c.getStorageNodesList());
        }
        Shard shard = Shard.newBuilder().setName(c.getName()).setShardId(nextShardId++).setSettings(c.getSettings())
                .setCreatedAtMs(now).setState(ShardState.ACTIVE).build();
        shards.put(c.getName(), shard);
        segments.create(c.getName(), openSegment(c.getName(), shard.getShardId(), 0, 0, c.getReplicasList()));
        recentRequests.record(c.getRequestId(), now, c.getName(), shard.getShardId(), false);
        return CommandResult.ok(route(c.getName()));
    }

    /** A new open segment, stamped with the metadata version of the command that creates it. */
    private Segment openSegment(String shard, long shardId, long sequence, long start, List<Integer> replicas) {
        return Segment.newBuilder().setShard(shard).setShardId(shardId).setSequence(sequence).setStartOffset(start).setEndOffset(-1)
                .setCreatedVersion(appliedCommands)
                .setStatus(SegmentStatus.OPEN).addAllReplicas(replicas).setLeader(replicas.get(0)).setLeaderEpoch(0)
                .addAllIsr(replicas).setIsrVersion(0).build();
    }

    /**
     * First phase of a delete: the shard goes DELETING. Its segments leave every assignment in this same command
     * (so a node drops its replicas, and refuses the id, as soon as it applies an assignment this new), its group
     * offsets go, and every read treats it as missing; the name stays taken until {@link #finishDeleteShard}. The
     * shard remembers the metadata version and the nodes that hosted it: the controller finishes the delete once
     * each of them has applied that version or is no longer alive. A delete of a DELETING name answers the same.
     */
    private CommandResult deleteShard(DeleteShardCommand c, long now) {
        Shard pending = deleting.get(c.getName());
        if (pending != null) {
            return CommandResult.ok(pending);
        }
        Optional<dev.segstore.protocol.meta.AppliedRequest> retried = recentRequests.find(c.getRequestId(), c.getName(), true);
        if (retried.isPresent()) {
            // This delete was applied and has finished since; its answer was lost. The shard it deleted is gone (a
            // shard now under the name is a newer one, which this request never meant): answer as the first time.
            return CommandResult.ok(Shard.newBuilder().setName(c.getName()).setShardId(retried.get().getShardId())
                    .setState(ShardState.DELETING).build());
        }
        Shard shard = shards.remove(c.getName());
        if (shard == null) {
            return CommandResult.fail(ErrorCode.SHARD_NOT_FOUND, "shard '" + c.getName() + "' does not exist");
        }
        recentRequests.record(c.getRequestId(), now, c.getName(), shard.getShardId(), true);
        if (!c.getTwoPhase()) {
            // A command written before deletes had two phases (replayed from an old log): applied as it was then.
            segments.remove(c.getName());
            groupOffsets.remove(c.getName());
            return CommandResult.ok(Empty.getDefaultInstance());
        }
        java.util.TreeSet<Integer> hostedOn = new java.util.TreeSet<>();
        List<Segment> removed = segments.remove(c.getName());
        for (Segment s : removed) {
            hostedOn.addAll(s.getReplicasList());
        }
        groupOffsets.remove(c.getName());
        Shard marked = shard.toBuilder().setState(ShardState.DELETING).setDeletedVersion(appliedCommands)
                .addAllHostedOn(hostedOn).build();
        deleting.put(c.getName(), marked);
        return CommandResult.ok(marked);
    }

    /** Second phase: the DELETING shard with this name and id leaves the state and its name is free; else a no-op. */
    private CommandResult finishDeleteShard(dev.segstore.protocol.meta.FinishDeleteShardCommand c) {
        Shard pending = deleting.get(c.getName());
        if (pending != null && pending.getShardId() == c.getShardId()) {
            deleting.remove(c.getName());
        }
        return CommandResult.ok(Empty.getDefaultInstance());
    }

    /**
     * Moves a replica off a node lost for good (the controller proposes it once the node has been fenced long
     * enough): only a replica that is not in the ISR, so the ISR still holds every acknowledged record, and only
     * to a live node that is not a replica yet. The leader epoch goes up, so the leader takes the new replica set
     * (a new epoch is how a leader learns its replicas) and the followers check their logs against it.
     */
    private CommandResult reassignReplica(dev.segstore.protocol.meta.ReassignReplicaCommand c) {
        List<Segment> list = segments.get(c.getShard());
        Shard shard = shards.get(c.getShard());
        if (list == null || shard == null || shard.getShardId() != c.getShardId()) {
            return CommandResult.fail(ErrorCode.SHARD_NOT_FOUND, "shard '" + c.getShard() + "' id " + c.getShardId() + " does not exist");
        }
        int i = indexOf(list, c.getSequence());
        if (i < 0) {
            return CommandResult.fail(ErrorCode.INVALID_ARGUMENT, "shard '" + c.getShard() + "' has no segment " + c.getSequence());
        }
        Segment s = list.get(i);
        String where = "segment " + c.getShard() + "/" + c.getSequence();
        if (!isLive(s)) {
            return CommandResult.fail(ErrorCode.INVALID_ARGUMENT, where + " is " + s.getStatus());
        }
        if (s.getClosingVersion() != 0) {
            // Its replicas are the next segment's too, which its leader may already lead: moved once the seal is recorded.
            return CommandResult.fail(ErrorCode.INVALID_ARGUMENT, where + " is closing: its replicas move after its seal");
        }
        int at = s.getReplicasList().indexOf(c.getOldNode());
        if (at < 0 || s.getIsrList().contains(c.getOldNode()) || nodes.alive(c.getOldNode())) {
            return CommandResult.fail(ErrorCode.INVALID_ARGUMENT, where + ": node " + c.getOldNode()
                    + " must be a replica that is neither alive nor in the ISR " + s.getIsrList());
        }
        if (!nodes.placeable(c.getNewNode()) || s.getReplicasList().contains(c.getNewNode())) {
            return CommandResult.fail(ErrorCode.INVALID_ARGUMENT, where + ": node " + c.getNewNode()
                    + " must be alive, not shutting down, and not a replica of " + s.getReplicasList() + " yet");
        }
        List<Integer> replicas = new ArrayList<>(s.getReplicasList());
        replicas.set(at, c.getNewNode());
        Segment moved = s.toBuilder().clearReplicas().addAllReplicas(replicas).setLeaderEpoch(s.getLeaderEpoch() + 1)
                .clearOfflineReplicas().addAllOfflineReplicas(without(s.getOfflineReplicasList(), c.getOldNode())).build();
        segments.replace(c.getShard(), i, moved);
        return CommandResult.ok(dev.segstore.protocol.meta.SegmentResponse.newBuilder().setSegment(moved).build());
    }

    /**
     * The replicas the controller may move off {@code nodeId} now: those not in their segment's ISR, of open or
     * sealed segments. (One in the ISR is the last holder of its records: the segment waits for the node.)
     */
    public synchronized List<Segment> reassignable(int nodeId) {
        return segments.reassignable(nodeId);
    }

    /** The segment a proposal names, checked against the proposer's view; null result means it may go ahead. */
    private CommandResult checkProposal(String shard, long shardId, long sequence, int leader, int leaderEpoch) {
        List<Segment> list = segments.get(shard);
        if (list == null) {
            return CommandResult.fail(ErrorCode.SHARD_NOT_FOUND, "shard '" + shard + "' does not exist");
        }
        long current = shards.get(shard).getShardId();
        if (shardId != 0 && shardId != current) {
            // Proposed for a shard deleted since (the name now belongs to another one): it must not touch this one.
            return CommandResult.fail(ErrorCode.SHARD_NOT_FOUND, "shard '" + shard + "' id " + shardId
                    + " does not exist (the name is now shard id " + current + ")");
        }
        int i = indexOf(list, sequence);
        if (i < 0) {
            return CommandResult.fail(ErrorCode.INVALID_ARGUMENT, "shard '" + shard + "' has no segment " + sequence);
        }
        Segment s = list.get(i);
        if (s.getLeader() != leader || s.getLeaderEpoch() != leaderEpoch) {
            return CommandResult.fail(ErrorCode.FENCED_EPOCH, "segment " + shard + "/" + sequence + " is led by node "
                    + s.getLeader() + " in epoch " + s.getLeaderEpoch() + ", not by node " + leader + " in epoch " + leaderEpoch);
        }
        return null;
    }

    private CommandResult changeIsr(ChangeIsrCommand c) {
        CommandResult stale = checkProposal(c.getShard(), c.getShardId(), c.getSequence(), c.getLeader(), c.getLeaderEpoch());
        if (stale != null) {
            return stale;
        }
        List<Segment> list = segments.get(c.getShard());
        Segment s = list.get(indexOf(list, c.getSequence()));
        if (s.getIsrVersion() == c.getIsrVersion() + 1 && s.getIsrList().equals(c.getNewIsrList())) {
            // Same leader and epoch (checked above), one version on, and already the ISR it proposes: a retry of
            // a proposal whose answer the leader lost. Tell it the change is committed; change nothing.
            return CommandResult.ok(dev.segstore.protocol.meta.SegmentResponse.newBuilder().setSegment(s).build());
        }
        if (s.getIsrVersion() != c.getIsrVersion()) {
            return CommandResult.fail(ErrorCode.FENCED_EPOCH, "ISR of " + c.getShard() + "/" + c.getSequence()
                    + " is at version " + s.getIsrVersion() + ", the proposal was based on " + c.getIsrVersion());
        }
        List<Integer> isr = c.getNewIsrList();
        if (!isr.contains(c.getLeader()) || new HashSet<>(isr).size() != isr.size() || !s.getReplicasList().containsAll(isr)) {
            return CommandResult.fail(ErrorCode.INVALID_ARGUMENT, "ISR " + isr + " must be distinct replicas of "
                    + s.getReplicasList() + " including the leader " + c.getLeader());
        }
        if (s.getClosingVersion() != 0 && !s.getIsrList().containsAll(isr)) {
            // The next segment takes this ISR at the seal and may already hold acknowledged records the joining
            // replica never fetched: it joins the next segment's ISR there, once the seal is recorded.
            return CommandResult.fail(ErrorCode.INVALID_ARGUMENT, "segment " + c.getShard() + "/" + c.getSequence()
                    + " is closing: its ISR " + s.getIsrList() + " only shrinks until its seal is recorded");
        }
        for (int n : isr) {
            if (!s.getIsrList().contains(n) && !nodes.active(n)) {
                // Refused for good at this version (the leader stops counting it): a node shutting down must not become
                // one more member that acknowledgements wait for just before it stops.
                return CommandResult.fail(ErrorCode.INVALID_ARGUMENT, "node " + n + " is not alive, or is shutting down, and cannot join the ISR");
            }
        }
        // A member joining again has fetched up to the high watermark from the leader: a copy it had lost is whole again.
        List<Integer> stillOffline = s.getOfflineReplicasList().stream().filter(n -> s.getIsrList().contains(n) || !isr.contains(n)).toList();
        Segment updated = s.toBuilder().clearIsr().addAllIsr(isr).setIsrVersion(s.getIsrVersion() + 1)
                .clearOfflineReplicas().addAllOfflineReplicas(stillOffline).build();
        segments.replace(c.getShard(), indexOf(list, c.getSequence()), updated);
        return CommandResult.ok(dev.segstore.protocol.meta.SegmentResponse.newBuilder().setSegment(updated).build());
    }

    /**
     * Why storage node {@code id} may not register with a build that knows feature level {@code registered} at most
     * (RegisterNodeCommand.max_feature_level), or null: from level 2 on, a node must know the cluster's level. The meta
     * leader asks before it proposes (a refusal then takes no log entry and is no sign of the node's life).
     */
    public synchronized String olderThanTheCluster(int id, int registered) {
        return features.olderThanTheCluster(id, registered);
    }

    /**
     * Why the raise {@code c} is refused for the storage nodes (from level 2, every alive one must be named), or null.
     * The meta leader asks before it proposes: a refused raise then takes no log entry (which a meta node of an older
     * build would stop at).
     */
    public synchronized String raiseRefusal(dev.segstore.protocol.meta.SetFeatureLevelCommand c) {
        return features.raiseRefusal(c);
    }

    /** The alive storage nodes whose incarnation {@code listed} does not name. */
    public synchronized List<StorageNode> unlisted(List<dev.segstore.protocol.meta.NodeIncarnation> listed) {
        return nodes.unlisted(listed);
    }

    /** Whether no shard was ever created here (a new cluster: CreateShardCommand.new_cluster_feature_level). */
    public synchronized boolean neverHadShard() {
        return nextShardId == 1 && shards.isEmpty() && deleting.isEmpty();
    }

    /** The cluster's feature level (SetFeatureLevelCommand). */
    public synchronized int featureLevel() {
        return features.get();
    }

    /**
     * Why the close {@code c} (this build's rules) would be refused if proposed now, or null: the proposing leader
     * answers such a refusal without a command. Below the level its rules need, always refused. Otherwise null where the
     * command answers otherwise (a stale shard id, leader or epoch, a segment that is not the open one or is closing
     * already); the state machine checks again as it applies.
     */
    public synchronized String closeRefusal(dev.segstore.protocol.meta.CloseSegmentCommand c) {
        Shard shard = shards.get(c.getShard());
        List<Segment> list = segments.get(c.getShard());
        String belowLevel = features.belowLevel(c.getRules());
        if (belowLevel != null) {
            // Never proposed below the level, whatever the command would answer, not even for a segment closing
            // already: a meta node of an older build would apply it by other rules, or stop (rules it does not know).
            return belowLevel;
        }
        if (shard == null || shard.getShardId() != c.getShardId() || list == null || list.isEmpty()) {
            return null;
        }
        Segment open = list.get(list.size() - 1);
        if (open.getSequence() != c.getSequence() || open.getStatus() != SegmentStatus.OPEN || open.getClosingVersion() != 0
                || open.getLeader() != c.getLeader() || open.getLeaderEpoch() != c.getLeaderEpoch()) {
            return null;
        }
        String refusal = features.closeRefusal(open, c.getRules());
        return refusal == null ? null : "segment " + c.getShard() + "/" + c.getSequence() + " does not close ahead: " + refusal;
    }

    /**
     * Close ahead (meta.proto, {@code Segment.closing_version}): the open segment's leader asks to end it at a point of
     * its choosing and lead the next segment from there before the seal is recorded. Answers the segment.
     */
    private CommandResult closeSegment(dev.segstore.protocol.meta.CloseSegmentCommand c) {
        CommandResult stale = checkProposal(c.getShard(), c.getShardId(), c.getSequence(), c.getLeader(), c.getLeaderEpoch());
        if (stale != null) {
            return stale;
        }
        List<Segment> list = segments.get(c.getShard());
        int i = indexOf(list, c.getSequence());
        Segment s = list.get(i);
        if (s.getStatus() != SegmentStatus.OPEN || i != list.size() - 1) {
            return CommandResult.fail(ErrorCode.INVALID_ARGUMENT, "segment " + c.getShard() + "/" + c.getSequence() + " is not the open segment");
        }
        if (s.getClosingVersion() == 0) {
            String refusal = features.closeRefusal(s, c.getRules());
            if (refusal != null) {
                return CommandResult.fail(ErrorCode.INVALID_ARGUMENT, "segment " + c.getShard() + "/" + c.getSequence()
                        + " does not close ahead: " + refusal);
            }
            segments.replace(c.getShard(), i, s.toBuilder().setClosingVersion(appliedCommands).build());
        }
        return CommandResult.ok(dev.segstore.protocol.meta.SegmentResponse.newBuilder().setSegment(list.get(i)).build());
    }

    private CommandResult rollSegment(RollSegmentCommand c, long now) {
        // The leader that asked is checked when the command names it (commands of older builds do not).
        int leader = c.hasLeader() ? c.getLeader() : segments.leaderOf(c.getShard(), c.getSequence());
        CommandResult stale = checkProposal(c.getShard(), c.getShardId(), c.getSequence(), leader, c.getLeaderEpoch());
        if (stale != null) {
            return stale;
        }
        List<Segment> list = segments.get(c.getShard());
        Segment s = list.get(indexOf(list, c.getSequence()));
        if (s.getStatus() != SegmentStatus.OPEN || c.getSequence() != list.get(list.size() - 1).getSequence()) {
            return CommandResult.fail(ErrorCode.INVALID_ARGUMENT, "segment " + c.getShard() + "/" + c.getSequence() + " is not the open segment");
        }
        if (c.getEndOffset() < s.getStartOffset()) {
            return CommandResult.fail(ErrorCode.INVALID_ARGUMENT, "end offset " + c.getEndOffset() + " is below the segment's start " + s.getStartOffset());
        }
        Shard shard = shards.get(c.getShard());
        if (s.getClosingVersion() != 0) {
            // Closing: the next segment is the one its leader may already lead from the seal point, on the same
            // replicas, in the same epoch, with the same ISR (and lease wait): nothing placed anew.
            segments.replace(c.getShard(), list.size() - 1, s.toBuilder().setEndOffset(c.getEndOffset()).setStatus(SegmentStatus.SEALED).setSealedAtMs(now)
                    .setClosingVersion(0).build()); // closed: its ISR grows, and it is reassigned, as any sealed segment's
            segments.add(c.getShard(), s.toBuilder().setSequence(c.getSequence() + 1).setStartOffset(c.getEndOffset()).setEndOffset(-1)
                    .setCreatedVersion(appliedCommands).setClosingVersion(0).build());
            return CommandResult.ok(route(c.getShard()));
        }
        Optional<String> bad = nodes.checkRollReplicas(c.getNextReplicasList(), shard.getSettings().getReplicaCount(),
                Math.max(1, shard.getSettings().getMinInSyncReplicas()));
        if (bad.isPresent()) {
            return CommandResult.fail(ErrorCode.NOT_ENOUGH_REPLICAS, "cannot open the next segment of '" + c.getShard() + "': " + bad.get());
        }
        segments.replace(c.getShard(), list.size() - 1, s.toBuilder().setEndOffset(c.getEndOffset()).setStatus(SegmentStatus.SEALED).setSealedAtMs(now).build());
        // A replica on a fenced (or shutting-down) node starts outside the ISR; it joins once it is back and has caught up.
        List<Integer> isr = c.getNextReplicasList().stream().filter(nodes::active).toList();
        segments.add(c.getShard(), openSegment(c.getShard(), shard.getShardId(), c.getSequence() + 1, c.getEndOffset(), c.getNextReplicasList())
                .toBuilder().clearIsr().addAllIsr(isr).build());
        return CommandResult.ok(route(c.getShard()));
    }

    private CommandResult expireSegments(ExpireSegmentsCommand c, long now) {
        Shard shard = shards.get(c.getShard());
        if (shard == null || shard.getShardId() != c.getShardId()) {
            return CommandResult.fail(ErrorCode.SHARD_NOT_FOUND, "shard '" + c.getShard() + "' (id " + c.getShardId() + ") does not exist");
        }
        List<Segment> list = segments.get(c.getShard());
        int drop = expirable(shard, list, sealedAt -> now);
        if (c.getBeforeSequence() > list.get(0).getSequence() + drop) {
            return CommandResult.fail(ErrorCode.INVALID_ARGUMENT, "shard '" + c.getShard() + "': only segments below "
                    + (list.get(0).getSequence() + drop) + " are past their retention, not all below " + c.getBeforeSequence());
        }
        int n = (int) Math.max(0, c.getBeforeSequence() - list.get(0).getSequence());
        segments.dropOldest(c.getShard(), n);
        return CommandResult.ok(route(c.getShard()));
    }

    /** The expiry to propose at {@code now}: one command per shard that has segments past retention. */
    public synchronized List<ExpireSegmentsCommand> expired(long now) {
        return expired(sealedAt -> now);
    }

    /**
     * The expiry to propose, each sealed segment judged at the time {@code nowFor} gives for its seal time (the
     * controller vouches for less of a segment's age than its wall clock may claim: see Controller).
     */
    public synchronized List<ExpireSegmentsCommand> expired(LongUnaryOperator nowFor) {
        List<ExpireSegmentsCommand> out = new ArrayList<>();
        for (Shard shard : shards.values()) {
            List<Segment> list = segments.get(shard.getName());
            int n = expirable(shard, list, nowFor);
            if (n > 0) {
                out.add(ExpireSegmentsCommand.newBuilder().setShard(shard.getName()).setShardId(shard.getShardId())
                        .setBeforeSequence(list.get(0).getSequence() + n).build());
            }
        }
        return out;
    }

    private CommandResult commitOffsets(CommitOffsetsCommand c) {
        for (GroupOffset o : c.getOffsetsList()) {
            Shard shard = shards.get(o.getShard());
            if (shard != null && (o.getShardId() == 0 || o.getShardId() == shard.getShardId())) {
                groupOffsets.computeIfAbsent(o.getShard(), k -> new TreeMap<>()).put(o.getGroup(), o.getOffset());
            }
        }
        return CommandResult.ok(Empty.getDefaultInstance());
    }

    private CommandResult alterShard(dev.segstore.protocol.meta.AlterShardCommand c) {
        Shard shard = shards.get(c.getName());
        if (shard == null || shard.getShardId() != c.getShardId()) {
            return CommandResult.fail(ErrorCode.SHARD_NOT_FOUND, "shard '" + c.getName() + "' (id " + c.getShardId() + ") does not exist");
        }
        dev.segstore.protocol.meta.ShardSettings.Builder settings = shard.getSettings().toBuilder();
        if (!c.getKeepRetention()) {
            if (c.getRetentionMs() != -1 && c.getRetentionMs() <= 0) {
                return CommandResult.fail(ErrorCode.INVALID_ARGUMENT, "retention_ms must be -1 (keep) or > 0, got " + c.getRetentionMs());
            }
            settings.setRetentionMs(c.getRetentionMs());
        }
        if (c.getSetPlacement()) {
            List<Integer> placement = c.getPlacementList();
            if (!placement.isEmpty() && (placement.size() != settings.getReplicaCount() || new HashSet<>(placement).size() != placement.size()
                    || !placement.stream().allMatch(nodes::contains))) {
                return CommandResult.fail(ErrorCode.INVALID_ARGUMENT, "placement " + placement + " must name " + settings.getReplicaCount()
                        + " distinct registered storage nodes (the shard's replica count), or none");
            }
            settings.clearPlacement().addAllPlacement(placement);
        }
        Shard altered = shard.toBuilder().setSettings(settings).build();
        shards.put(c.getName(), altered);
        return CommandResult.ok(altered);
    }

    private CommandResult moveLeader(dev.segstore.protocol.meta.MoveLeaderCommand c) {
        Shard shard = shards.get(c.getShard());
        List<Segment> list = segments.get(c.getShard());
        if (shard == null || shard.getShardId() != c.getShardId() || list == null || list.isEmpty()) {
            return CommandResult.fail(ErrorCode.SHARD_NOT_FOUND, "shard '" + c.getShard() + "' (id " + c.getShardId() + ") does not exist");
        }
        int i = list.size() - 1;
        Segment open = list.get(i);
        if (open.getStatus() != SegmentStatus.OPEN || open.getSequence() != c.getSequence() || open.getLeaderEpoch() != c.getLeaderEpoch()) {
            return CommandResult.fail(ErrorCode.FENCED_EPOCH, "segment " + c.getSequence() + " of '" + c.getShard() + "' in leader epoch "
                    + c.getLeaderEpoch() + " is no longer the open one in that epoch (now segment " + open.getSequence() + ", epoch "
                    + open.getLeaderEpoch() + "); look again");
        }
        if (open.getLeader() == c.getTo()) {
            return CommandResult.ok(route(c.getShard())); // already there
        }
        if (!open.getIsrList().contains(c.getTo()) || !nodes.placeable(c.getTo()) || offline(open, c.getTo())) {
            return CommandResult.fail(ErrorCode.INVALID_ARGUMENT, "storage node " + c.getTo() + " cannot lead segment " + open.getSequence()
                    + " of '" + c.getShard() + "': it must be in the ISR " + open.getIsrList() + " and alive, not shutting down or decommissioned, with its copy online");
        }
        // The old leader may be alive and serve reads from its lease until it hears of this: new leaders wait it out.
        Segment.Builder moved = open.toBuilder().setLeader(c.getTo()).setLeaderEpoch(open.getLeaderEpoch() + 1)
                .setDeposedLeaderMayServe(open.getDeposedLeaderMayServe() || open.getLeader() >= 0);
        if (c.getOldLeaderLeavesIsr() && open.getLeader() >= 0 && open.getIsrList().contains(open.getLeader())) {
            leaveIsr(moved, open, open.getLeader()); // silent to every other member: acknowledgements must not wait for it
        }
        segments.replace(c.getShard(), i, moved.build());
        return CommandResult.ok(route(c.getShard()));
    }

    /** ClearDeposedLeaderCommand in meta.proto: no earlier leader of these open segments can still serve from its lease. */
    private CommandResult clearDeposedLeader(dev.segstore.protocol.meta.ClearDeposedLeaderCommand c) {
        for (dev.segstore.protocol.meta.DeposedSegment d : c.getSegmentsList()) {
            List<Segment> list = segments.get(d.getShard());
            Shard shard = shards.get(d.getShard());
            if (shard == null || shard.getShardId() != d.getShardId() || list == null || list.isEmpty()) {
                continue; // gone: nothing to clear
            }
            int i = list.size() - 1;
            Segment open = list.get(i);
            if (open.getStatus() == SegmentStatus.OPEN && open.getSequence() == d.getSequence() && open.getLeaderEpoch() == d.getLeaderEpoch()
                    && open.getDeposedLeaderMayServe()) {
                segments.replace(d.getShard(), i, open.toBuilder().setDeposedLeaderMayServe(false).build());
            } // else a later change: the controller looks again
        }
        return CommandResult.ok(Empty.getDefaultInstance());
    }

    /** Open segments whose new leaders wait out a deposed leader's lease ({@code deposed_leader_may_serve}). */
    public synchronized List<Segment> deposedOpenSegments() {
        return segments.deposedOpenSegments();
    }

    // ---- reads ------------------------------------------------------------------------------------------------

    /** The committed offsets of {@code group} (every group if empty), by shard, then group. */
    public synchronized List<GroupOffset> groupOffsets(String group) {
        List<GroupOffset> out = new ArrayList<>();
        groupOffsets.forEach((shard, m) -> m.forEach((g, offset) -> {
            if (group.isEmpty() || group.equals(g)) {
                out.add(GroupOffset.newBuilder().setShard(shard).setGroup(g).setOffset(offset).build());
            }
        }));
        return out;
    }

    public synchronized Optional<Shard> shard(String name) {
        return Optional.ofNullable(shards.get(name));
    }

    /** Shards deleted whose delete is not finished yet (state DELETING), for the controller. */
    public synchronized List<Shard> deletingShards() {
        return List.copyOf(deleting.values());
    }

    public synchronized ShardRoute route(String name) {
        Shard shard = shards.get(name);
        if (shard == null) {
            return null;
        }
        return ShardRoute.newBuilder().setShard(shard).addAllSegments(segments.get(name)).build();
    }

    public synchronized List<Shard> listShards(String prefix) {
        return List.copyOf(shards.subMap(prefix, true, prefix + Character.MAX_VALUE, false).values());
    }

    public synchronized Optional<Long> groupOffset(String group, String shard) {
        Map<String, Long> m = groupOffsets.get(shard);
        return Optional.ofNullable(m == null ? null : m.get(group));
    }

    public synchronized List<StorageNode> nodes() {
        return List.copyOf(nodes.all());
    }

    public synchronized Optional<StorageNode> node(int id) {
        return Optional.ofNullable(nodes.get(id));
    }

    public synchronized int shardCount() {
        return shards.size();
    }

    public synchronized int segmentCount() {
        return segments.segmentCount();
    }

    /**
     * Counts for monitoring, taken at once under the lock.
     *
     * @param underReplicated segments whose ISR is smaller than their replica set
     * @param segments        open and sealed segments
     * @param leaderless      segments with no leader (waiting for an ISR member to come back)
     */
    public record Health(int shards, int segments, int underReplicated, int leaderless, int aliveNodes, int fencedNodes) {
    }

    public synchronized Health health() {
        return health(segments.counts());
    }

    /** {@link #health()} counted again from every segment: what the kept counts must always equal (tests). */
    public synchronized Health healthRecounted() {
        return health(segments.recounted());
    }

    private Health health(SegmentTable.SegmentCounts counts) {
        int count = counts.live();
        int under = counts.underReplicated();
        int leaderless = counts.leaderless();
        int alive = 0;
        int fenced = 0;
        for (StorageNode n : nodes.all()) {
            if (n.getState() == NodeState.ALIVE) {
                alive++;
            } else if (n.getState() == NodeState.FENCED) {
                fenced++;
            }
        }
        return new Health(shards.size(), count, under, leaderless, alive, fenced);
    }

    /**
     * The metadata version: how many commands this state has applied (refused ones too: every replica applies
     * them). The same on every replica at the same log position, kept in snapshots, and it only grows.
     */
    public synchronized long appliedCommands() {
        return appliedCommands;
    }

    /**
     * Whether a create or delete was applied under this request id (and is still remembered): the leader answers
     * its retry from the state machine's record without placing replicas anew (placement could fail by now).
     */
    public synchronized boolean appliedRequest(com.google.protobuf.ByteString requestId) {
        return recentRequests.contains(requestId);
    }

    /** The newest command time applied (every command a leader proposes now has its time at least this). */
    public synchronized long lastCommandTimeMs() {
        return lastCommandTimeMs;
    }

    /**
     * The newest time the state shows: the newest command time applied, or a time a command of an older build
     * left in a node, shard or segment if that is newer (after an upgrade, before the first newer command).
     * For the controller, which does not need it to be the same on every replica; O(segments).
     */
    public synchronized long newestTimeMs() {
        long t = lastCommandTimeMs;
        for (StorageNode n : nodes.all()) {
            t = Math.max(t, n.getRegisteredAtMs());
        }
        for (Shard sh : shards.values()) {
            t = Math.max(t, sh.getCreatedAtMs());
        }
        return segments.newestSealedAtMs(t);
    }

    /**
     * Stamps {@code command} for a leader whose wall clock reads {@code wallMs} to propose: this version, and its
     * time, never below the newest command time applied (applying would take that anyway; so the log says what
     * the state does), marked as such (Command.monotonic_timestamp).
     */
    public synchronized Command.Builder stamped(Command.Builder command, long wallMs) {
        return command.setVersion(VERSION).setTimestampMs(Math.max(wallMs, lastCommandTimeMs)).setMonotonicTimestamp(true);
    }

    /** Every segment the node is a replica of, with the node's current record. */
    public synchronized NodeAssignments assignments(int nodeId) {
        NodeAssignments.Builder b = NodeAssignments.newBuilder().setMetadataVersion(appliedCommands).setFeatureLevel(features.get());
        StorageNode n = nodes.get(nodeId);
        if (n != null) {
            b.setNode(n);
        }
        b.addAllNodes(nodes.all());
        for (Shard d : deleting.values()) {
            if (d.getHostedOnList().contains(nodeId)) {
                b.addDeletedShardIds(d.getShardId());
            }
        }
        for (Map.Entry<String, List<Segment>> e : segments.replicasOn(nodeId).entrySet()) {
            b.addAllSegments(e.getValue());
            b.addShards(shards.get(e.getKey()));
        }
        return b.build();
    }

    /** Open segments led by each live node that is not shutting down, and replicas held by each, for placement. */
    public synchronized Map<Integer, int[]> load() {
        return nodes.load();
    }

    /** Replicas of open and sealed segments held by each node that holds any (for the controller's placement). */
    public synchronized Map<Integer, Integer> replicaCounts() {
        return segments.replicaCounts();
    }

    /** All segments led by a node, for failure handling by the controller. */
    public synchronized Set<String> segmentsLedBy(int nodeId) {
        return segments.segmentsLedBy(nodeId);
    }

    // ---- snapshots -------------------------------------------------------------------------------------------

    public synchronized MetaSnapshot snapshot() {
        MetaSnapshot.Builder b = MetaSnapshot.newBuilder().setVersion(VERSION).setNextShardId(nextShardId).setAppliedCommands(appliedCommands)
                .setLastCommandTimeMs(lastCommandTimeMs).setFeatureLevel(features.get())
                .addAllNodes(nodes.all()).addAllShards(shards.values()).addAllShards(deleting.values());
        b.addAllSegments(segments.all());
        b.addAllAppliedRequests(recentRequests.snapshot());
        groupOffsets.forEach((shard, m) -> m.forEach((group, offset) ->
                b.addGroupOffsets(GroupOffset.newBuilder().setShard(shard).setGroup(group).setOffset(offset))));
        return b.build();
    }

    public synchronized void restore(MetaSnapshot s) {
        if (s.getVersion() != VERSION) {
            throw new IllegalStateException("snapshot version " + s.getVersion() + " is not supported");
        }
        if (s.getFeatureLevel() > MAX_FEATURE_LEVEL) {
            throw new IllegalStateException("snapshot at feature level " + s.getFeatureLevel() + ": this meta node's build knows "
                    + MAX_FEATURE_LEVEL + " at most and must be upgraded");
        }
        // Nothing below refuses or throws (the parts' restores take what they are given): a refused snapshot, above,
        // leaves the state as it was, and an accepted one replaces all of it.
        shards.clear();
        deleting.clear();
        groupOffsets.clear();
        nodes.restore(s.getNodesList());
        s.getShardsList().forEach(sh -> (sh.getState() == ShardState.DELETING ? deleting : shards).put(sh.getName(), sh));
        segments.restore(s.getSegmentsList());
        s.getGroupOffsetsList().forEach(o -> groupOffsets.computeIfAbsent(o.getShard(), k -> new TreeMap<>()).put(o.getGroup(), o.getOffset()));
        recentRequests.restore(s.getAppliedRequestsList());
        nextShardId = s.getNextShardId();
        appliedCommands = s.getAppliedCommands();
        lastCommandTimeMs = s.getLastCommandTimeMs();
        features.restore(s.getFeatureLevel());
    }
}
