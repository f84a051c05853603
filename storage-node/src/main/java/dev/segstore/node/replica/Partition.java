package dev.segstore.node.replica;

import dev.segstore.adapter.ErrorCode;
import dev.segstore.log.AppendRecord;
import dev.segstore.log.AppendResult;
import dev.segstore.log.Durability;
import dev.segstore.log.FileSlice;
import dev.segstore.log.LogException;
import dev.segstore.log.LogRecord;
import dev.segstore.log.SegmentLog;
import dev.segstore.log.epoch.EpochEndOffset;
import dev.segstore.log.format.BatchView;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;

/**
 * One segment replica on this node and its part in leader→follower replication with an in-sync replica set,
 * as docs/architecture.md describes:
 * <ul>
 *   <li>As <b>leader</b> it appends (the log assigns offsets), learns each follower's log end from its fetches,
 *       keeps the high watermark at the minimum log end over the ISR (the larger set while a change is
 *       pending), and acknowledges a write only once the high watermark covers it and the ISR has at least
 *       {@code minInSyncReplicas} members. Retried batches (same producer id and sequence) are answered with
 *       their original offsets. Followers that lag for {@code maxLagMs} are proposed out of the ISR; followers
 *       that catch up are proposed back in.</li>
 *   <li>As <b>follower</b> it first truncates to the end of its last epoch that the leader knows
 *       (leader-epoch truncation), then appends the leader's batches byte for byte.</li>
 *   <li>Consumers never read above the high watermark.</li>
 * </ul>
 *
 * <p>Time: every duration it decides on (how long a follower has not been caught up, how old the open segment
 * is) is read from a monotonic clock ({@code monotonicMs}, System.nanoTime based in a node): a wall clock that
 * NTP or an operator steps forward would shrink every ISR at once, and one stepped back would keep a dead
 * follower in it. Record timestamps are the producers' and never compared with it.
 *
 * <p>Threads: the storage node calls it from the shard's owner thread (requests), its control thread
 * (assignments, the ISR tick) and its fetcher threads (follower rounds); completions of log, fetch and
 * controller futures come back on other threads. All state is guarded by the partition's monitor. Methods
 * that wait on something else take it only around their state: {@link #truncateToLeader} while it asks the
 * leader and truncates, {@link #fetchOnceAsync} while the fetch is out, {@link #fetchSliceForFollower} and
 * {@link #readForConsumer} while they read the log (the log allows concurrent reads); answers that come back
 * are checked against the state again under the monitor before they change anything.
 */
public final class Partition {
    private static final Logger LOG = LoggerFactory.getLogger(Partition.class);

    public enum Role { NONE, LEADER, FOLLOWER }

    private static final int MAX_TOMBSTONES_PER_FETCH = 10_000;

    private record Waiter(long lastOffset, long baseOffset, CompletableFuture<AppendResult> future) {
    }

    private final String name;
    private final SegmentLog log;
    private final int localId;
    private final ReplicaConfig config;
    /** Monotonic time, ms (arbitrary origin): the lag and segment-age decisions. */
    private final LongSupplier monotonicMs;
    private final IsrProposer proposer;
    /** The producers' batches in the log, for answering retries; guarded by this monitor. */
    private final ProducerHistory producers;
    /** Bytes of the log's tail read back to rebuild the producer state after a restart (retries come soon). */
    static final long PRODUCER_STATE_SCAN_BYTES = 16 << 20;
    private final Map<Integer, FollowerProgress> followers = new HashMap<>();
    /**
     * Leader: when the controller last refused a follower's joining the ISR (it is shutting down, or not alive): it is
     * not proposed again for {@code maxLagMs}, rather than at every fetch it makes while it stays caught up.
     */
    private final Map<Integer, Long> joinRefusedAtMs = new HashMap<>();
    private final TreeMap<Long, List<Waiter>> waiting = new TreeMap<>();
    private final Tombstones tombstones;
    /** Deletes waiting for the tombstone watermark: key = the tombstone end that acknowledges them. */
    private final TreeMap<Long, List<Runnable>> deletesWaiting = new TreeMap<>();
    /**
     * Leader: deletes that found nothing to delete, each waiting for a fetch request of every ISR member that arrived
     * after it ({@link #delete}); in the order they came.
     */
    private final List<EmptyDelete> emptyDeletesWaiting = new ArrayList<>();
    /** Leader, per follower: when its latest fetch request arrived, on this replica's clock (a held fetch taken again is not a new one). */
    private final Map<Integer, Long> fetchArrivedAtMs = new HashMap<>();

    /** A delete that found nothing, asked at {@code askedAtMs}, answered once the tombstone watermark reaches {@code end}. */
    private record EmptyDelete(long askedAtMs, long end, Runnable complete) {
    }
    private long tombstoneWatermark;
    /** Follower: the tombstone position to fetch from (0 after every new epoch: the leader's list is re-read). */
    private long tombstoneCursor;

    /** Written under this object's monitor; volatile so that {@link #role()} reads it without the monitor. */
    private volatile Role role = Role.NONE;
    private int leaderEpoch = -1;
    private int leaderId = -1;
    private List<Integer> replicas = List.of();
    private List<Integer> isr = List.of();
    private int isrVersion;
    /** Leader: the ISR change proposed and not settled yet, counted beside {@link #isr} meanwhile. */
    private final PendingIsrChange pendingIsr = new PendingIsrChange();
    /**
     * Follower: whether the log was truncated against the current leader (leader-epoch truncation) since this
     * replica last became a follower or was told it is ahead of the leader. Fetching and sealing wait for it.
     */
    private boolean reconciled;
    /** Follower: bumped at every reason to truncate again, so a truncation that ran meanwhile does not count. */
    private long followerGeneration;

    /** When this replica may answer reads, and its leader acknowledge deletes; guarded by this monitor. */
    private final ReadLeases leases;
    /** Leader: the earliest time (monotonic ms) a look at held writes and deletes is scheduled for; Long.MIN_VALUE: none. */
    private long wakeAtMs = Long.MIN_VALUE;

    private long highWatermark;
    /**
     * Leader: the log end when it took the lead in its epoch. An earlier leader may have acknowledged anything
     * below it, so reads wait until the high watermark has reached it ({@link #readableHighWatermark()}).
     */
    private long leaderEpochStart;
    /** Whether the high watermark moved since this replica last became leader (a DEBUG line marks the first move). */
    private boolean highWatermarkMovedInEpoch;
    private final SegmentRoll roll = new SegmentRoll();
    /** {@link #sealRecorded()}: set once, by the first {@link #markSealed}. */
    private volatile boolean sealRecorded;
    private int closeRequests;

    /** Asks the controller to seal this segment at {@code endOffset} and open the next one. */
    @FunctionalInterface
    public interface Roller {
        CompletableFuture<Void> roll(int leaderEpoch, long endOffset);

        /** Close ahead: asks the controller to mark the segment closing; completes once it committed. */
        default CompletableFuture<Void> closeAhead(int leaderEpoch) {
            return CompletableFuture.failedFuture(new UnsupportedOperationException("close ahead"));
        }

        /**
         * Close ahead: whether the controller knows this segment, so that a close may be asked: not while it was taken
         * ahead of the seal of the segment before it and that seal is not known recorded (the controller would refuse
         * the close as unknown, for good). Called under the partition's monitor: it must take no other.
         */
        default boolean closable() {
            return true;
        }

        /**
         * Close ahead: the leader in {@code leaderEpoch} ended the closing segment at {@code endOffset}, which every
         * ISR member holds ({@code isr}, with any change still pending, at {@code isrVersion}); the next segment is to
         * be led from there, counting {@code isr} (called under the partition's monitor: it must not wait).
         */
        default void handOver(int leaderEpoch, long endOffset, List<Integer> isr, int isrVersion) {
        }
    }

    public Partition(String name, SegmentLog log, int localId, ReplicaConfig config, LongSupplier monotonicMs, IsrProposer proposer) {
        this(name, log, new Tombstones(Tombstones.Store.NONE), localId, config, monotonicMs, proposer);
    }

    public Partition(String name, SegmentLog log, Tombstones tombstones, int localId, ReplicaConfig config, LongSupplier monotonicMs,
                     IsrProposer proposer) {
        this(name, log, tombstones, localId, config, monotonicMs, proposer, PRODUCER_STATE_SCAN_BYTES);
    }

    /** As above, reading back the producer state from the last {@code producerScanBytes} of the log at first. */
    public Partition(String name, SegmentLog log, Tombstones tombstones, int localId, ReplicaConfig config, LongSupplier monotonicMs,
                     IsrProposer proposer, long producerScanBytes) {
        this.producers = new ProducerHistory(name, log, this, producerScanBytes);
        this.name = name;
        this.tombstones = tombstones;
        this.log = log;
        this.localId = localId;
        this.config = config;
        this.monotonicMs = monotonicMs;
        this.leases = new ReadLeases(name, config.readLeaseMs(), monotonicMs);
        this.proposer = proposer;
    }

