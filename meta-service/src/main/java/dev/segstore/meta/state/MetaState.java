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
import dev.segstore.protocol.meta.FenceNodeCommand;
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

/**
 * The metadata of the cluster, changed only by {@link #apply}: a deterministic function of the state and the
 * command (the command carries its timestamp and every choice the controller made), so every replica of the
 * Raft group, and a replica rebuilt from a snapshot plus the log, holds the same state. Sorted maps keep
 * snapshots byte-identical across replicas.
 *
 * <p>Threads: {@code apply} runs on the Raft apply thread; reads come from RPC threads. All public methods are
 * synchronized; a snapshot copies the state under the lock and is written elsewhere.
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
    /** The first CloseSegmentCommand.rules with the feature level and placement's rules (2: at level 1). */
    private static final int PLACEMENT_RULES = 2;

    private final TreeMap<Integer, StorageNode> nodes = new TreeMap<>();
    private final TreeMap<String, Shard> shards = new TreeMap<>();
    /** Shards deleted but not yet finished (state DELETING): invisible, but their names are not free yet. */
    private final TreeMap<String, Shard> deleting = new TreeMap<>();
    private final TreeMap<String, List<Segment>> segments = new TreeMap<>();
    private final TreeMap<String, TreeMap<String, Long>> groupOffsets = new TreeMap<>(); // shard -> group -> offset
    private final RecentRequests recentRequests = new RecentRequests();
    private long nextShardId = 1;
    private long appliedCommands;
    /** The newest command time applied (of commands with monotonic_timestamp): the state's "now", which never goes back. */
    private long lastCommandTimeMs;
    /** The cluster's feature level: commands beyond it are refused (an older meta node may not know them). */
    private int featureLevel;
    /**
     * The health counts of the segments, kept up to date at every change ({@link #replace}, {@link #add},
     * {@link #uncount}), so a metrics scrape reads them in O(1) instead of scanning every segment under the
     * monitor the state machine applies commands under.
     */
    private SegmentCounts segmentCounts = new SegmentCounts(0, 0, 0);

    /** Open and sealed segments; those with an ISR short of their replica set; those without a leader. */
    private record SegmentCounts(int live, int underReplicated, int leaderless) {
        static SegmentCounts of(Segment s) {
            if (s.getStatus() != SegmentStatus.OPEN && s.getStatus() != SegmentStatus.SEALED) {
                return new SegmentCounts(0, 0, 0);
            }
            return new SegmentCounts(1, s.getIsrCount() < s.getReplicasCount() ? 1 : 0, s.getLeader() < 0 ? 1 : 0);
        }

        static SegmentCounts of(java.util.Collection<List<Segment>> lists) {
            SegmentCounts c = new SegmentCounts(0, 0, 0);
            for (List<Segment> l : lists) {
                for (Segment s : l) {
                    c = c.plus(of(s), 1);
                }
            }
            return c;
        }

        SegmentCounts plus(SegmentCounts o, int sign) {
            return new SegmentCounts(live + sign * o.live, underReplicated + sign * o.underReplicated, leaderless + sign * o.leaderless);
        }
    }

    private void replace(List<Segment> list, int i, Segment s) {
        Segment old = list.set(i, s);
        segmentCounts = segmentCounts.plus(SegmentCounts.of(old), -1).plus(SegmentCounts.of(s), 1);
    }

    private void add(List<Segment> list, Segment s) {
        list.add(s);
        segmentCounts = segmentCounts.plus(SegmentCounts.of(s), 1);
    }

    private void uncount(List<Segment> removed) {
        if (removed != null) {
            for (Segment s : removed) {
                segmentCounts = segmentCounts.plus(SegmentCounts.of(s), -1);
            }
        }
    }

    /**
     * Why this build cannot apply {@code c} (a feature level or close rules it does not know: applying it, and what
     * follows, could differ from what the other meta nodes do), or null. The state machine stops rather than apply it.
     */
    public synchronized String beyondThisBuild(Command c) {
        int level = c.hasSetFeatureLevel() ? c.getSetFeatureLevel().getLevel()
                : c.hasCreateShard() && neverHadShard() ? c.getCreateShard().getNewClusterFeatureLevel() : 0;
        if (level > MAX_FEATURE_LEVEL) {
            return "the cluster's feature level is to be " + level + ", and this meta node's build knows " + MAX_FEATURE_LEVEL
                    + " at most: it must be upgraded";
        }
        if (c.hasCloseSegment() && c.getCloseSegment().getRules() > CLOSE_RULES) {
            return "a close by rules " + c.getCloseSegment().getRules() + ", and this meta node's build knows " + CLOSE_RULES
                    + " at most: it must be upgraded";
        }
        return null;
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
            case FENCE_NODE -> fenceNode(c.getFenceNode());
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
            case DECOMMISSION_NODE -> decommissionNode(c.getDecommissionNode());
            case MARK_REPLICAS_OFFLINE -> markReplicasOffline(c.getMarkReplicasOffline());
            case CLEAR_DEPOSED_LEADER -> clearDeposedLeader(c.getClearDeposedLeader());
            case CLOSE_SEGMENT -> closeSegment(c.getCloseSegment());
            case SET_FEATURE_LEVEL -> setFeatureLevel(c.getSetFeatureLevel());
            case KIND_NOT_SET -> CommandResult.fail(ErrorCode.INTERNAL, "empty command");
        };
    }

    // ---- commands ---------------------------------------------------------------------------------------------

    private CommandResult registerNode(RegisterNodeCommand c, long now) {
        String tooOld = olderThanTheCluster(c.getNodeId(), c.getMaxFeatureLevel());
        if (tooOld != null) {
            // Before anything else: such a node would take part in work its build cannot follow (close-ahead hand-overs).
            return CommandResult.fail(ErrorCode.INVALID_ARGUMENT, tooOld);
        }
        StorageNode old = nodes.get(c.getNodeId());
        if (old != null && old.getState() == NodeState.ALIVE && c.getInstanceId() != 0 && old.getInstanceId() == c.getInstanceId()
                && old.getHost().equals(c.getHost()) && old.getPort() == c.getPort()) {
            // The same process again (its first registration committed, the answer was lost): nothing changes.
            return CommandResult.ok(assignments(c.getNodeId()).toBuilder().setHeldChecked(c.getHeldReported()).build());
        }
        if (c.getHeldReported()) {
            checkHeldLogs(c.getNodeId(), c.getHeldSegmentsList());
        }
        if (old != null && old.getState() == NodeState.ALIVE && !InjectedMetaBug.on(InjectedMetaBug.KEEP_EPOCH_AFTER_UNCLEAN_RESTART)) {
            // (TEST ONLY: with the injected bug on, the restarted node keeps its places in its old epochs.)
            // A new incarnation replaces a live one (a restart the controller did not notice, maybe an unclean
            // one that lost unsynced bytes): it must not lead in its old epochs. Fence the old incarnation first,
            // exactly as FenceNode does, except that a segment with no other eligible leader goes straight back
            // to this node in the fence's new epoch (one bump, not two). The same page cache as the old
            // incarnation's (the same kernel boot: a process restart, not a machine crash) kept every byte it
            // wrote: then it keeps its places, as in fsync mode.
            boolean pageCacheKept = !c.getPageCacheId().isEmpty() && c.getPageCacheId().equals(old.getPageCacheId());
            nodes.put(c.getNodeId(), old.toBuilder().setState(NodeState.FENCED).build());
            // The old incarnation is a process restarted, or one still alive elsewhere under the same id (a node moved
            // while cut off): unless it was shutting down on purpose (it answers no leader reads then), every segment it
            // led waits out its lease, with this node id's new process as leader too.
            fenceReplicas(c.getNodeId(), true, pageCacheKept, !old.getShuttingDown());
        }
        StorageNode node = StorageNode.newBuilder().setNodeId(c.getNodeId()).setHost(c.getHost()).setPort(c.getPort())
                .setState(NodeState.ALIVE).setRegisteredAtMs(now).setInstanceId(c.getInstanceId()).setPageCacheId(c.getPageCacheId())
                .setIncarnation(old == null ? 1 : old.getIncarnation() + 1).setReadLeaseMs(c.getReadLeaseMs())
                .setDecommissioned(old != null && old.getDecommissioned()).build(); // an operator's decision outlives restarts
        nodes.put(c.getNodeId(), node);
        // A segment that waits for a leader gets this node if it is eligible: sealed ones too, which need a
        // leader for deletes and for their ISR to grow back.
        for (List<Segment> list : segments.values()) {
            for (int i = 0; i < list.size(); i++) {
                Segment s = list.get(i);
                boolean live = s.getStatus() == SegmentStatus.OPEN || s.getStatus() == SegmentStatus.SEALED;
                if (s.getLeader() < 0 && live && eligible(s, c.getNodeId())) {
                    replace(list, i, s.toBuilder().setLeader(c.getNodeId()).setLeaderEpoch(s.getLeaderEpoch() + 1).build());
                }
            }
        }
        return CommandResult.ok(assignments(c.getNodeId()).toBuilder().setHeldChecked(c.getHeldReported()).build());
    }

    /**
     * A registering node said which segment logs it holds: each open or sealed segment listing it as a replica that
     * is not among them is marked offline for it ({@link #markOffline}: its log was lost, or is on a directory that
     * did not come up), so it neither leads from nor counts in an ISR with an empty log; one it holds while marked
     * offline and still in the ISR (the last member, kept there) is taken off the list: its directory came back.
     * Runs before the registration's fence and elections, which then see the marks.
     */
    private void checkHeldLogs(int id, List<dev.segstore.protocol.meta.SegmentId> held) {
        Set<dev.segstore.protocol.meta.SegmentId> holds = new HashSet<>(held);
        forEachLiveSegment(s -> {
            if (!s.getReplicasList().contains(id)) {
                return s;
            }
            if (!holds.contains(segmentId(s))) {
                return markOffline(s, id);
            }
            if (offline(s, id) && s.getIsrList().contains(id)) {
                return s.toBuilder().clearOfflineReplicas().addAllOfflineReplicas(without(s.getOfflineReplicasList(), id)).build();
            }
            return s;
        });
    }

    private static dev.segstore.protocol.meta.SegmentId segmentId(Segment s) {
        return dev.segstore.protocol.meta.SegmentId.newBuilder().setShardId(s.getShardId()).setSequence(s.getSequence()).build();
    }

    private static List<Integer> without(List<Integer> list, int n) {
        return list.stream().filter(x -> x != n).toList();
    }

    /** Whether node {@code n}'s replica of {@code s} is lost or unreadable (Segment.offline_replicas in meta.proto). */
    private static boolean offline(Segment s, int n) {
        return s.getOfflineReplicasList().contains(n);
    }

    /** {@code isr} without the members whose replica of {@code s} is offline: those that may lead. */
    private static List<Integer> online(Segment s, List<Integer> isr) {
        return s.getOfflineReplicasCount() == 0 ? isr : isr.stream().filter(n -> !offline(s, n)).toList();
    }

    /**
     * Node {@code id}'s replica of {@code s} is lost or unreadable: it is marked offline, leaves the ISR unless it
     * is its last member (then the segment keeps it: nothing else holds what it held) and hands a leadership to
     * another eligible member in epoch + 1, or to none (-1: the segment waits).
     */
    private Segment markOffline(Segment s, int id) {
        if (!s.getReplicasList().contains(id)) {
            return s;
        }
        Segment.Builder b = s.toBuilder();
        if (!offline(s, id)) {
            b.addOfflineReplicas(id);
        }
        if (s.getIsrList().contains(id) && s.getIsrCount() > 1) {
            leaveIsr(b, s, id);
        }
        if (s.getLeader() == id) {
            Segment marked = b.build();
            b.setLeader(electLeader(marked, marked.getIsrList(), id)).setLeaderEpoch(s.getLeaderEpoch() + 1);
        }
        return b.build();
    }

    /** MarkReplicasOfflineCommand in meta.proto: node {@code c.node_id}'s data directory holding these replicas failed. */
    private CommandResult markReplicasOffline(dev.segstore.protocol.meta.MarkReplicasOfflineCommand c) {
        StorageNode node = nodes.get(c.getNodeId());
        if (node == null || node.getState() != NodeState.ALIVE || node.getIncarnation() != c.getIncarnation()) {
            return CommandResult.fail(ErrorCode.FENCED_EPOCH, "storage node " + c.getNodeId() + " incarnation " + c.getIncarnation()
                    + " is not registered and alive");
        }
        Set<dev.segstore.protocol.meta.SegmentId> ids = new HashSet<>(c.getSegmentsList());
        forEachLiveSegment(s -> ids.contains(segmentId(s)) ? markOffline(s, c.getNodeId()) : s);
        return CommandResult.ok(assignments(c.getNodeId()));
    }

    /**
     * Whether each of {@code ids} that is a live segment listing node {@code nodeId} as a replica marks it offline
     * already (the leader proposes MarkReplicasOffline only when one does not).
     */
    public synchronized boolean offlineAlready(int nodeId, List<dev.segstore.protocol.meta.SegmentId> ids) {
        Set<dev.segstore.protocol.meta.SegmentId> wanted = new HashSet<>(ids);
        for (List<Segment> list : segments.values()) {
            for (Segment s : list) {
                boolean live = s.getStatus() == SegmentStatus.OPEN || s.getStatus() == SegmentStatus.SEALED;
                if (live && s.getReplicasList().contains(nodeId) && wanted.contains(segmentId(s)) && !offline(s, nodeId)) {
                    return false;
                }
            }
        }
        return true;
    }

    /** Whether a replica of {@code s} keeps every acknowledged record across an unclean restart: fsync mode. */
    private boolean keepsAcknowledgedOnRestart(Segment s) {
        Shard shard = shards.get(s.getShard());
        return shard == null || shard.getSettings().getDurability() != dev.segstore.protocol.meta.DurabilityMode.PAGE_CACHE;
    }

    private boolean eligible(Segment s, int nodeId) {
        if (offline(s, nodeId)) {
            return false;
        }
        if (s.getIsrList().contains(nodeId)) {
            return true;
        }
        return uncleanAllowed(s) && s.getReplicasList().contains(nodeId);
    }

    /**
     * Whether a replica outside the ISR may lead {@code s}: the shard allows it, and {@code s} is not closing (a replica
     * outside the ISR may hold another tail than the end its leader handed over at). A shard that allows unclean
     * election never closes ahead ({@link #closeSegment}), so this only guards.
     */
    private boolean uncleanAllowed(Segment s) {
        Shard shard = shards.get(s.getShard());
        return shard != null && shard.getSettings().getUncleanLeaderElection() && s.getClosingVersion() == 0;
    }

    private boolean alive(int nodeId) {
        StorageNode n = nodes.get(nodeId);
        return n != null && n.getState() == NodeState.ALIVE;
    }

    /** Alive and not shutting down: may lead and join an ISR. */
    private boolean active(int nodeId) {
        StorageNode n = nodes.get(nodeId);
        return n != null && n.getState() == NodeState.ALIVE && !n.getShuttingDown();
    }

    /** Active and not decommissioned: may be placed on a new segment, and is preferred as a leader. */
    private boolean placeable(int nodeId) {
        return active(nodeId) && !nodes.get(nodeId).getDecommissioned();
    }

    /**
     * An operator decommissions node {@code c.node_id} (or takes that back): see {@code StorageNode.decommissioned}
     * in meta.proto. Its leaderships move to placeable ISR members, each in a new epoch; a segment with none keeps
     * its leader. Answers {@link dev.segstore.protocol.meta.DecommissionNodeResponse}.
     */
    private CommandResult decommissionNode(dev.segstore.protocol.meta.DecommissionNodeCommand c) {
        int id = c.getNodeId();
        StorageNode node = nodes.get(id);
        if (node == null) {
            return CommandResult.fail(ErrorCode.INVALID_ARGUMENT, "no storage node " + id + " is registered");
        }
        nodes.put(id, node.toBuilder().setDecommissioned(c.getDecommissioned()).build());
        if (c.getDecommissioned()) {
            forEachLiveSegment(s -> {
                int next = s.getLeader() == id ? firstPlaceable(online(s, s.getIsrList()), id) : -1;
                // The decommissioned node is alive and serves reads from its lease until it hears of this.
                return next < 0 ? s : s.toBuilder().setLeader(next).setLeaderEpoch(s.getLeaderEpoch() + 1).setDeposedLeaderMayServe(true).build();
            });
        }
        int[] left = new int[2];
        for (List<Segment> list : segments.values()) {
            for (Segment s : list) {
                if (s.getStatus() == SegmentStatus.OPEN || s.getStatus() == SegmentStatus.SEALED) {
                    left[0] += s.getLeader() == id ? 1 : 0;
                    left[1] += s.getReplicasList().contains(id) ? 1 : 0;
                }
            }
        }
        return CommandResult.ok(dev.segstore.protocol.meta.DecommissionNodeResponse.newBuilder().setNode(nodes.get(id))
                .setLeaderships(left[0]).setReplicas(left[1]).build());
    }

    private CommandResult fenceNode(FenceNodeCommand c) {
        StorageNode node = nodes.get(c.getNodeId());
        if (node == null || node.getState() != NodeState.ALIVE || node.getIncarnation() != c.getIncarnation()) {
            return CommandResult.ok(Empty.getDefaultInstance()); // already fenced, or re-registered since: no-op
        }
        nodes.put(c.getNodeId(), node.toBuilder().setState(NodeState.FENCED).build());
        fenceReplicas(c.getNodeId(), false, false, c.getLeaderMayServe());
        return CommandResult.ok(Empty.getDefaultInstance());
    }

    /**
     * Takes node {@code id} (already marked not alive) out of every open or sealed segment: out of every ISR
     * that has other members (ISR version + 1), and each leadership to another live ISR member (or, if the
     * shard allows, any live replica) in epoch + 1; with none, the segment waits at -1, unless {@code rejoining}
     * (the node registers again in this same command) and the node is still eligible: then it leads again, in
     * the new epoch. A node {@code rejoining} that kept every byte it wrote ({@code pageCacheKept}, or fsync mode
     * where it counted forced bytes only) keeps its places instead, each leadership in a new epoch. With
     * {@code leaderMayServe} (FenceNodeCommand.leader_may_serve; a registration replacing a live incarnation) each segment
     * it led is marked so that its new leaders (this node id's new process too) wait out the old process's lease.
     */
    private void fenceReplicas(int id, boolean rejoining, boolean pageCacheKept, boolean leaderMayServe) {
        forEachLiveSegment(s -> {
            if (rejoining && (pageCacheKept || keepsAcknowledgedOnRestart(s))) {
                // fsync mode: the node only ever counted forced bytes, so it still holds everything it helped
                // acknowledge; page-cache mode after a process restart on the same kernel boot: the page cache
                // kept everything it wrote. It stays in the ISR; a leadership stays with it, in a new epoch (followers
                // truncate to where its log now ends through the epoch protocol). Moving the leadership to
                // another member instead could hand it to one that is dead but not yet fenced, and leave the
                // segment waiting for it with the node that holds everything shut out of the ISR.
                // (With leaderMayServe, the old process may be alive elsewhere: the new one waits out its lease too.)
                return s.getLeader() == id ? s.toBuilder().setLeaderEpoch(s.getLeaderEpoch() + 1)
                        .setDeposedLeaderMayServe(s.getDeposedLeaderMayServe() || leaderMayServe).build() : s;
            }
            Segment.Builder b = s.toBuilder();
            if (s.getIsrList().contains(id) && s.getIsrCount() > 1) {
                leaveIsr(b, s, id);
            }
            if (s.getLeader() == id) {
                int next = electLeader(s, b.getIsrList(), id);
                if (next < 0 && rejoining && eligible(b.build(), id)) {
                    next = id;
                }
                b.setLeader(next).setLeaderEpoch(s.getLeaderEpoch() + 1);
                if (leaderMayServe) {
                    b.setDeposedLeaderMayServe(true); // it may answer reads until its lease ends (meta.proto)
                }
            }
            return b.build();
        });
    }

    /**
     * A controlled shutdown of node {@code nodeId} (its current, alive {@code incarnation}): it is marked shutting
     * down, and wherever another ISR member is {@link #active} it leaves the ISR and hands its leadership to the
     * first such member in a new epoch. It stays alive and in charge where no such member exists (it holds what no
     * active node does: the segment keeps its leader, as it would wait for it if it were fenced). Answered with the
     * node's assignments after the change.
     */
    private CommandResult controlledShutdown(dev.segstore.protocol.meta.ControlledShutdownCommand c) {
        int id = c.getNodeId();
        StorageNode node = nodes.get(id);
        if (node == null || node.getState() != NodeState.ALIVE || node.getIncarnation() != c.getIncarnation()) {
            return CommandResult.fail(ErrorCode.FENCED_EPOCH, "storage node " + id + " incarnation " + c.getIncarnation()
                    + " is not registered and alive: nothing to hand over");
        }
        nodes.put(id, node.toBuilder().setShuttingDown(true).build());
        forEachLiveSegment(s -> {
            int next = s.getLeader() == id || s.getIsrList().contains(id) ? preferredActive(online(s, s.getIsrList()), id) : -1;
            if (next < 0) {
                return s; // not involved, or no active member to take over: it keeps its place
            }
            Segment.Builder b = s.toBuilder();
            if (s.getIsrList().contains(id)) {
                leaveIsr(b, s, id);
            }
            if (s.getLeader() == id) {
                b.setLeader(next).setLeaderEpoch(s.getLeaderEpoch() + 1);
            }
            return b.build();
        });
        return CommandResult.ok(assignments(id));
    }

    /** Replaces every open or sealed segment {@code s} by {@code change.apply(s)} (which returns {@code s} to keep it). */
    private void forEachLiveSegment(java.util.function.UnaryOperator<Segment> change) {
        for (List<Segment> list : segments.values()) {
            for (int i = 0; i < list.size(); i++) {
                Segment s = list.get(i);
                if (s.getStatus() == SegmentStatus.OPEN || s.getStatus() == SegmentStatus.SEALED) {
                    replace(list, i, change.apply(s));
                }
            }
        }
    }

    /** Sets {@code b}'s ISR to {@code s}'s without node {@code id}, one version on. */
    private static void leaveIsr(Segment.Builder b, Segment s, int id) {
        b.clearIsr().addAllIsr(s.getIsrList().stream().filter(n -> n != id).toList()).setIsrVersion(s.getIsrVersion() + 1);
    }

    /** The first {@link #placeable} member of {@code isr} other than {@code excluded}, else the first {@link #active} one, or -1. */
    private int preferredActive(List<Integer> isr, int excluded) {
        int placeable = firstPlaceable(isr, excluded);
        return placeable >= 0 ? placeable : firstActive(isr, excluded);
    }

    /** The first {@link #placeable} member of {@code isr} other than {@code excluded}, or -1. */
    private int firstPlaceable(List<Integer> isr, int excluded) {
        for (int n : isr) {
            if (n != excluded && placeable(n)) {
                return n;
            }
        }
        return -1;
    }

    /** The first {@link #active} member of {@code isr} other than {@code excluded}, or -1. */
    private int firstActive(List<Integer> isr, int excluded) {
        for (int n : isr) {
            if (n != excluded && active(n)) {
                return n;
            }
        }
        return -1;
    }

    /**
     * First active ISR member other than {@code excluded}; else a live one that is shutting down (it holds everything
     * and still serves); else, if allowed, any live replica; else -1 (wait).
     */
    private int electLeader(Segment s, List<Integer> members, int excluded) {
        List<Integer> isr = online(s, members); // a replica whose copy is lost or unreadable never leads
        int active = preferredActive(isr, excluded);
        if (active >= 0) {
            return active;
        }
        for (int n : isr) {
            if (n != excluded && alive(n)) {
                return n;
            }
        }
        if (uncleanAllowed(s)) {
            for (int n : online(s, s.getReplicasList())) {
                if (n != excluded && alive(n)) {
                    return n;
                }
            }
        }
        return -1;
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
        Optional<String> bad = checkReplicas(c.getReplicasList(), c.getSettings().getReplicaCount());
        if (bad.isPresent()) {
            return CommandResult.fail(ErrorCode.NOT_ENOUGH_REPLICAS, "cannot create shard '" + c.getName() + "': " + bad.get());
        }
        if (neverHadShard()) {
            // A new cluster: no meta node of an older build ever applied its log. From level 2 its storage nodes must
            // know the level too (an older one alive now would take part in work it cannot follow).
            int level = c.getNewClusterFeatureLevel();
            if (level >= FeatureLevels.STORAGE_NODES_CHECKED && !unlisted(c.getStorageNodesList()).isEmpty()) {
                level = FeatureLevels.CLOSE_SEGMENT_COMMAND;
            }
            featureLevel = Math.max(featureLevel, level);
        }
        Shard shard = Shard.newBuilder().setName(c.getName()).setShardId(nextShardId++).setSettings(c.getSettings())
                .setCreatedAtMs(now).setState(ShardState.ACTIVE).build();
        shards.put(c.getName(), shard);
        List<Segment> list = new ArrayList<>();
        add(list, openSegment(c.getName(), shard.getShardId(), 0, 0, c.getReplicasList()));
        segments.put(c.getName(), list);
        recentRequests.record(c.getRequestId(), now, c.getName(), shard.getShardId(), false);
        return CommandResult.ok(route(c.getName()));
    }

    private Optional<String> checkReplicas(List<Integer> replicas, int count) {
        if (replicas.size() != count) {
            return Optional.of("needs " + count + " replicas, placement gave " + replicas.size());
        }
        if (new HashSet<>(replicas).size() != replicas.size()) {
            return Optional.of("replicas " + replicas + " are not distinct");
        }
        for (int n : replicas) {
            if (!placeable(n)) {
                return Optional.of("storage node " + n + " is not alive, or is shutting down or decommissioned");
            }
        }
        return Optional.empty();
    }

    /**
     * The next segment of a roll may name fenced nodes (Kafka keeps a dead broker's replicas too): a roll must
     * not stop a shard that still has {@code minIsr} live nodes, and the fenced replica catches up when its
     * node returns. Its first replica, the leader, and at least {@code minIsr} of them must be alive.
     */
    private Optional<String> checkRollReplicas(List<Integer> replicas, int count, int minIsr) {
        if (replicas.size() != count) {
            return Optional.of("needs " + count + " replicas, placement gave " + replicas.size());
        }
        if (new HashSet<>(replicas).size() != replicas.size()) {
            return Optional.of("replicas " + replicas + " are not distinct");
        }
        long active = replicas.stream().filter(this::active).count();
        if (!placeable(replicas.get(0)) || active < minIsr) {
            return Optional.of("replicas " + replicas + ": the first (not decommissioned either) and at least " + minIsr
                    + " must be alive and not shutting down, " + active + " are");
        }
        for (int n : replicas) {
            StorageNode node = nodes.get(n);
            if (node == null || (node.getState() != NodeState.ALIVE && node.getState() != NodeState.FENCED)) {
                return Optional.of("storage node " + n + " is not a registered node");
            }
        }
        return Optional.empty();
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
            uncount(segments.remove(c.getName()));
            groupOffsets.remove(c.getName());
            return CommandResult.ok(Empty.getDefaultInstance());
        }
        java.util.TreeSet<Integer> hostedOn = new java.util.TreeSet<>();
        List<Segment> removed = segments.remove(c.getName());
        uncount(removed);
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
        if (s.getStatus() != SegmentStatus.OPEN && s.getStatus() != SegmentStatus.SEALED) {
            return CommandResult.fail(ErrorCode.INVALID_ARGUMENT, where + " is " + s.getStatus());
        }
        if (s.getClosingVersion() != 0) {
            // Its replicas are the next segment's too, which its leader may already lead: moved once the seal is recorded.
            return CommandResult.fail(ErrorCode.INVALID_ARGUMENT, where + " is closing: its replicas move after its seal");
        }
        int at = s.getReplicasList().indexOf(c.getOldNode());
        if (at < 0 || s.getIsrList().contains(c.getOldNode()) || alive(c.getOldNode())) {
            return CommandResult.fail(ErrorCode.INVALID_ARGUMENT, where + ": node " + c.getOldNode()
                    + " must be a replica that is neither alive nor in the ISR " + s.getIsrList());
        }
        if (!placeable(c.getNewNode()) || s.getReplicasList().contains(c.getNewNode())) {
            return CommandResult.fail(ErrorCode.INVALID_ARGUMENT, where + ": node " + c.getNewNode()
                    + " must be alive, not shutting down, and not a replica of " + s.getReplicasList() + " yet");
        }
        List<Integer> replicas = new ArrayList<>(s.getReplicasList());
        replicas.set(at, c.getNewNode());
        Segment moved = s.toBuilder().clearReplicas().addAllReplicas(replicas).setLeaderEpoch(s.getLeaderEpoch() + 1)
                .clearOfflineReplicas().addAllOfflineReplicas(without(s.getOfflineReplicasList(), c.getOldNode())).build();
        replace(list, i, moved);
        return CommandResult.ok(dev.segstore.protocol.meta.SegmentResponse.newBuilder().setSegment(moved).build());
    }

    /**
     * The replicas the controller may move off {@code nodeId} now: those not in their segment's ISR, of open or
     * sealed segments. (One in the ISR is the last holder of its records: the segment waits for the node.)
     */
    public synchronized List<Segment> reassignable(int nodeId) {
        List<Segment> out = new ArrayList<>();
        for (List<Segment> list : segments.values()) {
            for (Segment s : list) {
                boolean live = s.getStatus() == SegmentStatus.OPEN || s.getStatus() == SegmentStatus.SEALED;
                if (live && s.getReplicasList().contains(nodeId) && !s.getIsrList().contains(nodeId) && s.getClosingVersion() == 0) {
                    out.add(s);
                }
            }
        }
        return out;
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
            if (!s.getIsrList().contains(n) && !active(n)) {
                // Refused for good at this version (the leader stops counting it): a node shutting down must not become
                // one more member that acknowledgements wait for just before it stops.
                return CommandResult.fail(ErrorCode.INVALID_ARGUMENT, "node " + n + " is not alive, or is shutting down, and cannot join the ISR");
            }
        }
        // A member joining again has fetched up to the high watermark from the leader: a copy it had lost is whole again.
        List<Integer> stillOffline = s.getOfflineReplicasList().stream().filter(n -> s.getIsrList().contains(n) || !isr.contains(n)).toList();
        Segment updated = s.toBuilder().clearIsr().addAllIsr(isr).setIsrVersion(s.getIsrVersion() + 1)
                .clearOfflineReplicas().addAllOfflineReplicas(stillOffline).build();
        replace(list, indexOf(list, c.getSequence()), updated);
        return CommandResult.ok(dev.segstore.protocol.meta.SegmentResponse.newBuilder().setSegment(updated).build());
    }

    private CommandResult setFeatureLevel(dev.segstore.protocol.meta.SetFeatureLevelCommand c) {
        if (c.getLevel() < featureLevel) {
            return CommandResult.fail(ErrorCode.INVALID_ARGUMENT, "the feature level is " + featureLevel + ": it only rises, not to " + c.getLevel());
        }
        String unknown = raiseRefusal(c);
        if (unknown != null) {
            return CommandResult.fail(ErrorCode.INVALID_ARGUMENT, unknown);
        }
        featureLevel = c.getLevel();
        return CommandResult.ok(dev.segstore.protocol.meta.FeatureLevelResponse.newBuilder().setLevel(featureLevel).build());
    }

    /**
     * Why storage node {@code id} may not register with a build that knows feature level {@code registered} at most
     * (RegisterNodeCommand.max_feature_level), or null: from level 2 on, a node must know the cluster's level. The meta
     * leader asks before it proposes (a refusal then takes no log entry and is no sign of the node's life).
     */
    public synchronized String olderThanTheCluster(int id, int registered) {
        int knows = FeatureLevels.ofStorageNode(registered);
        if (featureLevel < FeatureLevels.STORAGE_NODES_CHECKED || knows >= featureLevel) {
            return null;
        }
        return "storage node " + id + " registers with a build that knows feature level " + knows + " at most (segstore-admin"
                + " register-node names none), and the cluster is at level " + featureLevel + ": upgrade the node's build";
    }

    /**
     * Why the raise {@code c} is refused for the storage nodes (from level 2, every alive one must be named), or null.
     * The meta leader asks before it proposes: a refused raise then takes no log entry (which a meta node of an older
     * build would stop at).
     */
    public synchronized String raiseRefusal(dev.segstore.protocol.meta.SetFeatureLevelCommand c) {
        if (c.getLevel() <= featureLevel || c.getLevel() < FeatureLevels.STORAGE_NODES_CHECKED) {
            return null;
        }
        List<String> unknown = unlisted(c.getStorageNodesList()).stream().map(n -> n.getNodeId() + " (incarnation " + n.getIncarnation() + ")").toList();
        // Only alive nodes: any other registers again before it takes part, and is checked then.
        return unknown.isEmpty() ? null : "storage nodes " + unknown + " have not shown the meta leader a build that knows feature level "
                + c.getLevel() + ": upgrade every storage node (or stop it), and raise the level once each has registered or"
                + " heartbeated to the meta leader since";
    }

    /** The alive storage nodes whose incarnation {@code listed} does not name. */
    public synchronized List<StorageNode> unlisted(List<dev.segstore.protocol.meta.NodeIncarnation> listed) {
        return nodes.values().stream().filter(n -> n.getState() == NodeState.ALIVE
                && listed.stream().noneMatch(l -> l.getNodeId() == n.getNodeId() && l.getIncarnation() == n.getIncarnation())).toList();
    }

    /** Whether no shard was ever created here (a new cluster: CreateShardCommand.new_cluster_feature_level). */
    public synchronized boolean neverHadShard() {
        return nextShardId == 1 && shards.isEmpty() && deleting.isEmpty();
    }

    /** The cluster's feature level (SetFeatureLevelCommand). */
    public synchronized int featureLevel() {
        return featureLevel;
    }

    /** Why a close by {@code rules} (2 or more) is refused at the current feature level, or null when it is taken. */
    private String closeAheadRefusal(int rules) {
        // Rules 2 (from the build that brought feature levels) at level 1; this build's (3) at level 2, where every
        // storage node follows hand-overs.
        int needs = rules >= CLOSE_RULES ? CLOSE_AHEAD_LEVEL : FeatureLevels.CLOSE_SEGMENT_COMMAND;
        return featureLevel >= needs ? null : "segments do not close ahead at feature level " + featureLevel + " (it needs " + needs
                + ": segstore-admin feature-level --set " + needs + ", once every meta node and storage node runs a build that knows it)";
    }

    /**
     * Why open segment {@code s} (not closing yet) rolls as before instead of closing ahead, or null when it may close.
     * Its next segment would be a copy of it (replicas, leader, epoch, ISR), so it closes only where that copy is what
     * placement would want: otherwise the roll places the next segment, as without close ahead.
     */
    private String closeRefusal(Segment s, int rules) {
        dev.segstore.protocol.meta.ShardSettings settings = shards.get(s.getShard()).getSettings();
        List<Integer> placement = settings.getPlacementList();
        if (s.getReplicasCount() != settings.getReplicaCount() || (!placement.isEmpty() && !placement.equals(s.getReplicasList()))) {
            // alter-shard set a placement this segment is not on, or another replica count.
            return "the next segment is placed anew (replica count " + settings.getReplicaCount()
                    + (placement.isEmpty() ? "" : ", placement " + placement) + ", this one on " + s.getReplicasList() + ")";
        }
        if (settings.getUncleanLeaderElection() || !s.getIsrList().contains(s.getLeader())) {
            // A closing segment is never led from outside its ISR (its end is what the ISR holds): a shard that allows
            // unclean election rolls as before, so that such an election can always end a segment.
            return "its shard allows unclean leader election, or its leader is outside its ISR";
        }
        if (rules < PLACEMENT_RULES) {
            return null; // a command of the build that introduced close ahead: applied by its rules, as it was then
        }
        String belowLevel = closeAheadRefusal(rules);
        if (belowLevel != null) {
            return belowLevel;
        }
        if (s.getLeader() != s.getReplicas(0)) {
            // Leaders spread as placement spreads them: a leadership moved (a failover, a controlled shutdown) comes
            // back to the preferred replica, or elsewhere, at the next placement, which a copy would skip for good.
            return "its leader " + s.getLeader() + " is not its preferred replica " + s.getReplicas(0) + ": the roll places leaders anew";
        }
        for (int r : s.getReplicasList()) {
            if (!placeable(r) || s.getOfflineReplicasList().contains(r)) {
                // A dead, fenced, stopping or decommissioned node, or a replica on a lost disk, would be copied into
                // the next segment too, which placement would put elsewhere.
                return "replica " + r + " is not one placement would choose (not alive, shutting down, decommissioned, or offline)";
            }
        }
        return null;
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
        String belowLevel = c.getRules() >= PLACEMENT_RULES ? closeAheadRefusal(c.getRules()) : null;
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
        String refusal = closeRefusal(open, c.getRules());
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
            String refusal = closeRefusal(s, c.getRules());
            if (refusal != null) {
                return CommandResult.fail(ErrorCode.INVALID_ARGUMENT, "segment " + c.getShard() + "/" + c.getSequence()
                        + " does not close ahead: " + refusal);
            }
            replace(list, i, s.toBuilder().setClosingVersion(appliedCommands).build());
        }
        return CommandResult.ok(dev.segstore.protocol.meta.SegmentResponse.newBuilder().setSegment(list.get(i)).build());
    }

    private CommandResult rollSegment(RollSegmentCommand c, long now) {
        // The leader that asked is checked when the command names it (commands of older builds do not).
        int leader = c.hasLeader() ? c.getLeader() : leaderOf(c.getShard(), c.getSequence());
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
            replace(list, list.size() - 1, s.toBuilder().setEndOffset(c.getEndOffset()).setStatus(SegmentStatus.SEALED).setSealedAtMs(now)
                    .setClosingVersion(0).build()); // closed: its ISR grows, and it is reassigned, as any sealed segment's
            add(list, s.toBuilder().setSequence(c.getSequence() + 1).setStartOffset(c.getEndOffset()).setEndOffset(-1)
                    .setCreatedVersion(appliedCommands).setClosingVersion(0).build());
            return CommandResult.ok(route(c.getShard()));
        }
        Optional<String> bad = checkRollReplicas(c.getNextReplicasList(), shard.getSettings().getReplicaCount(),
                Math.max(1, shard.getSettings().getMinInSyncReplicas()));
        if (bad.isPresent()) {
            return CommandResult.fail(ErrorCode.NOT_ENOUGH_REPLICAS, "cannot open the next segment of '" + c.getShard() + "': " + bad.get());
        }
        replace(list, list.size() - 1, s.toBuilder().setEndOffset(c.getEndOffset()).setStatus(SegmentStatus.SEALED).setSealedAtMs(now).build());
        // A replica on a fenced (or shutting-down) node starts outside the ISR; it joins once it is back and has caught up.
        List<Integer> isr = c.getNextReplicasList().stream().filter(this::active).toList();
        add(list, openSegment(c.getShard(), shard.getShardId(), c.getSequence() + 1, c.getEndOffset(), c.getNextReplicasList())
                .toBuilder().clearIsr().addAllIsr(isr).build());
        return CommandResult.ok(route(c.getShard()));
    }

    private int leaderOf(String shard, long sequence) {
        List<Segment> list = segments.get(shard);
        int i = list == null ? -1 : indexOf(list, sequence);
        return i < 0 ? -1 : list.get(i).getLeader();
    }

    /**
     * Where segment {@code sequence} is in a shard's list, or -1: the list holds consecutive sequences, from the
     * oldest one retention left (never empty: the open segment is never dropped).
     */
    private static int indexOf(List<Segment> list, long sequence) {
        long i = sequence - list.get(0).getSequence();
        return i < 0 || i >= list.size() ? -1 : (int) i;
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
        uncount(list.subList(0, n));
        list.subList(0, n).clear();
        return CommandResult.ok(route(c.getShard()));
    }

    /**
     * How many of a shard's oldest segments retention may drop: sealed ones, each sealed {@code retention_ms} or
     * longer before the time {@code nowFor} gives for its seal time (a segment sealed before seal times were kept
     * has none, and stays), never the open one. 0 when the shard keeps everything.
     */
    private static int expirable(Shard shard, List<Segment> list, LongUnaryOperator nowFor) {
        long retention = shard.getSettings().getRetentionMs();
        if (retention <= 0) {
            return 0;
        }
        int n = 0;
        while (n < list.size() - 1) {
            Segment s = list.get(n);
            if (s.getStatus() != SegmentStatus.SEALED || s.getSealedAtMs() <= 0
                    || nowFor.applyAsLong(s.getSealedAtMs()) - s.getSealedAtMs() < retention) {
                break;
            }
            n++;
        }
        return n;
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
                    || !placement.stream().allMatch(nodes::containsKey))) {
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
        if (!open.getIsrList().contains(c.getTo()) || !placeable(c.getTo()) || offline(open, c.getTo())) {
            return CommandResult.fail(ErrorCode.INVALID_ARGUMENT, "storage node " + c.getTo() + " cannot lead segment " + open.getSequence()
                    + " of '" + c.getShard() + "': it must be in the ISR " + open.getIsrList() + " and alive, not shutting down or decommissioned, with its copy online");
        }
        // The old leader may be alive and serve reads from its lease until it hears of this: new leaders wait it out.
        Segment.Builder moved = open.toBuilder().setLeader(c.getTo()).setLeaderEpoch(open.getLeaderEpoch() + 1)
                .setDeposedLeaderMayServe(open.getDeposedLeaderMayServe() || open.getLeader() >= 0);
        if (c.getOldLeaderLeavesIsr() && open.getLeader() >= 0 && open.getIsrList().contains(open.getLeader())) {
            leaveIsr(moved, open, open.getLeader()); // silent to every other member: acknowledgements must not wait for it
        }
        replace(list, i, moved.build());
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
                replace(list, i, open.toBuilder().setDeposedLeaderMayServe(false).build());
            } // else a later change: the controller looks again
        }
        return CommandResult.ok(Empty.getDefaultInstance());
    }

    /** Open segments whose new leaders wait out a deposed leader's lease ({@code deposed_leader_may_serve}). */
    public synchronized List<Segment> deposedOpenSegments() {
        List<Segment> out = new ArrayList<>();
        for (List<Segment> list : segments.values()) {
            Segment last = list.isEmpty() ? null : list.get(list.size() - 1);
            if (last != null && last.getStatus() == SegmentStatus.OPEN && last.getDeposedLeaderMayServe()) {
                out.add(last);
            }
        }
        return out;
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

    /** The DELETING shard with this name, if any. */
    public synchronized Optional<Shard> deletingShard(String name) {
        return Optional.ofNullable(deleting.get(name));
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
        return List.copyOf(nodes.values());
    }

    public synchronized Optional<StorageNode> node(int id) {
        return Optional.ofNullable(nodes.get(id));
    }

    public synchronized int shardCount() {
        return shards.size();
    }

    public synchronized int segmentCount() {
        int n = 0;
        for (List<Segment> l : segments.values()) {
            n += l.size();
        }
        return n;
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
        return health(segmentCounts);
    }

    /** {@link #health()} counted again from every segment: what the kept counts must always equal (tests). */
    public synchronized Health healthRecounted() {
        return health(SegmentCounts.of(segments.values()));
    }

    private Health health(SegmentCounts counts) {
        int count = counts.live();
        int under = counts.underReplicated();
        int leaderless = counts.leaderless();
        int alive = 0;
        int fenced = 0;
        for (StorageNode n : nodes.values()) {
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
        for (StorageNode n : nodes.values()) {
            t = Math.max(t, n.getRegisteredAtMs());
        }
        for (Shard sh : shards.values()) {
            t = Math.max(t, sh.getCreatedAtMs());
        }
        for (List<Segment> list : segments.values()) {
            for (Segment seg : list) {
                t = Math.max(t, seg.getSealedAtMs());
            }
        }
        return t;
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
        NodeAssignments.Builder b = NodeAssignments.newBuilder().setMetadataVersion(appliedCommands).setFeatureLevel(featureLevel);
        StorageNode n = nodes.get(nodeId);
        if (n != null) {
            b.setNode(n);
        }
        b.addAllNodes(nodes.values());
        for (Shard d : deleting.values()) {
            if (d.getHostedOnList().contains(nodeId)) {
                b.addDeletedShardIds(d.getShardId());
            }
        }
        for (Map.Entry<String, List<Segment>> e : segments.entrySet()) {
            boolean any = false;
            for (Segment s : e.getValue()) {
                if (s.getReplicasList().contains(nodeId)) {
                    b.addSegments(s);
                    any = true;
                }
            }
            if (any) {
                b.addShards(shards.get(e.getKey()));
            }
        }
        return b.build();
    }

    /** Open segments led by each live node that is not shutting down, and replicas held by each, for placement. */
    public synchronized Map<Integer, int[]> load() {
        Map<Integer, int[]> load = new TreeMap<>();
        for (StorageNode n : nodes.values()) {
            if (placeable(n.getNodeId())) {
                load.put(n.getNodeId(), new int[2]);
            }
        }
        for (List<Segment> list : segments.values()) {
            Segment open = list.get(list.size() - 1);
            for (int r : open.getReplicasList()) {
                int[] l = load.get(r);
                if (l != null) {
                    l[0]++;
                }
            }
            int[] l = load.get(open.getLeader());
            if (l != null) {
                l[1]++;
            }
        }
        return load;
    }

    /** Replicas of open and sealed segments held by each node that holds any (for the controller's placement). */
    public synchronized Map<Integer, Integer> replicaCounts() {
        Map<Integer, Integer> counts = new TreeMap<>();
        for (List<Segment> list : segments.values()) {
            for (Segment s : list) {
                if (s.getStatus() == SegmentStatus.OPEN || s.getStatus() == SegmentStatus.SEALED) {
                    s.getReplicasList().forEach(n -> counts.merge(n, 1, Integer::sum));
                }
            }
        }
        return counts;
    }

    /** All segments led by a node, for failure handling by the controller. */
    public synchronized Set<String> segmentsLedBy(int nodeId) {
        Set<String> out = new HashSet<>();
        segments.forEach((shard, list) -> list.forEach(s -> {
            if (s.getLeader() == nodeId) {
                out.add(shard + "/" + s.getSequence());
            }
        }));
        return out;
    }

    // ---- snapshots -------------------------------------------------------------------------------------------

    public synchronized MetaSnapshot snapshot() {
        MetaSnapshot.Builder b = MetaSnapshot.newBuilder().setVersion(VERSION).setNextShardId(nextShardId).setAppliedCommands(appliedCommands)
                .setLastCommandTimeMs(lastCommandTimeMs).setFeatureLevel(featureLevel)
                .addAllNodes(nodes.values()).addAllShards(shards.values()).addAllShards(deleting.values());
        segments.values().forEach(b::addAllSegments);
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
        nodes.clear();
        shards.clear();
        deleting.clear();
        segments.clear();
        segmentCounts = new SegmentCounts(0, 0, 0);
        groupOffsets.clear();
        s.getNodesList().forEach(n -> nodes.put(n.getNodeId(), n));
        s.getShardsList().forEach(sh -> (sh.getState() == ShardState.DELETING ? deleting : shards).put(sh.getName(), sh));
        s.getSegmentsList().forEach(seg -> segments.computeIfAbsent(seg.getShard(), k -> new ArrayList<>()).add(seg));
        segmentCounts = SegmentCounts.of(segments.values());
        s.getGroupOffsetsList().forEach(o -> groupOffsets.computeIfAbsent(o.getShard(), k -> new TreeMap<>()).put(o.getGroup(), o.getOffset()));
        recentRequests.restore(s.getAppliedRequestsList());
        nextShardId = s.getNextShardId();
        appliedCommands = s.getAppliedCommands();
        lastCommandTimeMs = s.getLastCommandTimeMs();
        featureLevel = s.getFeatureLevel();
    }
}
