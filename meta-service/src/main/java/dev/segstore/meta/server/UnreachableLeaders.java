package dev.segstore.meta.server;

import dev.segstore.meta.state.MetaState;
import dev.segstore.protocol.meta.MoveLeaderCommand;
import dev.segstore.protocol.meta.Segment;
import dev.segstore.protocol.meta.SegmentStatus;
import dev.segstore.protocol.meta.ShardRoute;
import dev.segstore.protocol.meta.UnreachableLeader;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Followers' reports of an open segment's leader that answers none of their fetches (HeartbeatRequest.
 * unreachable_leaders), kept on the meta leader only (soft state: a new leader starts with none, and followers
 * report again with every heartbeat). Once every other alive, active ISR member whose copy is online has reported
 * the same leader in the same epoch within {@code validMs}, the leadership is moved to the first of them
 * ({@link MoveLeaderCommand}, epoch + 1, which the state machine checks again: the segment still open, the epoch
 * unchanged, the new leader in the ISR and placeable), and the old leader leaves the ISR in the same command (the new
 * leader's acknowledgements must not wait for a node no member hears; it joins again once it has caught up).
 *
 * <p>Safe whatever the reports say: an ISR member holds every acknowledged record, so any of them may lead, and the
 * old leader, deposed by the epoch, can acknowledge nothing more. What the rule guards against is a needless move
 * (a false failover): one follower cut off from the leader alone does not move it (the leader drops that follower
 * from the ISR instead); every other member must see the leader silent.
 */
final class UnreachableLeaders {
    private record Key(long shardId, long sequence, int leader, int epoch) {
    }

    private final long validMs;
    /** Per reported leader and epoch: reporter -> when it last reported (the controller's monotonic clock). */
    private final Map<Key, Map<Integer, Long>> reports = new HashMap<>();

    /** @param validMs how long a report counts (the session timeout: a follower reports with every heartbeat) */
    UnreachableLeaders(long validMs) {
        this.validMs = validMs;
    }

    /**
     * Records node {@code reporter}'s report {@code r} at {@code nowMs}; answers the move to propose once the
     * reports agree, else empty. A report that no longer matches the state (another leader or epoch, the segment
     * sealed, the reporter out of the ISR) is dropped.
     */
    synchronized Optional<MoveLeaderCommand> report(int reporter, UnreachableLeader r, MetaState state, long nowMs) {
        reports.values().forEach(m -> m.values().removeIf(t -> nowMs - t > validMs));
        reports.values().removeIf(Map::isEmpty);
        ShardRoute route = state.route(r.getShard());
        if (route == null || route.getSegmentsCount() == 0) {
            return Optional.empty();
        }
        Segment open = route.getSegments(route.getSegmentsCount() - 1);
        if (open.getStatus() != SegmentStatus.OPEN || open.getShardId() != r.getShardId() || open.getSequence() != r.getSequence()
                || open.getLeader() != r.getLeader() || open.getLeaderEpoch() != r.getLeaderEpoch() || reporter == r.getLeader()
                || !open.getIsrList().contains(reporter)) {
            return Optional.empty();
        }
        Key key = new Key(r.getShardId(), r.getSequence(), r.getLeader(), r.getLeaderEpoch());
        Map<Integer, Long> seen = reports.computeIfAbsent(key, k -> new HashMap<>());
        seen.put(reporter, nowMs);
        List<Integer> others = open.getIsrList().stream().filter(n -> n != open.getLeader() && !open.getOfflineReplicasList().contains(n)
                && state.node(n).map(Controller::active).orElse(false)).toList();
        if (others.isEmpty() || !seen.keySet().containsAll(others)) {
            return Optional.empty();
        }
        reports.remove(key); // one move per leader and epoch (a second would be refused: the epoch moved on)
        return Optional.of(MoveLeaderCommand.newBuilder().setShard(r.getShard()).setShardId(open.getShardId())
                .setSequence(open.getSequence()).setLeaderEpoch(open.getLeaderEpoch()).setTo(others.get(0)).setOldLeaderLeavesIsr(true).build());
    }

    /** Forgets every report (this node stopped leading the meta-service). */
    synchronized void clear() {
        reports.clear();
    }
}