    /**
     * The producer state of this replica as bytes for {@link #restoreProducers} after a restart, or null unless it
     * knows every batch of the log (it read the whole log back, restored a complete state, or began with an empty
     * log) and the log is online. Taken when the node stops cleanly, once no more appends come: then a restarted
     * leader recognises retries of older batches without reading its log back. Format: the log end offset (i64),
     * then {@link ProducerStateTable#toBytes()}.
     */
    public synchronized byte[] producerSnapshot() {
        return producers.snapshot();
    }

    /**
     * Takes the producer state {@link #producerSnapshot()} saved, before anything else happened to this replica;
     * used only if the log still ends where it ended then (a crash after the stop that lost unsynced bytes, or a
     * replaced disk, changes that). Returns whether it was used.
     */
    public synchronized boolean restoreProducers(byte[] snapshot) {
        return producers.restore(snapshot);
    }

    /**
     * Without the monitor: asked every round by each fetch loop and on every heartbeat, it must not wait behind an
     * append that holds the monitor while it forces the leader-epoch file (a follower's first append in a new epoch).
     */
    public Role role() {
        return role;
    }

    /**
     * Sets when the leader rolls: at {@code segmentBytes}, or {@code segmentMs} after the first write it took
     * in this segment (checked by {@link #maybeRetryRoll}).
     */
    public synchronized void configureRoll(long segmentBytes, long segmentMs, Roller roller) {
        roll.configure(segmentBytes, segmentMs, roller);
    }

    /**
     * Close ahead (docs/architecture.md, "Close ahead"): the leader asks the controller to close the segment once it
     * holds {@code closeAtBytes} ({@link Roller#closeAhead}), and, once closed and full, hands the shard over to the
     * next segment without waiting for the seal to commit ({@link Roller#handOver}).
     */
    public synchronized void configureCloseAhead(long closeAtBytes) {
        roll.configureCloseAhead(closeAtBytes);
    }

    /** Whether this replica would take a write now: it leads, and its segment is not full, sealing or closing to hand over (tests). */
    public synchronized boolean takesWrites() {
        return role == Role.LEADER && !roll.refusesWrites();
    }

    /**
     * The controller committed the close of this segment (learnt from this leader's close request in {@code epoch},
     * or from an assignment in {@code epoch}). A leader that did not ask in that epoch takes no more writes here.
     */
    public synchronized void markClosing(int epoch) {
        if (roll.isClosing()) {
            return;
        }
        roll.closing(role == Role.LEADER && epoch == leaderEpoch, leaderEpoch, monotonicMs.getAsLong());
        if (role == Role.LEADER && roll.refusesWrites()) {
            LOG.info("{}: closing, at offset {}", name, log.logEndOffset());
        }
        maybeAdvanceHighWatermark();
    }

    private void maybeAskToClose() {
        if (log.sizeInBytes() < roll.closeAtBytes() || roll.closeAsked()) {
            return; // (the clock is not read, nor the roller asked: most appends stop here)
        }
        int epoch = leaderEpoch;
        Roller roller = roll.roller();
        if (roller == null || !roller.closable() || !roll.dueToClose(log.sizeInBytes(), epoch, monotonicMs.getAsLong())) {
            return;
        }
        LOG.debug("{}: asking the controller to close ahead at offset {}", name, log.logEndOffset());
        closeRequests++;
        roller.closeAhead(epoch).whenComplete((v, e) -> onCloseAnswer(epoch, e));
    }

    private synchronized void onCloseAnswer(int epoch, Throwable e) {
        if (e != null) {
            Throwable cause = e instanceof java.util.concurrent.CompletionException && e.getCause() != null ? e.getCause() : e;
            boolean refused = cause instanceof ReplicaException re && re.code() == ErrorCode.INVALID_ARGUMENT;
            LOG.debug("{}: asking to close ahead failed{}: {}", name, refused ? " for good (it rolls as before)" : "", cause.toString());
            roll.closeFailed(refused ? Long.MAX_VALUE : monotonicMs.getAsLong());
            return;
        }
        markClosing(epoch);
    }

    /** Whether the controller committed this segment's close (close ahead), as this replica learnt it (tests). */
    public synchronized boolean closingCommitted() {
        return roll.isClosing();
    }

    /**
     * Whether this replica has learnt that the controller recorded this segment's seal ({@link #markSealed}: taken, or
     * pending while a follower catches up). Read without the monitor: a caller may hold another partition's.
     */
    public boolean sealRecorded() {
        return sealRecorded;
    }

    /** How many times this leader asked to close its segment (close ahead; tests). */
    public synchronized int closeRequests() {
        return closeRequests;
    }

    /** Wakes the followers' held fetches (they answer with what there is now, and the next segment if named). */
    public synchronized void wakeFollowers() {
        wakeFetchers();
    }

    /** The end offset this segment was sealed at, or -1 while it is open. */
    public synchronized long sealedEnd() {
        return roll.sealedEnd();
    }

    /**
     * The end the controller sealed this segment at, as this replica knows it: taken, or still pending (a
     * follower catching up with it, whose high watermark is below it then); -1 while it is open as far as this
     * replica knows. Readers use it to tell "the end of this segment" from "the end of the shard".
     */
    public synchronized long knownSealEnd() {
        return roll.sealedEnd() >= 0 ? roll.sealedEnd() : roll.pendingSealAt();
    }

    public synchronized long highWatermark() {
        return highWatermark;
    }

    /**
     * Where this segment ends, or may end, for answers that tell a client whether later segments exist
     * (node.proto, {@code sealed}): the known seal ({@link #knownSealEnd()}); else, for a leader that is sealing
     * (full or old, it takes no more writes and has asked, or is about to ask, the controller to seal), its log
     * end: the seal may have committed while its answer was lost, and a client whose route calls this segment
     * open must then look at a fresh route rather than take this segment's end for the shard's (the fault
     * schedules found deletes by key that never reached the next segment: DELETE_UNDONE); -1 while open.
     */
    public synchronized long mayBeSealedAt() {
        long known = knownSealEnd();
        if (known >= 0) {
            return known;
        }
        return role == Role.LEADER && roll.refusesWrites() ? log.logEndOffset() : -1;
    }

    /** {@link #readableHighWatermark(int)} for a reader whose route names no epoch. */
    public long readableHighWatermark() {
        return readableHighWatermark(-1);
    }

    /**
     * The high watermark reads may be answered up to (consumer reads, key and tag look-ups, timestamps, deletes),
     * or a retriable refusal where this replica's watermark may lag what was acknowledged and an answer capped
     * there would say "the end" below records another read has returned, or that were acknowledged before the
     * read started, or would return records deleted since (all found by the fault schedules,
     * {@code FaultScheduleProperties}). A leader whose data directory went offline answers NOT_LEADER: the
     * controller fences it for that and another replica leads, but until it is told it still takes itself for
     * the leader (a delete that found nothing to do was answered at once). For a segment this replica holds open:
     * <ul>
     *   <li>a reader whose route says this replica leads it in epoch {@code routeEpoch}, when this replica does
     *       not: UNAVAILABLE if its own epoch is older (it has not been told of the leader change yet: a
     *       follower's watermark is a fetch behind, and it may be the new leader still following), NOT_LEADER
     *       with the leader it knows if not (the reader's route is stale: this replica follows now, and its
     *       watermark and deletes lag the leader's);</li>
     *   <li>a leader whose watermark has not reached the log end it took the lead at: an earlier leader may have
     *       acknowledged anything below it, and a restarted replica's watermark starts at 0 (Kafka answers
     *       OFFSET_NOT_AVAILABLE there): UNAVAILABLE, until one fetch round of its ISR brings it there.</li>
     * </ul>
     *
     * @param routeEpoch the segment's leader epoch in the route of a reader that takes this replica for its
     *                   leader ({@code SegmentRef.route_epoch}), or -1 for a reader that reads any replica
     */
    public synchronized long readableHighWatermark(int routeEpoch) {
        if (role == Role.LEADER && !log.isOnline()) {
            throw offline(); // fenced for it, or about to be: what it holds may be behind its successor's
        }
        if (knownSealEnd() >= 0) {
            leases.checkSealedRead(role != Role.LEADER);
        }
        if (role == Role.LEADER && knownSealEnd() < 0) {
            leases.checkLeaderRead(leaderEpoch); // the leader read lease
        }
        if (knownSealEnd() < 0 && routeEpoch >= 0 && (role != Role.LEADER || leaderEpoch != routeEpoch)) {
            if (routeEpoch > leaderEpoch) {
                throw new ReplicaException(ErrorCode.UNAVAILABLE, name + ": the reader's route names leader epoch " + routeEpoch
                        + ", this replica knows epoch " + leaderEpoch + " only; retry");
            }
            throw notLeader();
        }
        if (role == Role.LEADER && highWatermark < leaderEpochStart && roll.sealedEnd() < 0) {
            throw new ReplicaException(ErrorCode.UNAVAILABLE, name + ": leader in epoch " + leaderEpoch + " since offset "
                    + leaderEpochStart + ", its high watermark " + highWatermark + " has not reached it yet; retry");
        }
        return highWatermark;
    }

