package dev.segstore.meta.state;

import dev.segstore.adapter.ErrorCode;
import dev.segstore.protocol.meta.Empty;
import dev.segstore.protocol.meta.FenceNodeCommand;
import dev.segstore.protocol.meta.NodeState;
import dev.segstore.protocol.meta.RegisterNodeCommand;
import dev.segstore.protocol.meta.Segment;
import dev.segstore.protocol.meta.Shard;
import dev.segstore.protocol.meta.StorageNode;

import java.util.Collection;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.Function;

import static dev.segstore.meta.state.SegmentTable.leaveIsr;
import static dev.segstore.meta.state.SegmentTable.offline;
import static dev.segstore.meta.state.SegmentTable.online;
import static dev.segstore.meta.state.SegmentTable.segmentId;
import static dev.segstore.meta.state.SegmentTable.without;

/**
 * The storage nodes, by id, and what their lives do to the segments: registrations, fences, controlled shutdowns,
 * decommissions, lost replicas, and who may lead or be placed. Part of {@link MetaState}'s state: it has no lock of its
 * own and is reached only from inside MetaState's synchronized methods, and none of its collections leaves MetaState.
 * It changes segments only through the {@link SegmentTable} it is given.
 */
final class NodeRegistry {
    private final TreeMap<Integer, StorageNode> nodes = new TreeMap<>();
    private final SegmentTable segments;
    private final Function<String, Shard> shardByName;

    /**
     * @param segments    the segments whose leaders and ISRs follow the nodes' lives
     * @param shardByName the active shard of a name, or null
     */
    NodeRegistry(SegmentTable segments, Function<String, Shard> shardByName) {
        this.segments = segments;
        this.shardByName = shardByName;
    }

    /** Storage node {@code id}, or null if it never registered. */
    StorageNode get(int id) {
        return nodes.get(id);
    }

    /** Whether storage node {@code id} ever registered. */
    boolean contains(int id) {
        return nodes.containsKey(id);
    }

    /** Every storage node, by id, as a view that cannot be changed through. */
    Collection<StorageNode> all() {
        return Collections.unmodifiableCollection(nodes.values());
    }

    /** Replaces every node by {@code all} (a snapshot's). Throws nothing: {@link MetaState#restore} checked the snapshot before. */
    void restore(List<StorageNode> all) {
        nodes.clear();
        all.forEach(n -> nodes.put(n.getNodeId(), n));
    }

