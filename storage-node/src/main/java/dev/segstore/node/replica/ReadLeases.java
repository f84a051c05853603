package dev.segstore.node.replica;

import dev.segstore.adapter.ErrorCode;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.function.LongSupplier;

/**
 * The read leases of one replica (docs/architecture.md, safety argument, "Leader read lease"): when it may answer
 * reads, and when its leader may acknowledge deletes, given that a replica the controller has moved on from may
 * not know it yet. Every time is on the partition's monotonic clock ({@code monotonicMs}, ms), read only where a
 * rule needs it, and {@code leaseMs} is {@code read.lease.ms}, the same on every node.
 * <ul>
 *   <li>A member of a sealed segment's ISR answers reads only while the heartbeat answer that last listed it in the
 *       ISR was sent within the lease ({@link #checkSealedRead}); its leader, once its ISR lost a member, holds
 *       the acknowledgement of deletes for a lease ({@link #holdDeletes}), so a member dropped without hearing of
 *       it stops before a delete it lacks is acknowledged.</li>
 *   <li>An open segment's leader answers reads only while a heartbeat answer sent within the lease named it the
 *       leader ({@link #checkLeaderRead}); a leader that took the lead from one that may still be alive serves
 *       nothing until that one's lease has ended ({@link #tookLead}, {@link #servesFromMs}).</li>
 * </ul>
 *
 * <p>Threads: not safe on its own; guarded by the partition's monitor, as the rest of its state.
 */
final class ReadLeases {
    private static final Logger LOG = LoggerFactory.getLogger(ReadLeases.class);

    private final String name;
    private final long leaseMs;
    private final LongSupplier monotonicMs;
    /**
     * When the heartbeat was sent whose answer last listed this replica in the ISR (at first when the replica was
     * opened, which the assignment that opens it overwrites at once). A replica of a sealed segment serves reads
     * only until {@code leaseMs} after it: a member dropped from the ISR while it could not hear of it (cut off
     * from the meta-service, its heartbeat answers lost) must stop before its leader acknowledges a delete that it
     * lacks, and the leader holds such acknowledgements for {@code leaseMs} after the drop
     * ({@link #deletesHeldUntilMs}). The fault schedules found deletes undone through such a member. Long.MIN_VALUE:
     * the latest assignment does not list it in the ISR. A sealed segment's follower outside it answers no read:
     * deletes are acknowledged once the ISR holds their tombstones, so one outside it may lack some, and would return
     * records deleted since (DELETE_UNDONE in the fault schedules: a reader whose route still named a fenced follower
     * in the ISR).
     */
    private long isrConfirmedAtMs;
    /**
     * Leader: deletes are not acknowledged before this time: {@code leaseMs} after its ISR lost a member, or after
     * it took the lead of an ISR smaller than the replicas (a member was dropped, maybe lately).
     */
    private long deletesHeldUntilMs = Long.MIN_VALUE;
    /**
     * Leader: before this time it acknowledges nothing and answers no read: it took the lead from a leader that may
     * still be alive and answer reads from its lease ({@code Segment.deposed_leader_may_serve}, {@link #tookLead}).
     * Long.MIN_VALUE: no wait.
     */
    private long servesFromMs = Long.MIN_VALUE;
    /**
     * Set for good when this node begins a controlled shutdown, before it asks to hand its leaderships over: as
     * leader of an open segment it answers no more reads, so a successor elected by that hand-over need not wait
     * for its lease to end.
     */
    private boolean leaderReadsStopped;

    ReadLeases(String name, long leaseMs, LongSupplier monotonicMs) {
        this.name = name;
        this.leaseMs = leaseMs;
        this.monotonicMs = monotonicMs;
        this.isrConfirmedAtMs = monotonicMs.getAsLong();
    }

    /** The segment's ISR as the controller last assigned it ({@code inIsr}: it lists this replica), in the answer to a call sent at {@code sentAtMs}. */
    void assignedIsr(boolean inIsr, long sentAtMs) {
        this.isrConfirmedAtMs = inIsr ? sentAtMs : Long.MIN_VALUE;
    }

    /**
     * A read of a sealed segment, now: refused UNAVAILABLE by a follower ({@code follower}) the latest assignment left
     * out of the ISR, and by any replica whose membership was not confirmed within the lease.
     */
    void checkSealedRead(boolean follower) {
        if (follower && isrConfirmedAtMs == Long.MIN_VALUE) {
            throw new ReplicaException(ErrorCode.UNAVAILABLE, name + ": not in the ISR of this sealed segment as last assigned: "
                    + "it may lack acknowledged deletes; read another member");
        }
        if (isrConfirmedAtMs == Long.MIN_VALUE || monotonicMs.getAsLong() - isrConfirmedAtMs > leaseMs) {
            throw new ReplicaException(ErrorCode.UNAVAILABLE, name + ": no heartbeat answer sent within read.lease.ms = " + leaseMs
                    + " ms confirmed this replica in the sealed segment's ISR: it may have been dropped and lack acknowledged deletes;"
                    + " read another member");
        }
    }