    /**
     * The meta leader says the leader this replica replaced in {@code epoch} answers reads from its lease for at most
     * {@code remainingMs} more (0: it stepped down): this replica's wait ({@link ReadLeases#predecessorLeaseEndsIn})
     * ends then if that is sooner.
     */
    public synchronized void predecessorLeaseEndsIn(int epoch, long remainingMs) {
        if (role != Role.LEADER || leaderEpoch != epoch) {
            return;
        }
        if (leases.predecessorLeaseEndsIn(epoch, remainingMs)) {
            maybeAdvanceHighWatermark();
        }
    }

    /** A controlled shutdown begins: as an open segment's leader this replica answers no more reads ({@link ReadLeases#checkLeaderRead}). */
    public synchronized void stopLeaderReads() {
        leases.stopLeaderReads();
    }

    public synchronized List<Integer> isr() {
        return isr;
    }

    public synchronized int isrVersion() {
        return isrVersion;
    }

    public synchronized int leaderEpoch() {
        return leaderEpoch;
    }

    /** What monitoring and admin tools want of this replica, read at once under the monitor. */
    public synchronized PartitionStatus status() {
        List<FollowerProgress> progress = role == Role.LEADER ? List.copyOf(new TreeMap<>(followers).values()) : List.of();
        return new PartitionStatus(role, leaderEpoch, log.logEndOffset(), highWatermark, replicas.size(), isr,
                config.minInSyncReplicas(), roll.sealedEnd() >= 0, progress, monotonicMs.getAsLong());
    }

    public SegmentLog log() {
        return log;
    }

    /** This replica's log end as it counts for the high watermark: durable or written, per the shard's mode. */
    private long countedLogEnd() {
        return config.durability() == Durability.FSYNC ? log.durableEndOffset() : log.writtenEndOffset();
    }

    // ---- role changes --------------------------------------------------------------------------------------

    /** Takes leadership in {@code epoch} (from the controller's assignment). An older epoch is refused. */
    public synchronized void becomeLeader(int epoch, List<Integer> replicas, List<Integer> isr, int isrVersion) {
        becomeLeader(epoch, replicas, isr, isrVersion, 0);
    }

    /**
     * As {@link #becomeLeader(int, List, List, int)}, serving nothing (no acknowledgement, no read) for
     * {@code predecessorLeaseMs} from now: the leader it replaces may still answer reads from its lease until then
     * ({@link ReadLeases#tookLead}). Counted from when this replica learns that it leads, which is after the controller
     * committed the change, so after the last heartbeat answer that confirmed the old leader was read.
     */
    public synchronized void becomeLeader(int epoch, List<Integer> replicas, List<Integer> isr, int isrVersion, long predecessorLeaseMs) {
        checkEpoch(epoch);
        long now = monotonicMs.getAsLong();
        leases.tookLead(epoch, now, predecessorLeaseMs);
        roll.tookLead(epoch);
        this.role = Role.LEADER;
        this.leaderEpoch = epoch;
        this.leaderId = localId;
        this.replicas = List.copyOf(replicas);
        this.isr = List.copyOf(isr);
        this.isrVersion = isrVersion;
        this.leaderEpochStart = log.logEndOffset();
        this.highWatermarkMovedInEpoch = false;
        if (this.isr.size() < this.replicas.size()) {
            leases.holdDeletes(now); // a member was dropped, perhaps just now, and may not know it yet
        }
        pendingIsr.settle();
        followers.clear();
        joinRefusedAtMs.clear();
        fetchArrivedAtMs.clear();
        for (int r : replicas) {
            if (r != localId) {
                followers.put(r, FollowerProgress.unknown(r, now));
            }
        }
        try {
            // The epoch starts at the log end now, before any write in it (Kafka's makeLeader does the same): a
            // replica asking where its own newer, unreplicated epoch ends learns it at once, not only once this
            // leader has written (until then the answer was "undefined" and it cut back to its high watermark).
            log.assignEpochAtEnd(epoch);
        } catch (LogException e) {
            LOG.warn("{}: recording the start of epoch {} failed: {}", name, epoch, e.toString());
        }
        LOG.info("{}: leader in epoch {}, ISR {} (v{}), log end {}, high watermark {}", name, epoch, isr, isrVersion,
                log.logEndOffset(), highWatermark);
        maybeAdvanceHighWatermark();
    }

    /**
     * The segment's ISR as the controller last assigned it, in the answer to a call sent at {@code sentAtMs} (this
     * partition's monotonic clock; see {@link #readableHighWatermark(int)}).
     */
    public synchronized void assignedIsr(List<Integer> isr, long sentAtMs) {
        leases.assignedIsr(isr.contains(localId), sentAtMs);
    }

    /** Follows {@code leader} in {@code epoch}; writes waiting for acknowledgement fail with NOT_LEADER. */
    public synchronized void becomeFollower(int epoch, int leader) {
        checkEpoch(epoch);
        this.role = Role.FOLLOWER;
        this.leaderEpoch = epoch;
        this.leaderId = leader;
        pendingIsr.settle();
        this.reconciled = false;
        this.followerGeneration++;
        try {
            // An epoch this replica led without writing in it (the new leader never saw it) goes; the epoch it now
            // follows, written ahead (close ahead), stays.
            log.dropEmptyEpochsBut(epoch);
        } catch (LogException e) {
            LOG.warn("{}: dropping empty epochs failed: {}", name, e.toString());
        }
        this.tombstoneCursor = 0;
        followers.clear();
        wakeFetchers(); // followers' fetches held here come back at once, and hear that this replica leads no more
        failWaiting(new ReplicaException(ErrorCode.NOT_LEADER, name + ": leadership moved to node " + leader
                + " in epoch " + epoch + " before the write was acknowledged", leader, epoch));
        List<Runnable> deletes = new ArrayList<>();
        deletesWaiting.values().forEach(deletes::addAll);
        deletesWaiting.clear();
        emptyDeletesWaiting.forEach(d -> deletes.add(d.complete()));
        emptyDeletesWaiting.clear();
        deletes.forEach(Runnable::run); // each sees the role change and fails NOT_LEADER
    }

    private void checkEpoch(int epoch) {
        if (epoch < leaderEpoch) {
            throw new ReplicaException(ErrorCode.FENCED_EPOCH, name + ": epoch " + epoch + " is older than " + leaderEpoch);
        }
    }

    private ReplicaException notLeader() {
        return new ReplicaException(ErrorCode.NOT_LEADER, name + ": node " + localId + " is not the leader"
                + (leaderId >= 0 ? "; node " + leaderId + " leads epoch " + leaderEpoch : ""), leaderId, leaderEpoch);
    }

    // ---- leader: produce -----------------------------------------------------------------------------------

    /**
     * Appends a batch as leader. The future completes once the batch is under the high watermark with at least
     * {@code minInSyncReplicas} in the ISR, or fails: NOT_LEADER, NOT_ENOUGH_REPLICAS, OVERLOADED (queue full),
     * INVALID_ARGUMENT (out-of-order producer sequence).
     */
    public synchronized CompletableFuture<AppendResult> append(List<AppendRecord> records, long producerId, int baseSequence) {
        return append(records, producerId, baseSequence, false);
    }

    /**
     * As {@link #append(List, long, int)}; {@code mayBeDuplicate}: the writer sent this batch before and does not
     * know whether it was applied (ProduceRequest.may_be_duplicate).
     */
    public synchronized CompletableFuture<AppendResult> append(List<AppendRecord> records, long producerId, int baseSequence,
                                                               boolean mayBeDuplicate) {
        return append(records.size(), producerId, baseSequence, mayBeDuplicate,
                () -> log.appendAsLeader(records, leaderEpoch, producerId, baseSequence, config.durability()));
    }

    /**
     * As {@link #append(List, long, int)}, for a batch its writer encoded ({@code RecordBatch.encode}, any
     * offsets): the log checks every record and stamps the offsets, this leader's epoch and the producer fields
     * into it, and stores its bytes as they are. A damaged batch fails INVALID_ARGUMENT, nothing written.
     */
    public synchronized CompletableFuture<AppendResult> appendEncoded(ByteBuffer batch, long producerId, int baseSequence) {
        return appendEncoded(batch, producerId, baseSequence, false);
    }

    /** As {@link #appendEncoded(ByteBuffer, long, int)}, with {@code mayBeDuplicate} as {@link #append(List, long, int, boolean)} takes it. */
    public synchronized CompletableFuture<AppendResult> appendEncoded(ByteBuffer batch, long producerId, int baseSequence,
                                                                      boolean mayBeDuplicate) {
        BatchView view = BatchView.at(batch);
        try {
            view.verify();
        } catch (dev.segstore.log.format.FormatException e) {
            return CompletableFuture.failedFuture(new ReplicaException(ErrorCode.INVALID_ARGUMENT, name
                    + ": the batch to produce is damaged: " + e.getMessage()).notApplied());
        }
        return append(view.recordCount(), producerId, baseSequence, mayBeDuplicate,
                () -> log.appendEncodedAsLeader(batch, leaderEpoch, producerId, baseSequence, config.durability()));
    }