    /**
     * Registers storage node {@code c.node_id} at {@code now} (its build is checked against the cluster's feature level
     * before): a new incarnation, alive, that replaces a live one as FenceNode would (see below), and takes every open
     * or sealed segment that waits for a leader and may have it. The same process registering again changes nothing.
     */
    void register(RegisterNodeCommand c, long now) {
        StorageNode old = nodes.get(c.getNodeId());
        if (old != null && old.getState() == NodeState.ALIVE && c.getInstanceId() != 0 && old.getInstanceId() == c.getInstanceId()
                && old.getHost().equals(c.getHost()) && old.getPort() == c.getPort()) {
            // The same process again (its first registration committed, the answer was lost): nothing changes.
            return;
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
        segments.forEachLiveSegment(s -> s.getLeader() < 0 && eligible(s, c.getNodeId())
                ? s.toBuilder().setLeader(c.getNodeId()).setLeaderEpoch(s.getLeaderEpoch() + 1).build() : s);
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
        segments.forEachLiveSegment(s -> {
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

    /**
     * MarkReplicasOfflineCommand in meta.proto: node {@code c.node_id}'s data directory holding these replicas failed.
     * The refusal, or null once applied (the command is answered with the node's assignments then).
     */
    CommandResult markReplicasOffline(dev.segstore.protocol.meta.MarkReplicasOfflineCommand c) {
        StorageNode node = nodes.get(c.getNodeId());
        if (node == null || node.getState() != NodeState.ALIVE || node.getIncarnation() != c.getIncarnation()) {
            return CommandResult.fail(ErrorCode.FENCED_EPOCH, "storage node " + c.getNodeId() + " incarnation " + c.getIncarnation()
                    + " is not registered and alive");
        }
        Set<dev.segstore.protocol.meta.SegmentId> ids = new HashSet<>(c.getSegmentsList());
        segments.forEachLiveSegment(s -> ids.contains(segmentId(s)) ? markOffline(s, c.getNodeId()) : s);
        return null;
    }

    /** Whether a replica of {@code s} keeps every acknowledged record across an unclean restart: fsync mode. */
    private boolean keepsAcknowledgedOnRestart(Segment s) {
        Shard shard = shardByName.apply(s.getShard());
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
     * election never closes ahead ({@link FeatureRules#closeRefusal}), so this only guards.
     */
    private boolean uncleanAllowed(Segment s) {
        Shard shard = shardByName.apply(s.getShard());
        return shard != null && shard.getSettings().getUncleanLeaderElection() && s.getClosingVersion() == 0;
    }

    boolean alive(int nodeId) {
        StorageNode n = nodes.get(nodeId);
        return n != null && n.getState() == NodeState.ALIVE;
    }

    /** Alive and not shutting down: may lead and join an ISR. */
    boolean active(int nodeId) {
        StorageNode n = nodes.get(nodeId);
        return n != null && n.getState() == NodeState.ALIVE && !n.getShuttingDown();
    }

    /** Active and not decommissioned: may be placed on a new segment, and is preferred as a leader. */
    boolean placeable(int nodeId) {
        return active(nodeId) && !nodes.get(nodeId).getDecommissioned();
    }

    /**
     * An operator decommissions node {@code c.node_id} (or takes that back): see {@code StorageNode.decommissioned}
     * in meta.proto. Its leaderships move to placeable ISR members, each in a new epoch; a segment with none keeps
     * its leader. Answers {@link dev.segstore.protocol.meta.DecommissionNodeResponse}.
     */
    CommandResult decommissionNode(dev.segstore.protocol.meta.DecommissionNodeCommand c) {
        int id = c.getNodeId();
        StorageNode node = nodes.get(id);
        if (node == null) {
            return CommandResult.fail(ErrorCode.INVALID_ARGUMENT, "no storage node " + id + " is registered");
        }
        nodes.put(id, node.toBuilder().setDecommissioned(c.getDecommissioned()).build());
        if (c.getDecommissioned()) {
            segments.forEachLiveSegment(s -> {
                int next = s.getLeader() == id ? firstPlaceable(online(s, s.getIsrList()), id) : -1;
                // The decommissioned node is alive and serves reads from its lease until it hears of this.
                return next < 0 ? s : s.toBuilder().setLeader(next).setLeaderEpoch(s.getLeaderEpoch() + 1).setDeposedLeaderMayServe(true).build();
            });
        }
        int[] left = segments.leadershipsAndReplicas(id);
        return CommandResult.ok(dev.segstore.protocol.meta.DecommissionNodeResponse.newBuilder().setNode(nodes.get(id))
                .setLeaderships(left[0]).setReplicas(left[1]).build());
    }

    CommandResult fenceNode(FenceNodeCommand c) {
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
        segments.forEachLiveSegment(s -> {
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
     * active node does: the segment keeps its leader, as it would wait for it if it were fenced). The refusal, or
     * null once applied (the command is answered with the node's assignments after the change).
     */
    CommandResult controlledShutdown(dev.segstore.protocol.meta.ControlledShutdownCommand c) {
        int id = c.getNodeId();
        StorageNode node = nodes.get(id);
        if (node == null || node.getState() != NodeState.ALIVE || node.getIncarnation() != c.getIncarnation()) {
            return CommandResult.fail(ErrorCode.FENCED_EPOCH, "storage node " + id + " incarnation " + c.getIncarnation()
                    + " is not registered and alive: nothing to hand over");
        }
        nodes.put(id, node.toBuilder().setShuttingDown(true).build());
        segments.forEachLiveSegment(s -> {
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
        return null;
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

    Optional<String> checkReplicas(List<Integer> replicas, int count) {
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
    Optional<String> checkRollReplicas(List<Integer> replicas, int count, int minIsr) {
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

    /**
     * For placement, per placeable node ({@link #placeable}: alive, not shutting down, not decommissioned): [0] the
     * replicas of open segments it holds, [1] the open segments it leads. A new map and new arrays at each call (the
     * controller's placement changes them).
     */
    Map<Integer, int[]> load() {
        Map<Integer, int[]> load = new TreeMap<>();
        for (StorageNode n : nodes.values()) {
            if (placeable(n.getNodeId())) {
                load.put(n.getNodeId(), new int[2]);
            }
        }
        for (Segment open : segments.newestOfEachShard()) {
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

    /** The alive storage nodes whose incarnation {@code listed} does not name. */
    List<StorageNode> unlisted(List<dev.segstore.protocol.meta.NodeIncarnation> listed) {
        return nodes.values().stream().filter(n -> n.getState() == NodeState.ALIVE
                && listed.stream().noneMatch(l -> l.getNodeId() == n.getNodeId() && l.getIncarnation() == n.getIncarnation())).toList();
    }
}
