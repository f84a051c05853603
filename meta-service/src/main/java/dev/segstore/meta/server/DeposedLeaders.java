package dev.segstore.meta.server;

import dev.segstore.protocol.meta.LeaseWait;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.IntToLongFunction;

/**
 * Leaderships this meta leader moved away from a node that may still be alive (MoveLeaderCommand), and until when
 * that node may answer reads of the segment from its leader read lease (docs/architecture.md, "Leader read lease").
 * The new leader waits its own read.lease.ms after it learns that it leads, unless told less here
 * ({@code NodeAssignments.lease_waits}, {@code WatchAssignmentsResponse.lease_waits}):
 * <ul>
 *   <li>the old leader's lease began no later than its last heartbeat to this leader, counted once the move was
 *       applied (every answer that confirmed it as the leader was read from the state before the move, for a
 *       heartbeat counted before that read), so it ends by then + its read.lease.ms;</li>
 *   <li>once the old leader reports (applied_metadata_version) that it applied the state after the move, it has
 *       stepped down, and the new leader need not wait at all.</li>
 * </ul>
 * Both speak of the old leader only. So a move of a segment whose leadership was taken from a live leader before
 * ({@code deposed_leader_may_serve} already set) is noted only if that earlier leader is known to have stepped down
 * (the previous epoch's move, noted here, and its old leader's report); otherwise an earlier lease may still run,
 * and the new leader waits its whole lease, which outlasts any lease from before the move it learns of.
 * Soft state of one term: a new meta leader knows none of it, and new leaders then wait their whole lease.
 */
final class DeposedLeaders {
    private record Key(long shardId, long sequence, int epoch) {
    }

    private record Deposed(int from, long fromIncarnation, int to, long leaseEndsMs, long version, boolean released) {
    }

    /** A wait to tell node {@code to} of at once (its old leader stepped down). */
    record Release(int to, LeaseWait leaseWait) {
    }

    private final Map<Key, Deposed> deposed = new HashMap<>();
    /** How long after a lease ended its entry is kept (a new leader learning of its lead late is still told 0). */
    private final long keepMs;

    DeposedLeaders(long keepMs) {
        this.keepMs = keepMs;
    }

    /**
     * The move of segment ({@code shardId}, {@code sequence}) from node {@code from} to {@code to} in
     * {@code epoch} was applied, at metadata version {@code version} or below; {@code from}'s last heartbeat came
     * at {@code lastHeartbeatMs} and its read lease is {@code leaseMs} long. {@code deposedBefore}: the segment's
     * {@code deposed_leader_may_serve} was set before the move.
     */
    synchronized void moved(long shardId, long sequence, int epoch, int from, long fromIncarnation, int to, long lastHeartbeatMs,
                            long leaseMs, long version, boolean deposedBefore, Map<Integer, Long> applied, IntToLongFunction incarnations) {
        if (deposedBefore) {
            Deposed before = deposed.get(new Key(shardId, sequence, epoch - 1));
            if (before == null || !steppedDown(before, applied, incarnations)) {
                return; // a leader before `from` may still serve: not known here
            }
        }
        deposed.put(new Key(shardId, sequence, epoch), new Deposed(from, fromIncarnation, to, lastHeartbeatMs + leaseMs, version, false));
    }

    /**
     * The waits of the segments node {@code nodeId} took over, as of {@code nowMs}; {@code applied}: versions nodes
     * applied; {@code incarnations}: each node's registered incarnation.
     */
    synchronized List<LeaseWait> waitsOf(int nodeId, Map<Integer, Long> applied, IntToLongFunction incarnations, long nowMs) {
        deposed.values().removeIf(d -> nowMs - d.leaseEndsMs() > keepMs);
        List<LeaseWait> out = new ArrayList<>();
        deposed.forEach((k, d) -> {
            if (d.to() == nodeId) {
                out.add(wait(k, steppedDown(d, applied, incarnations) ? 0 : Math.max(0, d.leaseEndsMs() - nowMs)));
            }
        });
        return out;
    }

    /** Node {@code nodeId} reported applied versions {@code applied}: the waits its step-down ended, each told once. */
    synchronized List<Release> applied(int nodeId, Map<Integer, Long> applied, IntToLongFunction incarnations) {
        List<Release> out = new ArrayList<>();
        deposed.replaceAll((k, d) -> {
            if (d.from() != nodeId || d.released() || !steppedDown(d, applied, incarnations)) {
                return d;
            }
            out.add(new Release(d.to(), wait(k, 0)));
            return new Deposed(d.from(), d.fromIncarnation(), d.to(), d.leaseEndsMs(), d.version(), true);
        });
        return out;
    }

    /** Whether the move to {@code epoch} of the segment is noted here and its old leader stepped down. */
    synchronized boolean steppedDown(long shardId, long sequence, int epoch, Map<Integer, Long> applied, IntToLongFunction incarnations) {
        Deposed d = deposed.get(new Key(shardId, sequence, epoch));
        return d != null && steppedDown(d, applied, incarnations);
    }

    synchronized void clear() {
        deposed.clear();
    }

    /**
     * Whether the old leader reported a version at or above the move's: it applied assignments naming another
     * leader, and stepped down first thing (a node reporting 0, older than versions, is kept as MAX_VALUE by the
     * controller: not counted). Only the incarnation that was deposed counts: another process of the node id
     * (registered since) says nothing of the old one, which may live on elsewhere.
     */
    private static boolean steppedDown(Deposed d, Map<Integer, Long> applied, IntToLongFunction incarnations) {
        Long v = applied.get(d.from());
        return incarnations.applyAsLong(d.from()) == d.fromIncarnation() && v != null && v != Long.MAX_VALUE && v >= d.version();
    }

    private static LeaseWait wait(Key k, long remainingMs) {
        return LeaseWait.newBuilder().setShardId(k.shardId()).setSequence(k.sequence()).setLeaderEpoch(k.epoch())
                .setRemainingMs(remainingMs).build();
    }
}