    private CompletableFuture<AppendResult> append(int count, long producerId, int baseSequence, boolean mayBeDuplicate,
                                                   java.util.function.Supplier<CompletableFuture<AppendResult>> logAppend) {
        // Refusals before the append are marked "not applied": nothing was written.
        if (role != Role.LEADER) {
            return CompletableFuture.failedFuture(notLeader().notApplied());
        }
        if (!log.isOnline()) {
            return CompletableFuture.failedFuture(offline());
        }
        producers.load();
        if (roll.refusesWrites()) {
            return CompletableFuture.failedFuture(new ReplicaException(ErrorCode.NOT_LEADER, name
                    + ": this segment is full and being sealed; refresh the route and write to the next segment", -1, leaderEpoch).notApplied().rolling());
        }
        if (isr.size() < config.minInSyncReplicas()) {
            return CompletableFuture.failedFuture(new ReplicaException(ErrorCode.NOT_ENOUGH_REPLICAS, name + ": ISR "
                    + isr + " has fewer than min.insync.replicas = " + config.minInSyncReplicas() + " members").notApplied());
        }
        ProducerStateTable.Check check = producers.check(producerId, baseSequence, count);
        if (check instanceof ProducerStateTable.New && mayBeDuplicate && producerId >= 0 && producers.olderUnread()) {
            // The batch may lie before the tail read back: this write waits for the rest of the log to be read (off
            // this thread; other writes go on meanwhile), then is taken again from the start, every check included.
            return producers.readOlder().thenCompose(read -> appendAfterReadBack(count, producerId, baseSequence, logAppend));
        }
        if (check instanceof ProducerStateTable.OutOfOrder o) {
            return CompletableFuture.failedFuture(new ReplicaException(ErrorCode.INVALID_ARGUMENT, name + ": " + o.reason()).notApplied());
        }
        if (check instanceof ProducerStateTable.Duplicate d) {
            return answerRetry(d); // a retry: append nothing
        }
        CompletableFuture<AppendResult> acked = new CompletableFuture<>();
        long base = log.logEndOffset();
        CompletableFuture<AppendResult> local;
        try {
            local = logAppend.get();
        } catch (LogException e) {
            return CompletableFuture.failedFuture(e);
        }
        AppendResult immediate = local.getNow(null);
        if (immediate != null && immediate.status() == AppendResult.Status.QUEUE_FULL) {
            return CompletableFuture.failedFuture(new ReplicaException(ErrorCode.OVERLOADED, name + ": the data directory's write queue is full").notApplied());
        }
        producers.record(producerId, baseSequence, count, base);
        waitFor(new Waiter(base + count - 1, base, acked));
        if (roll.afterAppend(log.sizeInBytes(), monotonicMs.getAsLong())) {
            // no more writes here; the roll goes out once the ISR has everything
            LOG.info("{}: segment full at offset {}, sealing", name, log.logEndOffset());
        }
        maybeAskToClose();
        local.whenComplete((r, e) -> {
            if (e != null) {
                acked.completeExceptionally(e);
                onLocalAppendFailed(e);
            } else {
                onLocalAppend();
            }
        });
        return acked;
    }

    /**
     * The leader's own append failed (an I/O error took the data directory offline): nothing in flight here can
     * be acknowledged any more, retries waiting on a batch that was never written included. They fail
     * retriably; the node reports the directory and the controller moves the leadership.
     */
    private synchronized void onLocalAppendFailed(Throwable e) {
        LOG.error("{}: the local append failed ({}); failing the writes waiting here", name, e.toString());
        failWaiting(offline());
    }

    private ReplicaException offline() {
        return new ReplicaException(ErrorCode.NOT_LEADER, name + ": the data directory of node " + localId
                + " is offline; leadership moves to another replica", -1, leaderEpoch);
    }

    /** A write that waited for the read-back of older producer state ({@link ProducerHistory#readOlder}), taken again from the start. */
    private synchronized CompletableFuture<AppendResult> appendAfterReadBack(int count, long producerId, int baseSequence,
                                                                            java.util.function.Supplier<CompletableFuture<AppendResult>> logAppend) {
        return append(count, producerId, baseSequence, true, logAppend);
    }

    /** Tests: runs the read-backs of older producer state on {@code executor} (to hold one while writes go on). */
    synchronized void readBackOn(Executor executor) {
        producers.readBackOn(executor);
    }

    /** A retry's answer: its original offsets, once they are acknowledged under the rules of a write. */
    private CompletableFuture<AppendResult> answerRetry(ProducerStateTable.Duplicate d) {
        CompletableFuture<AppendResult> acked = new CompletableFuture<>();
        waitFor(new Waiter(d.original().lastOffset(), d.original().baseOffset(), acked));
        maybeAdvanceHighWatermark();
        return acked;
    }

    /**
     * A retry's probe of this segment, which may hold the batch although it is sealed now: the original offsets
     * (as {@link #append} answers a retry) if the producer's batch is in this leader's log, else null; nothing is
     * appended. The answer is final because a leader's log holds everything committed here and a sealing or
     * sealed segment takes no more writes; so before it answers "not there", it reads back the producer state
     * of the whole log ({@link ProducerHistory#readOlder}). Fails NOT_LEADER on a non-leader, and INVALID_ARGUMENT when the
     * sequence is older than the producer's batches remembered here (whether it is here cannot be told).
     */
    public synchronized CompletableFuture<AppendResult> findRetried(long producerId, int baseSequence, int count) {
        if (role != Role.LEADER) {
            return CompletableFuture.failedFuture(notLeader().notApplied());
        }
        if (!log.isOnline()) {
            return CompletableFuture.failedFuture(offline());
        }
        producers.load();
        ProducerStateTable.Check check = producers.check(producerId, baseSequence, count);
        if (check instanceof ProducerStateTable.New && producerId >= 0 && producers.olderUnread()) {
            return producers.readOlder().thenCompose(read -> findRetried(producerId, baseSequence, count));
        }
        if (check instanceof ProducerStateTable.OutOfOrder o) {
            return CompletableFuture.failedFuture(new ReplicaException(ErrorCode.INVALID_ARGUMENT, name + ": " + o.reason()).notApplied());
        }
        return check instanceof ProducerStateTable.Duplicate d ? answerRetry(d) : CompletableFuture.completedFuture(null);
    }

    private synchronized void onLocalAppend() {
        maybeAdvanceHighWatermark();
        wakeFetchers();
    }

    /** Completes the long-polled fetches waiting here (they answer with what there is now). */
    private void wakeFetchers() {
        List<CompletableFuture<Void>> waiting = dataWaiters;
        dataWaiters = new ArrayList<>();
        waiting.forEach(w -> w.complete(null));
    }

    private List<CompletableFuture<Void>> dataWaiters = new ArrayList<>();

    /**
     * Completes when this leader has something beyond {@code offset}, or tombstones from {@code tombstoneFrom},
     * to send a follower (at once if it has): a caught-up follower's fetch waits on it (long poll) instead of
     * coming back empty.
     */
    public synchronized CompletableFuture<Void> awaitDataAfter(long offset, long tombstoneFrom) {
        if (log.writtenEndOffset() > offset || tombstones.end() > tombstoneFrom || role != Role.LEADER) {
            return CompletableFuture.completedFuture(null);
        }
        CompletableFuture<Void> f = new CompletableFuture<>();
        // Waits end by their caller's timeout too, on a segment where nothing new comes (idle, sealed): not kept.
        dataWaiters.removeIf(CompletableFuture::isDone);
        dataWaiters.add(f);
        return f;
    }

    /** Long-polled fetches waiting here, not yet answered (tests). */
    synchronized int heldFetches() {
        return dataWaiters.size();
    }

    // ---- leader: deletes -----------------------------------------------------------------------------------