    /**
     * The leader read lease of an open segment's leader in {@code epoch}, now. The controller may hand
     * the lead to another ISR member while this one still takes itself for the leader: cut off from its followers
     * and the meta-service, or paused. The new leader then takes writes that readers see, while this one would
     * answer a reader whose route still names it up to its own high watermark: a read that ends below records an
     * earlier read returned (UNSTABLE_READ in the process fault campaign). So it answers only while a heartbeat sent
     * within {@code leaseMs} was answered with an assignment that lists it as the leader in this epoch (the ISR it
     * is in, applied after the role), and a new leader that took the lead from a leader that may be alive waits that
     * long before it serves ({@link #servesFromMs}); fences (no heartbeat for the session timeout, the process gone,
     * storage offline) and controlled shutdowns ({@link #stopLeaderReads}) need no wait.
     */
    void checkLeaderRead(int epoch) {
        long nowMs = monotonicMs.getAsLong();
        if (leaderReadsStopped) {
            throw new ReplicaException(ErrorCode.UNAVAILABLE, name + ": this node is shutting down and hands its leaderships over;"
                    + " ask the meta-service for the new leader");
        }
        if (nowMs < servesFromMs) {
            throw new ReplicaException(ErrorCode.UNAVAILABLE, name + ": leader in epoch " + epoch + " for " + (servesFromMs - nowMs)
                    + " ms more serves nothing: the leader it replaced may still answer reads from its lease (read.lease.ms = "
                    + leaseMs + "); retry");
        }
        if (isrConfirmedAtMs == Long.MIN_VALUE || nowMs - isrConfirmedAtMs > leaseMs) {
            throw new ReplicaException(ErrorCode.UNAVAILABLE, name + ": no heartbeat answer sent within read.lease.ms = "
                    + leaseMs + " ms confirmed this replica as the open segment's leader in epoch " + epoch
                    + ": another may lead it now; ask the meta-service again");
        }
    }

    /**
     * Took the lead in {@code epoch} at {@code nowMs}, serving nothing (no acknowledgement, no read) for
     * {@code predecessorLeaseMs} from now (0: no wait): the leader it replaces may still answer reads from its lease
     * until then.
     */
    void tookLead(int epoch, long nowMs, long predecessorLeaseMs) {
        this.servesFromMs = predecessorLeaseMs > 0 ? nowMs + predecessorLeaseMs : Long.MIN_VALUE;
        if (predecessorLeaseMs > 0) {
            LOG.info("{}: leader in epoch {}: serves nothing for {} ms, while the leader it replaced may still answer reads from its lease",
                    name, epoch, predecessorLeaseMs);
        }
    }

    /**
     * The meta leader says the leader replaced in {@code epoch} answers reads from its lease for at most
     * {@code remainingMs} more (0: it stepped down): the wait ({@link #servesFromMs}) ends then if that is sooner.
     * Counted from now, after the answer was made, so never before the old lease ends. Returns whether the wait was
     * shortened.
     */
    boolean predecessorLeaseEndsIn(int epoch, long remainingMs) {
        if (servesFromMs == Long.MIN_VALUE) {
            return false;
        }
        long nowMs = monotonicMs.getAsLong();
        if (nowMs + remainingMs >= servesFromMs) {
            return false;
        }
        LOG.debug("{}: the leader replaced in epoch {} serves for {} ms more at most; waiting that long, not {} ms", name, epoch,
                Math.max(0, remainingMs), servesFromMs - nowMs);
        servesFromMs = nowMs + Math.max(0, remainingMs);
        return true;
    }

    /** A controlled shutdown begins: as an open segment's leader this replica answers no more reads ({@link #checkLeaderRead}). */
    void stopLeaderReads() {
        leaderReadsStopped = true;
    }

    /**
     * Leader: acknowledges no delete before {@code leaseMs} from {@code nowMs}: a member that left the ISR without
     * hearing of it serves sealed reads until its lease ends ({@link #isrConfirmedAtMs}), and would return the
     * records such a delete removed.
     */
    void holdDeletes(long nowMs) {
        deletesHeldUntilMs = Math.max(deletesHeldUntilMs, nowMs + leaseMs);
    }

    /** Leader: the time before which it serves nothing ({@link #tookLead}); Long.MIN_VALUE: no wait. */
    long servesFromMs() {
        return servesFromMs;
    }

    /** Leader: the time before which it acknowledges no delete ({@link #holdDeletes}); Long.MIN_VALUE: no hold. */
    long deletesHeldUntilMs() {
        return deletesHeldUntilMs;
    }
}