    /**
     * Deletes the records at {@code offsets} (each below the high watermark) as leader: appends a tombstone for
     * each live one and completes with how many were live once the tombstone watermark covers them and the ISR
     * has at least {@code minInSyncReplicas} members, the rule writes follow. Fails NOT_LEADER,
     * NOT_ENOUGH_REPLICAS, OFFSET_OUT_OF_RANGE (an offset this segment does not hold below its high watermark),
     * UNAVAILABLE (a new leader whose watermark has not caught up yet, see {@link #readableHighWatermark()}).
     */
    public synchronized CompletableFuture<Long> delete(List<Long> offsets) {
        if (role != Role.LEADER) {
            return CompletableFuture.failedFuture(notLeader().notApplied());
        }
        if (isr.size() < config.minInSyncReplicas()) {
            return CompletableFuture.failedFuture(new ReplicaException(ErrorCode.NOT_ENOUGH_REPLICAS, name + ": ISR "
                    + isr + " has fewer than min.insync.replicas = " + config.minInSyncReplicas() + " members").notApplied());
        }
        long readable;
        try {
            readable = readableHighWatermark();
        } catch (ReplicaException e) {
            return CompletableFuture.failedFuture(e.notApplied());
        }
        // Every refusal above and below comes before a tombstone is written: not applied, so a client may retry.
        List<Long> live = new ArrayList<>();
        for (long o : offsets) {
            if (o < log.logStartOffset() || o >= readable) {
                return CompletableFuture.failedFuture(new ReplicaException(ErrorCode.OFFSET_OUT_OF_RANGE, name + ": offset " + o
                        + " is not in this segment's committed range [" + log.logStartOffset() + ", " + highWatermark + ")").notApplied());
            }
            if (!tombstones.isDeleted(o) && !live.contains(o)) {
                live.add(o);
            }
        }
        long end = live.isEmpty() ? tombstones.end() : tombstones.append(live);
        // An offset deleted already may be so by a delete not yet acknowledged: the answer waits for it too.
        CompletableFuture<Long> acked = new CompletableFuture<>();
        int epoch = leaderEpoch;
        Runnable complete = () -> {
            if (role != Role.LEADER || leaderEpoch != epoch) {
                acked.completeExceptionally(notLeader());
            } else if (isr.size() < config.minInSyncReplicas()) {
                acked.completeExceptionally(new ReplicaException(ErrorCode.NOT_ENOUGH_REPLICAS, name + ": the delete is replicated, but the ISR "
                        + isr + " shrank below min.insync.replicas = " + config.minInSyncReplicas() + "; retry it"));
            } else {
                acked.complete((long) live.size());
            }
        };
        if (live.isEmpty()) {
            // Nothing to delete, so no tombstone to replicate; but the answer must not come from a leader deposed
            // without hearing of it (cut off from the meta-service and its followers, still reached by clients): it
            // would answer "nothing with that key here, segment open" from its stale log while the new leader holds
            // such records, and in later segments too (found by the process fault schedules: DELETE_UNDONE). So it
            // waits for a fetch request of every ISR member that arrives after it, as Raft's ReadIndex confirms a
            // leader with a round of its quorum: the new leader is a member of the ISR this replica knows, and it
            // fetches from this replica no more.
            emptyDeletesWaiting.add(new EmptyDelete(monotonicMs.getAsLong(), end, complete));
            wakeFetchers(); // held fetches come back now, and the followers' next requests confirm it
            maybeAdvanceHighWatermark();
            return acked;
        }
        deletesWaiting.computeIfAbsent(end, k -> new ArrayList<>()).add(complete);
        wakeFetchers(); // followers long-polling learn of the tombstones now
        maybeAdvanceHighWatermark();
        return acked;
    }

    /** Whether this replica holds a tombstone for {@code offset} (reads skip such records). */
    public synchronized boolean isDeleted(long offset) {
        return tombstones.isDeleted(offset);
    }

    public synchronized long tombstoneWatermark() {
        return tombstoneWatermark;
    }

    private void waitFor(Waiter w) {
        waiting.computeIfAbsent(w.lastOffset() + 1, k -> new ArrayList<>()).add(w);
    }

    private void maybeAdvanceHighWatermark() {
        if (role != Role.LEADER || !servesNow()) {
            return; // nothing is acknowledged (writes, deletes) and nothing sealed while the old leader may serve
        }
        Set<Integer> counted = new LinkedHashSet<>(isr);
        pendingIsr.addProposedTo(counted); // the larger set while a change is pending
        long hw = IsrPolicy.highWatermark(countedLogEnd(), counted, localId, followers, highWatermark);
        if (hw > highWatermark) {
            if (!highWatermarkMovedInEpoch && LOG.isDebugEnabled()) {
                LOG.debug("{}: high watermark {} -> {}, its first move in epoch {}", name, highWatermark, hw, leaderEpoch);
            }
            highWatermarkMovedInEpoch = true;
            highWatermark = hw;
        }
        tombstoneWatermark = IsrPolicy.tombstoneWatermark(tombstones.end(), counted, localId, followers, tombstoneWatermark);
        while (!deletesWaiting.isEmpty() && deletesWaiting.firstKey() <= tombstoneWatermark && deletesReleased()) {
            deletesWaiting.pollFirstEntry().getValue().forEach(Runnable::run);
        }
        while (!emptyDeletesWaiting.isEmpty() && confirmed(emptyDeletesWaiting.get(0), counted) && deletesReleased()) {
            emptyDeletesWaiting.remove(0).complete().run();
        }
        maybeRequestRoll();
        while (!waiting.isEmpty() && waiting.firstKey() <= highWatermark) {
            for (Waiter w : waiting.pollFirstEntry().getValue()) {
                if (isr.size() < config.minInSyncReplicas()) {
                    w.future().completeExceptionally(new ReplicaException(ErrorCode.NOT_ENOUGH_REPLICAS, name
                            + ": the write is replicated, but the ISR " + isr + " shrank below min.insync.replicas = "
                            + config.minInSyncReplicas() + "; retry with the same producer id and sequence"));
                } else {
                    w.future().complete(new AppendResult(AppendResult.Status.APPENDED, w.baseOffset(), w.lastOffset()));
                }
            }
        }
    }

    /** Whether every other member of {@code isr} sent a fetch request after {@code d} came, and its tombstones are in. */
    private boolean confirmed(EmptyDelete d, Set<Integer> isr) {
        if (d.end() > tombstoneWatermark) {
            return false;
        }
        for (int member : isr) {
            if (member != localId && fetchArrivedAtMs.getOrDefault(member, Long.MIN_VALUE) <= d.askedAtMs()) {
                return false;
            }
        }
        return true;
    }

    private void maybeRequestRoll() {
        if (!servesNow()) {
            return; // a seal would let the next segment's leader acknowledge, unwaited, while the old leader may serve
        }
        // An expansion in flight (proposed before this leader learnt that the segment is closing) waits for its answer:
        // counted in the next segment at this version, a member the seal does not record would never be replaced by the
        // committed ISR (an assignment at the same version), so it would never be proposed again. Its answer settles it
        // and looks here again (onIsrAnswer); a shrink in flight counts no one more than the ISR, and hands over.
        if (role == Role.LEADER && !pendingIsr.adds(isr) && roll.handOverDue(leaderEpoch, highWatermark, log.logEndOffset())) {
            // Closing, and every ISR member holds the whole log: its end is final (no later leader writes here, and
            // one elected from the ISR ends it at its own log end, this one), so the next segment is led from it now,
            // with the ISR this leader counts, which is the ISR itself here (the seal gives it the ISR committed then:
            // this one, or one a shrink committed since, at a newer version).
            LOG.info("{}: closed at {}; handing over to the next segment", name, log.logEndOffset());
            roll.roller().handOver(leaderEpoch, log.logEndOffset(), List.copyOf(isr), isrVersion);
        }
        roll.maybeRequest(leaderEpoch, highWatermark, log.logEndOffset(), this::onRolled);
    }

    private synchronized void onRolled(long end, Throwable e) {
        roll.answered();
        if (e != null) {
            LOG.warn("{}: asking the controller to seal at {} failed: {}; retrying on the next tick", name, end, e.toString());
            return;
        }
        markSealed(leaderEpoch, end);
    }

    /**
     * The controller sealed this segment at {@code end} (learnt from our roll or from an assignment): nothing
     * is appended any more, and everything below {@code end} is committed. The leader seals at once. A follower
     * seals only once it has reconciled with its leader (truncated by leader epoch: a deposed leader may hold
     * records past the seal point, or different ones below it) and holds everything up to {@code end}; until
     * then the seal is pending. A replica with no role yet waits too, and so does one that still leads an
     * epoch older than the seal's {@code epoch} (the segment's leader epoch in the assignment): it was deposed,
     * and must reconcile with the new leader rather than seal what it holds.
     */
    public synchronized void markSealed(int epoch, long end) {
        sealRecorded = true;
        if (roll.sealedEnd() >= 0) {
            return;
        }
        if (role == Role.LEADER && epoch == leaderEpoch) {
            if (log.logEndOffset() > end) {
                // Only a leader elected uncleanly can hold more than the seal point: those records were never
                // committed. The cut runs on the I/O thread, which may need this monitor to complete an append
                // meanwhile: it is not waited for here; the seal is taken once it is done.
                LOG.warn("{}: sealed at {} below this leader's log end {}: truncating", name, end, log.logEndOffset());
                roll.announce(end);
                log.unsealAndTruncateTo(end).whenComplete(this::onCutToSeal);
                return;
            }
            if (roll.seal(end, log.logEndOffset())) {
                sealLog(end);
            }
            return;
        }
        roll.announce(end);
        maybeTakePendingSeal();
    }

    private synchronized void onCutToSeal(Long cut, Throwable failure) {
        if (failure != null) {
            LOG.error("{}: truncating to the seal point failed: {}", name, failure.toString());
            return;
        }
        producers.truncateTo(cut);
        highWatermark = Math.min(highWatermark, cut);
        leaderEpochStart = Math.min(leaderEpochStart, cut);
        // Writes taken past the seal point were never committed and are gone now: they fail (retriably).
        for (Long key : List.copyOf(waiting.tailMap(cut, false).keySet())) {
            waiting.remove(key).forEach(w -> w.future().completeExceptionally(new ReplicaException(ErrorCode.NOT_LEADER, name
                    + ": the segment was sealed at " + cut + " before this write; write to the next segment", -1, leaderEpoch).rolling()));
        }
        long at = roll.pendingSealAt();
        if (role == Role.LEADER && roll.sealedEnd() < 0 && at >= 0 && log.logEndOffset() == at && roll.seal(at, at)) {
            sealLog(at);
        }
    }

    /** Follower: takes a pending seal once reconciled with the leader and holding everything below it. */
    private void maybeTakePendingSeal() {
        long at = roll.pendingSealAt();
        if (at < 0 || roll.sealedEnd() >= 0 || role != Role.FOLLOWER || !reconciled) {
            return;
        }
        long end = log.logEndOffset();
        if (end > at) {
            LOG.error("{}: holds records up to {} past the seal at {} although reconciled with its leader; not sealing", name, end, at);
        } else if (end == at && roll.seal(at, end)) {
            sealLog(at);
        }
    }

    private void sealLog(long end) {
        highWatermark = Math.max(highWatermark, end);
        if (!log.isSealed()) {
            log.seal();
        }
        LOG.info("{}: sealed at {}", name, end);
        // A leader's followers held here answer now: nothing more comes, and the answer tells them of the next
        // segment (StorageNode's FetchResponse.next_segment), which they open without waiting for a heartbeat.
        wakeFetchers();
    }

    /** Periodic: rolls a segment that is old enough, and asks again where a roll request failed. */
    public synchronized void maybeRetryRoll() {
        if (role != Role.LEADER) {
            return;
        }
        long age = roll.ageOut(monotonicMs.getAsLong());
        if (age >= 0) {
            LOG.info("{}: segment is {} ms old at offset {}, sealing", name, age, log.logEndOffset());
        }
        maybeAskToClose(); // again, if asking failed
        if (roll.closingTooLong(monotonicMs.getAsLong()) && roll.endClosing()) {
            LOG.info("{}: closing for {} ms without filling; ending it at {} to hand over", name, SegmentRoll.CLOSING_MAX_MS, log.logEndOffset());
        }
        maybeRequestRoll();
    }

    private void failWaiting(RuntimeException e) {
        for (List<Waiter> ws : waiting.values()) {
            ws.forEach(w -> w.future().completeExceptionally(e));
        }
        waiting.clear();
    }

    // ---- leader: followers fetch ---------------------------------------------------------------------------

    /**
     * A follower fetches from {@code fetchOffset}: everything below it is in its log; it also holds the leader's
     * tombstones below {@code tombstoneFrom}. Answers with whole batches and tombstones from there and the
     * watermarks. OFFSET_OUT_OF_RANGE tells a follower ahead of the leader to truncate.
     */
    public LeaderEndPoint.FetchResult fetchFromFollower(int followerId, int epoch, long fetchOffset, long tombstoneFrom, int maxBytes) {
        FollowerFetch f = fetchSliceForFollower(followerId, epoch, fetchOffset, tombstoneFrom, maxBytes);
        try (FileSlice slice = f.slice()) {
            return new LeaderEndPoint.FetchResult(slice.read(), f.highWatermark(), f.leaderLogEnd(), f.tombstones());
        } catch (IOException e) {
            throw new ReplicaException(ErrorCode.STORAGE_ERROR, name + ": reading for a follower failed: " + e);
        }
    }

    /**
     * A follower fetch answer whose batches are still a slice of the log file, for a sender that transfers
     * them without copying; the caller closes the slice once sent.
     */
    public record FollowerFetch(FileSlice slice, long highWatermark, long leaderLogEnd, Tombstones.Slice tombstones) {
    }

    /** As {@link #fetchFromFollower(int, int, long, long, int)}, leaving the batches in the file; {@code maxBytes} 0: no batches. */
    public FollowerFetch fetchSliceForFollower(int followerId, int epoch, long fetchOffset, long tombstoneFrom, int maxBytes) {
        return fetchSliceForFollower(followerId, epoch, fetchOffset, tombstoneFrom, maxBytes, false);
    }

    /**
     * As above; {@code heldAgain}: the same request taken again after the leader held it (a long poll), which does
     * not count as a request that arrived now (an empty delete waits for requests that arrive after it: {@link #delete}).
     */
    public FollowerFetch fetchSliceForFollower(int followerId, int epoch, long fetchOffset, long tombstoneFrom, int maxBytes,
                                               boolean heldAgain) {
        long hw;
        long end;
        Tombstones.Slice deletes;
        synchronized (this) {
            if (role != Role.LEADER) {
                throw notLeader();
            }
            if (epoch != leaderEpoch) {
                throw new ReplicaException(ErrorCode.FENCED_EPOCH, name + ": fetch in epoch " + epoch + ", leader is in " + leaderEpoch,
                        localId, leaderEpoch);
            }
            FollowerProgress p = followers.get(followerId);
            if (p == null) {
                throw new ReplicaException(ErrorCode.INVALID_ARGUMENT, name + ": node " + followerId + " is not a replica of " + replicas);
            }
            if (p.logEndOffset() < 0 && LOG.isDebugEnabled()) {
                LOG.debug("{}: first fetch of node {} in epoch {}, from offset {}", name, followerId, epoch, fetchOffset);
            }
            end = log.logEndOffset();
            if (fetchOffset > end || fetchOffset < log.logStartOffset()) {
                throw new ReplicaException(ErrorCode.OFFSET_OUT_OF_RANGE, name + ": fetch offset " + fetchOffset
                        + " is outside the leader's log [" + log.logStartOffset() + ", " + end + "]");
            }
            long now = monotonicMs.getAsLong();
            if (!heldAgain) {
                fetchArrivedAtMs.put(followerId, now);
            }
            long tombFrom = Math.max(0, Math.min(tombstoneFrom, tombstones.end()));
            followers.put(followerId, p.afterFetch(fetchOffset, tombFrom, countedLogEnd(), now));
            maybeExpandIsr(followerId, now);
            maybeAdvanceHighWatermark();
            hw = highWatermark;
            deletes = new Tombstones.Slice(tombFrom, tombstones.read(tombFrom, MAX_TOMBSTONES_PER_FETCH), tombstones.end(),
                    tombstoneWatermark);
        }
        // The slice is taken outside the monitor, so producers are not held up by it (the log allows
        // concurrent reads); its bytes are read, or sent, later.
        // maxBytes 0: no batches this time (a fetch of many segments whose answer is full), the rest as always.
        return new FollowerFetch(maxBytes <= 0 ? FileSlice.empty(fetchOffset) : log.readSlice(fetchOffset, maxBytes, Long.MAX_VALUE),
                hw, end, deletes);
    }

    /** Where {@code epoch} ends in this (the leader's) log. */
    public synchronized EpochEndOffset endOffsetForEpoch(int requesterEpoch, int epoch) {
        if (role != Role.LEADER) {
            throw notLeader();
        }
        if (requesterEpoch != leaderEpoch) {
            throw new ReplicaException(ErrorCode.FENCED_EPOCH, name + ": request in epoch " + requesterEpoch
                    + ", leader is in " + leaderEpoch, localId, leaderEpoch);
        }
        return log.endOffsetForEpoch(epoch);
    }

    // ---- leader: ISR changes -------------------------------------------------------------------------------

    private void maybeExpandIsr(int followerId, long now) {
        if (!pendingIsr.isSettled() || isr.contains(followerId)) {
            return;
        }
        Long refused = joinRefusedAtMs.get(followerId);
        if (refused != null && now - refused < config.maxLagMs()) {
            return;
        }
        if (IsrPolicy.mayJoin(followers.get(followerId), highWatermark, tombstoneWatermark, now, config.maxLagMs())) {
            if (roll.isClosing() && roll.sealedEnd() < 0) {
                // A closing segment's ISR only shrinks (the next segment takes it at the seal, and may hold acknowledged
                // records a joining replica never fetched): end it here and hand over; the replica joins both once the
                // seal is recorded.
                if (roll.endClosing()) {
                    LOG.info("{}: node {} caught up with a closing segment: ending it at {} to hand over", name, followerId, log.logEndOffset());
                    maybeRequestRoll();
                }
                return;
            }
            List<Integer> grown = new ArrayList<>(isr);
            grown.add(followerId);
            propose(grown, "node " + followerId + " caught up");
        }
    }

    /**
     * Periodic check (the node calls it every few hundred ms): lagging followers are proposed out of the ISR,
     * and a change whose answer was lost is proposed again (its outcome decides what the leader may narrow to).
     */
    public synchronized void maybeShrinkIsr() {
        if (role != Role.LEADER) {
            return;
        }
        if (pendingIsr.needsRetry()) {
            propose(pendingIsr.proposed(), "the answer to the last proposal was lost; asking again");
            return;
        }
        if (!pendingIsr.isSettled()) {
            return;
        }
        long now = monotonicMs.getAsLong();
        List<Integer> kept = new ArrayList<>();
        List<Integer> dropped = new ArrayList<>();
        for (int id : isr) {
            FollowerProgress p = followers.get(id);
            if (id == localId || p == null || IsrPolicy.isCaughtUp(p, now, config.maxLagMs())) {
                kept.add(id);
            } else {
                dropped.add(id);
            }
        }
        if (!dropped.isEmpty()) {
            propose(kept, "nodes " + dropped + " lag more than " + config.maxLagMs() + " ms");
        }
    }

    /** Proposes {@code newIsr}, based on the committed version this leader holds. */
    private void propose(List<Integer> newIsr, String why) {
        long seq = pendingIsr.start(newIsr);
        int epoch = leaderEpoch;
        LOG.info("{}: proposing ISR {} (from {} v{}): {}", name, newIsr, isr, isrVersion, why);
        proposer.propose(epoch, isrVersion, pendingIsr.proposed()).whenComplete((committed, e) -> onIsrAnswer(seq, epoch, committed, e));
    }

    /**
     * The controller's answer to proposal {@code seq}. A committed ISR is adopted only if newer than the one
     * held (a late answer changes nothing). A refusal as invalid is final: the proposal was not committed and
     * never will be (the version it was based on still held when it was refused). Any other failure leaves the
     * outcome unknown, so the proposed set goes on counting: FENCED_EPOCH waits for the controller's committed
     * state in an assignment; a lost answer is asked again.
     */
    private synchronized void onIsrAnswer(long seq, int epoch, IsrProposer.Committed committed, Throwable failure) {
        if (epoch != leaderEpoch || role != Role.LEADER) {
            return;
        }
        if (committed != null) {
            adoptIsr(committed.isr(), committed.isrVersion());
            if (pendingIsr.isCurrent(seq)) {
                pendingIsr.awaitController(); // an answer no newer than what is held: learn the state
            }
            return;
        }
        if (!pendingIsr.isCurrent(seq)) {
            return; // a newer proposal is out, or a newer ISR was adopted
        }
        ErrorCode code = ReplicaException.codeOf(failure);
        if (code != ErrorCode.INVALID_ARGUMENT && InjectedBug.on(InjectedBug.FORGET_ISR_EXPANSION)) {
            // TEST ONLY: the bug a fault test must catch (InjectedBug): the outcome is unknown, yet the change is
            // dropped and the high watermark counts the old ISR alone.
            LOG.warn("{}: ISR proposal {} failed ({}); forgetting it (injected bug)", name, pendingIsr.proposed(), failure.toString());
            pendingIsr.settle();
            maybeAdvanceHighWatermark();
            return;
        }
        if (code == ErrorCode.INVALID_ARGUMENT) {
            LOG.warn("{}: the controller refused ISR {}: {}", name, pendingIsr.proposed(), failure.toString());
            long now = monotonicMs.getAsLong();
            pendingIsr.proposed().stream().filter(id -> !isr.contains(id)).forEach(id -> joinRefusedAtMs.put(id, now));
            pendingIsr.settle();
            maybeAdvanceHighWatermark();
        } else if (code == ErrorCode.FENCED_EPOCH) {
            LOG.warn("{}: ISR proposal {} is stale ({}); counting it until the controller's state arrives", name, pendingIsr.proposed(),
                    failure.toString());
            pendingIsr.awaitController();
        } else {
            LOG.warn("{}: the outcome of ISR proposal {} is unknown ({}); counting it and asking again", name, pendingIsr.proposed(),
                    failure.toString());
            pendingIsr.retryLater();
        }
    }

    /**
     * The controller's committed ISR, from an assignment (it drops fenced nodes itself) or a proposal's answer:
     * adopted if newer than the version held. A proposal based on an older version can no longer commit, so
     * whatever was pending is settled.
     */
    public synchronized void onControllerIsr(int epoch, List<Integer> committedIsr, int committedVersion) {
        if (role != Role.LEADER || epoch != leaderEpoch) {
            return;
        }
        adoptIsr(committedIsr, committedVersion);
    }

    private void adoptIsr(List<Integer> committedIsr, int committedVersion) {
        if (committedVersion <= isrVersion) {
            return;
        }
        if (!committedIsr.containsAll(isr)) {
            leases.holdDeletes(monotonicMs.getAsLong()); // the dropped member may serve reads until its lease ends
        }
        isr = List.copyOf(committedIsr);
        isrVersion = committedVersion;
        pendingIsr.settle();
        maybeAdvanceHighWatermark();
    }

    /** Whether the wait for the replaced leader's lease ({@link ReadLeases#servesFromMs}) is over; else schedules a look once it is. */
    private boolean servesNow() {
        return passedOrWake(leases.servesFromMs());
    }

    /** Whether held deletes may be acknowledged now ({@link ReadLeases#holdDeletes}); else schedules a look once the hold ends. */
    private boolean deletesReleased() {
        return passedOrWake(leases.deletesHeldUntilMs());
    }

    /**
     * Whether monotonic time {@code untilMs} has passed (Long.MIN_VALUE: no wait); if not, makes sure the high
     * watermark is looked at again then ({@link #wakeAtMs}).
     */
    private boolean passedOrWake(long untilMs) {
        long wait = untilMs - monotonicMs.getAsLong();
        if (untilMs == Long.MIN_VALUE || wait <= 0) {
            return true;
        }
        if (wakeAtMs == Long.MIN_VALUE || wakeAtMs > untilMs) {
            wakeAtMs = untilMs; // a later look is scheduled again by this one, if still needed
            CompletableFuture.delayedExecutor(wait, TimeUnit.MILLISECONDS).execute(() -> {
                synchronized (this) {
                    if (wakeAtMs == untilMs) {
                        wakeAtMs = Long.MIN_VALUE;
                    }
                    maybeAdvanceHighWatermark();
                }
            });
        }
        return false;
    }

    // ---- follower ------------------------------------------------------------------------------------------

    /**
     * Whether this follower must truncate against its leader before it fetches: after every new leader or
     * epoch, and after the leader said the fetch offset lies beyond its log (it lost bytes it had served).
     */
    public synchronized boolean needsTruncation() {
        return role == Role.FOLLOWER && !reconciled;
    }

    /**
     * Leader-epoch truncation before following: asks the leader where this log's latest epoch ends and cuts
     * the log there, repeating until the epochs agree. A sealed log that holds records the leader does not is
     * repaired (unsealed and truncated; it is sealed again once it holds the leader's records up to the sealed
     * end). Returns the log end offset afterwards. The replica counts as reconciled only if nothing asked for
     * another truncation (a new epoch, say) while this one ran.
     */
    public long truncateToLeader(LeaderEndPoint leader) {
        long generation;
        synchronized (this) {
            generation = followerGeneration;
        }
        if (InjectedBug.on(InjectedBug.SKIP_EPOCH_TRUNCATION)) {
            return reconciled(generation); // TEST ONLY: the bug a fault test must catch (InjectedBug)
        }
        while (true) {
            int latest;
            int epoch;
            boolean empty;
            synchronized (this) {
                latest = log.latestEpoch();
                epoch = leaderEpoch;
                empty = log.logEndOffset() == log.logStartOffset();
            }
            if (latest < 0 || empty) {
                // Nothing to cut (no truncation goes below the log's start), so no round trip to the leader: a
                // follower of a segment it made ahead with its leader's epoch fetches at once (docs/architecture.md,
                // "Close ahead").
                return reconciled(generation);
            }
            EpochEndOffset answer = leader.endOffsetForEpoch(epoch, latest).join();
            long target;
            synchronized (this) {
                if (answer.isUndefined()) {
                    // The leader knows none of our epochs: keep only what was committed (and never cut below the
                    // log's start: a restarted replica's high watermark is 0, its segment may start later).
                    target = Math.max(highWatermark, log.logStartOffset());
                } else if (answer.epoch() == latest) {
                    target = Math.min(answer.endOffset(), log.logEndOffset());
                } else {
                    EpochEndOffset ours = log.endOffsetForEpoch(answer.epoch());
                    target = Math.min(answer.endOffset(), ours.isUndefined() ? answer.endOffset() : ours.endOffset());
                }
                if (target >= log.logEndOffset()) {
                    return reconciled(generation);
                }
            }
            long end = log.unsealAndTruncateTo(target).join();
            synchronized (this) {
                producers.truncateTo(end);
                highWatermark = Math.min(highWatermark, end);
                if (!log.isSealed()) {
                    roll.unseal(); // a repaired replica: sealed again once it holds everything up to the sealed end
                }
                LOG.info("{}: truncated to {} after asking the leader where epoch {} ends ({})", name, end, latest, answer);
            }
        }
    }

    private synchronized long reconciled(long generation) {
        if (generation == followerGeneration && role == Role.FOLLOWER) {
            reconciled = true;
            maybeTakePendingSeal();
        }
        return log.logEndOffset();
    }

    /** One fetch round as follower: fetch from our log end, append what came, take the leader's high watermark. */
    public int fetchOnce(LeaderEndPoint leader, int maxBytes) {
        return fetchOnceAsync(leader, maxBytes).join();
    }

    /**
     * As {@link #fetchOnce}, without blocking the caller: the fetch, the append and the fsync complete on other
     * threads (a long-polled fetch may wait seconds at the leader, so a fetcher thread must not).
     * Completes with the bytes and tombstones taken (0: nothing new, or nothing fetched).
     *
     * <p>The fetch offset tells the leader how far this replica's log goes, so it is the end this replica
     * counts (durable, in fsync mode): never offsets only reserved by an append that has not been written, or
     * failed. A follower that has to truncate first fetches nothing; one told its offset lies beyond the
     * leader's log (OFFSET_OUT_OF_RANGE: the leader lost bytes it had served) truncates again. The answer is
     * appended only if the role, epoch and log end it was asked under still hold when it arrives.
     */
    public CompletableFuture<Integer> fetchOnceAsync(LeaderEndPoint leader, int maxBytes) {
        long from;
        long tombFrom;
        int epoch;
        long generation;
        synchronized (this) {
            if (role != Role.FOLLOWER || !reconciled) {
                return CompletableFuture.completedFuture(0);
            }
            if (!log.isOnline()) {
                return CompletableFuture.failedFuture(new ReplicaException(ErrorCode.STORAGE_ERROR, name
                        + ": the data directory is offline; not fetching"));
            }
            from = countedLogEnd();
            if (from != log.logEndOffset()) {
                return CompletableFuture.completedFuture(0); // an append is still being written: fetch once it is
            }
            tombFrom = tombstoneCursor;
            epoch = leaderEpoch;
            generation = followerGeneration;
        }
        return leader.fetch(localId, epoch, from, tombFrom, maxBytes).handle((r, e) -> {
            if (e != null) {
                onFetchFailed(generation, e);
                return CompletableFuture.<Integer>failedFuture(e);
            }
            return appendFetched(r, from, tombFrom, epoch, generation);
        }).thenCompose(f -> f);
    }

    private synchronized void onFetchFailed(long generation, Throwable e) {
        if (ReplicaException.codeOf(e) == ErrorCode.OFFSET_OUT_OF_RANGE && generation == followerGeneration && role == Role.FOLLOWER) {
            LOG.warn("{}: the leader says fetch offset {} is outside its log; truncating against it again", name, log.logEndOffset());
            reconciled = false;
            followerGeneration++;
        }
    }

    /**
     * Appends a fetch answer if it still belongs to this follower's state: same role, epoch and generation, and
     * the log still ends where the fetch started. The producer state of the fetched batches is recorded as they
     * are appended, under the monitor, so a retry that reaches this replica once it leads is known at once.
     */
    private synchronized CompletableFuture<Integer> appendFetched(LeaderEndPoint.FetchResult r, long from, long tombFrom, int epoch,
                                                                  long generation) {
        if (role != Role.FOLLOWER || epoch != leaderEpoch || generation != followerGeneration || log.logEndOffset() != from) {
            return CompletableFuture.completedFuture(0); // asked under a state that no longer holds: drop the answer
        }
        ByteBuffer batches = r.batches();
        if (batches.remaining() == 0) {
            return CompletableFuture.completedFuture(afterFetch(r, epoch, tombFrom, 0));
        }
        CompletableFuture<AppendResult> appended;
        try {
            appended = log.appendAsFollower(batches.duplicate(), config.durability());
        } catch (LogException e) {
            return CompletableFuture.failedFuture(e);
        }
        AppendResult now = appended.getNow(null);
        if (now != null && !now.appended()) {
            return CompletableFuture.completedFuture(0); // queue full: the next round fetches the same bytes again
        }
        ByteBuffer b = batches.duplicate();
        while (b.hasRemaining()) {
            BatchView v = BatchView.at(b);
            producers.record(v.producerId(), v.baseSequence(), v.recordCount(), v.baseOffset());
            b.position(b.position() + v.sizeInBytes());
        }
        int bytes = batches.remaining();
        return appended.thenApply(a -> afterFetch(r, epoch, tombFrom, bytes));
    }

    private synchronized int afterFetch(LeaderEndPoint.FetchResult r, int epoch, long tombFrom, int bytes) {
        if (role != Role.FOLLOWER || epoch != leaderEpoch) {
            return bytes; // a new role or epoch since: its watermarks and tombstones are not this epoch's
        }
        Tombstones.Slice t = r.tombstones();
        if (t.base() <= tombFrom) {
            tombstones.overwrite(t.base(), t.offsets(), t.end());
            tombstoneCursor = t.base() + t.offsets().size();
            tombstoneWatermark = Math.max(tombstoneWatermark, Math.min(t.watermark(), tombstoneCursor));
            bytes += t.offsets().size();
        }
        highWatermark = Math.max(highWatermark, Math.min(r.highWatermark(), countedLogEnd()));
        maybeTakePendingSeal();
        return bytes;
    }

    // ---- consumers -----------------------------------------------------------------------------------------

    /** Live records from {@code offset}, never above the high watermark. */
    public List<LogRecord> read(long offset, int maxRecords, int maxBytes) {
        return readLive(offset, maxRecords, maxBytes).records();
    }

    /**
     * What a consumer read returns: the live records found, and the offset to read on from (deleted records
     * are skipped, so a read can come back with fewer records than asked, or none, before the end).
     */
    public record ReadResult(List<LogRecord> records, long nextOffset) {
    }

    /** Live records from {@code offset}, never above the high watermark, and where to go on: a consumer slice, decoded. */
    public ReadResult readLive(long offset, int maxRecords, int maxBytes) {
        ConsumerSlice c = readForConsumer(offset, maxRecords, maxBytes);
        try (FileSlice slice = c.slice()) {
            java.util.Set<Long> deleted = new java.util.HashSet<>(c.deleted());
            return new ReadResult(dev.segstore.log.format.RecordBatch.decodeBatches(slice.read(), offset, c.nextOffset(),
                    deleted::contains, maxRecords), c.nextOffset());
        } catch (IOException e) {
            throw new ReplicaException(ErrorCode.STORAGE_ERROR, name + ": reading for a consumer failed: " + e);
        } catch (dev.segstore.log.format.FormatException e) {
            throw new ReplicaException(ErrorCode.CORRUPT_DATA, name + ": " + e.getMessage());
        }
    }

    /**
     * A consumer read left in the file, to send without copying: whole batches from the one holding
     * {@code offset}, holding the records [offset, nextOffset) (the first batch may start below offset), and
     * the deleted offsets in that range. The caller closes the slice.
     */
    public record ConsumerSlice(FileSlice slice, long highWatermark, long nextOffset, List<Long> deleted, long sealedEnd) {
    }

    /**
     * Batches for a consumer from {@code offset}: never above the high watermark (which is always a batch
     * boundary: it is a log end of an ISR member), up to the batch holding {@code offset + maxRecords - 1}
     * and about {@code maxBytes} (at least one batch). At or past the end the segment was sealed at (taken or
     * pending): no batches, {@code nextOffset = offset}, and {@code sealedEnd} says where it ends (-1: open).
     */
    public ConsumerSlice readForConsumer(long offset, int maxRecords, int maxBytes) {
        return readForConsumer(offset, maxRecords, maxBytes, -1);
    }

    /** As {@link #readForConsumer(long, int, int)}, for a reader whose route names {@code routeEpoch} ({@link #readableHighWatermark(int)}). */
    public ConsumerSlice readForConsumer(long offset, int maxRecords, int maxBytes, int routeEpoch) {
        long hw;
        long sealedEnd;
        synchronized (this) {
            hw = readableHighWatermark(routeEpoch);
            sealedEnd = mayBeSealedAt();
        }
        if (sealedEnd >= 0 && offset >= sealedEnd) {
            // Past this segment: a later one holds it. Not OFFSET_OUT_OF_RANGE, which a client cannot tell from
            // "past the end of the shard"; the answer says where this segment ends (node.proto, FetchResponse.sealed).
            return new ConsumerSlice(FileSlice.empty(offset), hw, offset, List.of(), sealedEnd);
        }
        if (offset > hw) {
            throw new ReplicaException(ErrorCode.OFFSET_OUT_OF_RANGE, name + ": offset " + offset
                    + " is above the high watermark " + hw);
        }
        FileSlice slice = log.readSlice(offset, maxBytes, Math.min(hw, offset + Math.max(1, maxRecords)));
        long next = slice.isEmpty() ? Math.max(offset, log.logStartOffset()) : Math.min(slice.nextOffset(), hw);
        List<Long> deleted;
        synchronized (this) {
            deleted = tombstones.deletedIn(offset, next);
        }
        return new ConsumerSlice(slice, hw, next, deleted, sealedEnd);
    }
}
