package dev.segstore.node.server;

import dev.segstore.client.MetaClient;
import dev.segstore.node.index.NodeIndex;
import dev.segstore.node.replica.Partition;
import dev.segstore.node.server.Hosted.Key;
import dev.segstore.protocol.meta.NodeAssignments;
import dev.segstore.protocol.meta.Segment;
import dev.segstore.protocol.meta.Shard;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.BooleanSupplier;
import java.util.function.LongSupplier;

/**
 * Makes a storage node's replicas what the meta-service's assignments say (they come with every registration
 * and heartbeat): opens the replicas it is given, makes each leader or follower in its epoch, adopts the
 * controller's ISR changes and seals, starts followers' fetch loops, and deletes the replicas taken away.
 *
 * <p>Thread: the node's control thread ({@code node-control}), and its roll thread for {@link #takeNext},
 * {@link #takeAhead}, {@link #prepare} and {@link #prepareAhead}, under this object's monitor. It owns the
 * hosted-replica map (others only read it) and the metadata version applied, which never goes back. A roll's next segment learned before
 * the heartbeat brings it comes from {@link NextSegments}, which hands it to the roll thread; each replica is opened
 * by {@link ReplicaOpener}, under this monitor.
 */
final class AssignmentReconciler {
    private static final Logger LOG = LoggerFactory.getLogger(AssignmentReconciler.class);
    /**
     * {@link #take}'s {@code sentAtMs} for an assignment that grants no read lease (a roll's next segment, from a hint):
     * {@link Partition#assignedIsr} takes it as "confirmed by no heartbeat" (a new partition counts one from its open).
     */
    private static final long NO_LEASE = Long.MIN_VALUE;

    private final NodeConfig config;
    private final DataDirectories directory;
    private final NodeIndex index;
    private final Map<Key, Hosted> hosted;
    private final Map<Integer, String> nodeAddresses;
    private final ReplicaFetchers fetchers;
    /** Asks the control thread for a heartbeat now (an answer applied in part, a replica dropped or no longer led). */
    private final Runnable heartbeatNow;
    /** Told the name of a shard once this node hosts no replica of it any more (its per-shard metrics go). */
    private final java.util.function.Consumer<String> shardGone;
    private final BooleanSupplier closed;
    /** The monotonic clock the replicas measure lag and segment age on (never the wall clock: see Partition). */
    private final LongSupplier replicaClockMs;
    /** Told of the replicas a roll is about to place here, and when each is hosted (its early requests wait). */
    private final ReplicaWaits replicaWaits;
    /**
     * The metadata version of the last registration's answer if the meta-service checked every segment created up
     * to it against the logs this node holds (NodeAssignments.held_checked), so a later one is new to the node; -1
     * when it did not (an older meta-service: nothing is refused).
     */
    private long registeredVersion = -1;
    /** The newest metadata version applied: older assignments are ignored. */
    private volatile long metadataVersion = -1;
    /**
     * The newest metadata version of any answer taken, even in part (one that leaves replicas to the next answer still
     * drops those taken away): a roll's next segment created at or below it is left to the answers ({@link #takeNext}).
     * Never below {@link #metadataVersion}.
     */
    private volatile long answeredVersion = -1;
    /**
     * The cluster's feature level as the newest assignments applied said ({@code NodeAssignments.feature_level}; 0 from
     * an older meta-service): segments close ahead only from {@link dev.segstore.protocol.FeatureLevels#STORAGE_NODES_CHECKED}.
     */
    private volatile int clusterFeatureLevel;
    private boolean featureLevelSeen;
    /**
     * Ids of shards the meta-service said are deleted (NodeAssignments.deleted_shard_ids): their replicas are
     * dropped and requests naming them refused. Ids are never reused, so an id stays here until the node stops
     * (after a restart a request for it finds no replica, a retriable answer that makes clients refresh too).
     */
    private final Set<Long> deletedShards = ConcurrentHashMap.newKeySet();
    /** Where each hosted replica's log comes from (made ahead of a roll, or while the segment before closes). */
    private final ReplicaLogs logs;
    /** How a hosted replica rolls as leader, and the next segments learned before the heartbeat brings them. */
    private final NextSegments rolls;
    /** Opens the replicas this hosts. */
    private final ReplicaOpener opener;

    /** Set by {@link #stopLeaderReads}: every replica hosted from then on answers no reads as an open segment's leader. */
    private boolean leaderReadsStopped;
    /** The metadata version of the newest assignments applied (reported in heartbeats), -1 before any. */
    long appliedVersion() {
        return metadataVersion;
    }

    /** Whether the meta-service said shard id {@code shardId} is deleted. */
    boolean isDeleted(long shardId) {
        return deletedShards.contains(shardId);
    }

    AssignmentReconciler(NodeConfig config, DataDirectories directory, NodeIndex index, MetaClient meta, MetaCalls metaCalls, Map<Key, Hosted> hosted,
                         Map<Integer, String> nodeAddresses, ReplicaFetchers fetchers, Runnable heartbeatNow,
                         java.util.function.Consumer<String> shardGone, BooleanSupplier closed,
                         LongSupplier replicaClockMs, java.util.concurrent.Executor rollThread, ReplicaWaits replicaWaits) {
        this.config = config;
        this.directory = directory;
        this.index = index;
        this.hosted = hosted;
        this.nodeAddresses = nodeAddresses;
        this.fetchers = fetchers;
        this.heartbeatNow = heartbeatNow;
        this.shardGone = shardGone;
        this.closed = closed;
        this.replicaClockMs = replicaClockMs;
        this.replicaWaits = replicaWaits;
        this.logs = new ReplicaLogs(config, directory, hosted, closed, deletedShards);
        // NextSegments only keeps `this`: it calls back once the node runs, never during construction.
        this.rolls = new NextSegments(this, config, meta, metaCalls, hosted, heartbeatNow, rollThread, replicaWaits);
        this.opener = new ReplicaOpener(config, directory, index, meta, metaCalls, replicaClockMs, logs, rolls);
    }

    /**
     * Reconciles hosted replicas with the assignments (control thread). An answer older than one applied
     * already (a lower metadata version: a deposed meta leader's, or one overtaken on the way) is ignored, and
     * a replica is deleted only on the word of an answer at least as new as the metadata that created it.
     *
     * @param sentAtMs when the call that brought the answer was sent (the replicas' monotonic clock): the answer
     *                 was read from the meta-service's committed state after it, so an ISR membership it lists held
     *                 then, and lets the replica serve sealed reads until {@code read.lease.ms} after it
     */
    synchronized void apply(NodeAssignments a, long sentAtMs) {
        if (closed.getAsBoolean()) {
            return;
        }
        if (a.getMetadataVersion() < metadataVersion) {
            LOG.warn("Storage node {}: ignoring assignments at metadata version {}, older than {} applied already",
                    config.nodeId(), a.getMetadataVersion(), metadataVersion);
            return;
        }
        answeredVersion = Math.max(answeredVersion, a.getMetadataVersion());
        if (config.segmentCloseAhead() && (a.getFeatureLevel() != clusterFeatureLevel || !featureLevelSeen)) {
            featureLevelSeen = true;
            int level = a.getFeatureLevel();
            int needed = dev.segstore.protocol.FeatureLevels.STORAGE_NODES_CHECKED;
            if (level == 0) {
                // A new cluster before its first shard (which brings the level), or a meta-service of an older build.
                LOG.debug("Storage node {}: no cluster feature level yet: segments close ahead once it is {}", config.nodeId(), needed);
            } else if (level < needed) {
                LOG.info("Storage node {}: segment.close.ahead is on, but the cluster is at feature level {}: segments roll as before "
                        + "(no close ahead) until it is at {} (segstore-admin feature-level --set {}, once every node runs a build that knows it)",
                        config.nodeId(), level, needed, needed);
            } else {
                LOG.info("Storage node {}: the cluster is at feature level {}: segments close ahead", config.nodeId(), level);
            }
        }
        clusterFeatureLevel = a.getFeatureLevel();
        logs.expire();
        // Deleted ids first: from here on requests naming them are refused, before their replicas are dropped below.
        deletedShards.addAll(a.getDeletedShardIdsList());
        boolean dropped = false;
        boolean steppedDown = false;
        for (dev.segstore.protocol.meta.StorageNode n : a.getNodesList()) {
            nodeAddresses.put(n.getNodeId(), n.getHost() + ":" + n.getPort());
        }
        Map<Long, Shard> shards = new ConcurrentHashMap<>();
        a.getShardsList().forEach(s -> shards.put(s.getShardId(), s));
        Set<Key> assigned = new HashSet<>();
        Map<Key, Segment> listed = new java.util.HashMap<>();
        a.getSegmentsList().forEach(s -> listed.put(Key.of(s), s));
        long startedMs = replicaClockMs.getAsLong();
        int deferred = 0;
        int opened = 0;
        for (Segment s : a.getSegmentsList()) {
            Key key = Key.of(s);
            if (deletedShards.contains(key.shardId())) {
                continue; // cannot happen from a consistent answer; never host a deleted id again
            }
            assigned.add(key);
            if (!hosted.containsKey(key) && directory.onOfflineDirectory(key.logName())) {
                continue; // on a failed data directory: reported in heartbeats, never opened anew elsewhere
            }
            if (!hosted.containsKey(key)) {
                if (opened > 0 && replicaClockMs.getAsLong() - startedMs >= openBudgetMs()) {
                    deferred++; // opened by a next answer (see openBudgetMs): this one is not reported as applied
                    continue;
                }
                opened++; // at least one a time: every answer makes progress
            }
            Shard shard = shards.get(s.getShardId());
            Hosted had = hosted.get(key);
            if (had != null && had.assigned.getCreatedVersion() != s.getCreatedVersion()
                    && had.partition.log().logStartOffset() != s.getStartOffset()) {
                // Taken ahead of its seal from an end the seal did not keep (only a replica outside the ISR can hold
                // such a log: its leader lost the tail it handed over at): made again from the committed start.
                LOG.warn("Segment {}: taken ahead from {}, committed from {}: making it again", key.logName(),
                        had.partition.log().logStartOffset(), s.getStartOffset());
                drop(key);
            }
            Hosted h;
            try {
                h = hosted.computeIfAbsent(key, k -> open(k, s, shard));
            } catch (RuntimeException e) {
                LOG.error("Segment {}: cannot open the replica: {}", key.logName(), e.toString());
                continue;
            }
            steppedDown |= take(key, h, s, sentAtMs);
            replicaWaits.hosted(key);
        }
        leaseWaits(a.getLeaseWaitsList());
        for (Key k : List.copyOf(hosted.keySet())) {
            Hosted h = hosted.get(k);
            if (!assigned.contains(k) && h.assigned.getCreatedVersion() > a.getMetadataVersion()) {
                // A roll's next segment taken ahead (takeNext) is newer than an answer sent before the roll committed.
                LOG.debug("Segment {} is missing from assignments at metadata version {}, older than its creation at {}: kept",
                        k.logName(), a.getMetadataVersion(), h.assigned.getCreatedVersion());
                continue;
            }
            Segment closing = assigned.contains(k) ? null : closingBefore(k, h, listed);
            if (closing != null) {
                followPair(k, h, closing);
            } else if (!assigned.contains(k)) {
                dropped = true;
                LOG.info("Segment {} is no longer assigned here: deleting the replica", k.logName());
                drop(k);
            }
        }
        if (deferred > 0) {
            // Not applied in full: the version is not reported, and the next heartbeat (now) opens the next ones.
            LOG.info("Storage node {}: {} new replica(s) of metadata version {} left to the next heartbeat ({} ms spent opening)",
                    config.nodeId(), deferred, a.getMetadataVersion(), replicaClockMs.getAsLong() - startedMs);
            heartbeatNow.run();
            return;
        }
        // Only now, with the replicas taken away dropped (a dropped leader has stepped down: becomeFollower fails
        // the writes waiting on it), is this version reported as applied.
        metadataVersion = a.getMetadataVersion();
        if (dropped || steppedDown) {
            // Say so now: a delete waits for it (MetaService.deleteShard), and so does a leader that replaced this one
            // (it waits out this node's read lease unless told this node applied the change: DeposedLeaders).
            heartbeatNow.run();
        }
    }

    /** Deletes hosted replica {@code k}: it steps down, its index and log go. */
    private void drop(Key k) {
        Hosted gone = hosted.remove(k);
        if (gone == null) {
            return;
        }
        gone.partition.becomeFollower(Integer.MAX_VALUE, -1);
        gone.index.close(); // a read still running on it writes no row nor mark after the drop
        directory.deleteLog(k.logName());
        try {
            index.dropSegment(k.shardId(), k.sequence());
        } catch (org.rocksdb.RocksDBException e) {
            LOG.warn("Dropping the index of {} failed: {}", k.logName(), e.toString());
        }
        String name = gone.assigned.getShard();
        if (hosted.values().stream().noneMatch(other -> other.assigned.getShard().equals(name))) {
            shardGone.accept(name);
        }
    }

    /**
     * The closing segment an answer lists before hosted replica {@code k}, if {@code k} was taken ahead of that one's
     * seal ({@link #takeAhead}) and the answer shows it still open and closing (the seal is not recorded yet, so the
     * answer cannot list {@code k}); else null.
     */
    private static Segment closingBefore(Key k, Hosted h, Map<Key, Segment> listed) {
        Segment before = listed.get(new Key(k.shardId(), k.sequence() - 1));
        if (before == null || before.getStatus() != dev.segstore.protocol.meta.SegmentStatus.OPEN || before.getClosingVersion() == 0
                || h.assigned.getCreatedVersion() != before.getClosingVersion()) {
            return null;
        }
        return before;
    }

    /**
     * Next segment {@code k}, taken ahead of the seal of {@code closing}: kept, and following the pair's leader when
     * another node leads it now (in a later epoch: the replica here led it, or followed an older leader). When this
     * node leads the closing segment, the hand-over takes the next one's lead once the closing one has ended.
     */
    private void followPair(Key k, Hosted h, Segment closing) {
        Segment had = h.assigned;
        if (closing.getLeader() == config.nodeId() || closing.getLeaderEpoch() <= had.getLeaderEpoch()) {
            return;
        }
        LOG.debug("{}: taken ahead of its seal; follows the closing segment's leader {} in epoch {}", k.logName(), closing.getLeader(),
                closing.getLeaderEpoch());
        take(k, h, had.toBuilder().setLeader(closing.getLeader()).setLeaderEpoch(closing.getLeaderEpoch())
                .clearIsr().addAllIsr(closing.getIsrList()).setIsrVersion(closing.getIsrVersion()).build(), NO_LEASE);
    }

    /**
     * A roll's next segment, taken before this node's heartbeat brings it (issue 14 item 7): from the answer to a
     * roll this node asked for as leader, or from the leader of the rolled segment, which puts it in its fetch answers
     * to each follower holding a replica of it (node.proto, {@code FetchResponse.next_segment}). Both come from the
     * controller's answer to the roll, so the segment is committed as given, and opening it and taking its role is
     * what the heartbeat at that metadata version would do for it. What makes a hint safe to take early:
     * <ul>
     * <li>only a segment created after the metadata version of every answer this node has taken (in full or in
     *     part), so a hint never brings back a replica that an answer already opened or dropped (a deleted shard's,
     *     one dropped by retention or moved away), and never of a shard id said to be deleted;</li>
     * <li>only an open segment this node holds a replica of, not hosted yet, on an online data directory;</li>
     * <li>it reports no version as applied and grants no read lease ({@link #NO_LEASE}: the partition's lease counts
     *     from no heartbeat); the heartbeat the roll wakes brings the full assignments, which overrule it as any
     *     newer answer would; a registration's answer older than it does not delete its log;</li>
     * <li>a leadership taken from it and moved meanwhile (a later command) is a stale leader's, as with a stale
     *     heartbeat: its high watermark needs every member of the ISR it was given, whose change is a controller
     *     commit checked against its epoch, so it acknowledges nothing the new leader lacks.</li>
     * </ul>
     */
    synchronized void takeNext(Segment s, Shard shard) {
        if (!wantsNext(s)) {
            return;
        }
        Key key = Key.of(s);
        Hosted h;
        try {
            h = open(key, s, shard);
            hosted.put(key, h);
            LOG.debug("{}: the next segment of a roll, taken before the heartbeat told of it", key.logName());
        } catch (RuntimeException e) {
            LOG.warn("Segment {}: cannot open the next segment of a roll ahead of the heartbeat ({}); the heartbeat will", key.logName(),
                    e.toString());
            return;
        }
        take(key, h, s, NO_LEASE);
        replicaWaits.hosted(key);
    }

    /**
     * Whether {@link #takeNext} would take {@code s} now (read without the monitor, so a caller can skip a hint it
     * holds already; {@code takeNext} checks again under it).
     */
    boolean wantsNext(Segment s) {
        Key key = Key.of(s);
        return !closed.getAsBoolean() && !deletedShards.contains(key.shardId())
                && s.getCreatedVersion() > answeredVersion
                && s.getStatus() == dev.segstore.protocol.meta.SegmentStatus.OPEN && s.getReplicasList().contains(config.nodeId())
                && !hosted.containsKey(key) && !directory.onOfflineDirectory(key.logName());
    }

    /** An assignment watch's upcoming segment {@code s}: its log is made ahead on the roll thread ({@link NextSegments#prepareLater}). */
    void prepareLater(Segment s) {
        rolls.prepareLater(s);
    }

    /** Makes the log of upcoming segment {@code s} ahead of its roll's commit (roll thread: {@link NextSegments#prepareLater}). */
    synchronized void prepare(Segment s) {
        logs.prepare(s);
    }

    /**
     * Makes the log of the next segment of closing segment {@code closingKey} while it closes (the roll thread:
     * {@link NextSegments#prepareAheadLater}).
     */
    synchronized void prepareAhead(Key closingKey) {
        logs.prepareAhead(closingKey);
    }

    /** Where replicas' logs come from, with its counts of logs made ahead and taken (tests, metrics). */
    ReplicaLogs logs() {
        return logs;
    }

    /**
     * Gives hosted replica {@code h} its assignment {@code s}: its role (leader, follower), the ISR the controller
     * committed, the seal, a fetch loop for a follower; {@code sentAtMs} as {@link #apply}'s, or {@link #NO_LEASE}.
     * Answers whether it led before and leads no more.
     */
    private boolean take(Key key, Hosted h, Segment s, long sentAtMs) {
        boolean led = h.partition.role() == Partition.Role.LEADER;
        Segment before = h.assigned;
        h.assigned = s;
        boolean epochChanged = before == null || before.getLeaderEpoch() != s.getLeaderEpoch();
        if (epochChanged) {
            h.leaderSinceNanos = System.nanoTime(); // a new leader gets as long as the old one to answer
        }
        int me = config.nodeId();
        if (epochChanged && before != null) {
            LOG.debug("{}: leader {} in epoch {} (was {} in {}), ISR {}", key.logName(), s.getLeader(), s.getLeaderEpoch(),
                    before.getLeader(), before.getLeaderEpoch(), s.getIsrList());
        }
        try {
            boolean closing = s.getClosingVersion() != 0 && s.getStatus() == dev.segstore.protocol.meta.SegmentStatus.OPEN;
            boolean becomesLeader = s.getLeader() == me && (epochChanged || h.partition.role() != Partition.Role.LEADER);
            if (closing) {
                if (h.closingVersion == 0) {
                    rolls.prepareAheadLater(key); // runs once this (under the monitor, as prepareAhead) has marked it
                }
                h.closingVersion = s.getClosingVersion();
            }
            if (closing && becomesLeader) {
                // Closing before the role it takes as leader: a replica that becomes leader of a closing segment it did
                // not close must take no write on it from the moment it leads (Partition.becomeLeader ->
                // SegmentRoll.tookLead). Marked after, a write (or a close request of its own, in its new epoch) could
                // come in between and land past the end its predecessor handed over at, where the next segment's
                // acknowledged records are. Any other role is taken first (a deposed leader marked closing while it
                // still leads could end the segment and hand over in its old epoch).
                h.partition.markClosing(s.getLeaderEpoch());
            }
            // The role first, then the seal: a follower takes a seal only once it has truncated against its
            // leader (a deposed leader may hold records past the seal point).
            if (becomesLeader) {
                // A leadership taken from a leader that may be alive: wait out its read lease (meta.proto).
                long predecessorLeaseMs = s.getDeposedLeaderMayServe() && s.getStatus() == dev.segstore.protocol.meta.SegmentStatus.OPEN
                        ? config.readLeaseMs() : 0;
                h.partition.becomeLeader(s.getLeaderEpoch(), s.getReplicasList(), s.getIsrList(), s.getIsrVersion(), predecessorLeaseMs);
            } else if (s.getLeader() == me) {
                h.partition.onControllerIsr(s.getLeaderEpoch(), s.getIsrList(), s.getIsrVersion());
                if (!s.getDeposedLeaderMayServe()) {
                    h.partition.predecessorLeaseEndsIn(s.getLeaderEpoch(), 0); // the controller knows no old lease runs
                }
            } else if (epochChanged || h.partition.role() == Partition.Role.LEADER
                    || (s.getLeader() >= 0 && h.partition.role() != Partition.Role.FOLLOWER)) {
                // Another node leads, or none does (leader -1: the segment waits for an ISR member); either
                // way this replica leads no more. With no leader it waits as a follower and fetches nothing.
                h.partition.becomeFollower(s.getLeaderEpoch(), s.getLeader());
            }
            h.partition.assignedIsr(s.getIsrList(), sentAtMs); // NO_LEASE: in the ISR or not, no lease from it
            if (closing && !becomesLeader) {
                h.partition.markClosing(s.getLeaderEpoch());
            }
            if (s.getStatus() == dev.segstore.protocol.meta.SegmentStatus.SEALED) {
                h.partition.markSealed(s.getLeaderEpoch(), s.getEndOffset());
            }
            if (epochChanged) {
                h.leaderChanged(); // with the role taken: a fetch still held at the old leader ends, the next asks the new one
            }
            if (h.partition.role() == Partition.Role.FOLLOWER) {
                fetchers.start(key, h);
            }
        } catch (RuntimeException e) {
            // One replica that cannot take its assignment (a damaged log, a refused epoch) must not keep the
            // others from theirs: it is tried again at the next heartbeat.
            LOG.warn("Segment {}: assignment not applied: {}", key.logName(), e.toString());
        }
        return led && h.partition.role() != Partition.Role.LEADER;
    }

    /**
     * How long one answer may spend opening new replicas (each forces files and directories: tens of ms) before it
     * leaves the others to the next heartbeat: the control thread sends the heartbeats, and an answer placing 700
     * replicas here (1,000 shards created at once) kept it past the session timeout, so the controller fenced a node
     * that was only busy, moved all its leaderships, and the others in turn. Replicas already hosted always take
     * their assignment.
     */
    private long openBudgetMs() {
        return Math.max(100, config.heartbeatMs());
    }

    /**
     * Applies a registration's answer, then deletes every log on disk that it does not assign: replicas of shards
     * deleted, and of segments dropped by retention, while this node was down or fenced (nothing else would ever
     * delete them: only hosted replicas are dropped by later answers). Safe, unlike deleting on an arbitrary answer:
     * the registration commits after every command whose assignments this node saw before, so its answer is at
     * least as new as the metadata that created any log on this disk.
     */
    synchronized void applyRegistration(NodeAssignments a, long sentAtMs) {
        if (a.getMetadataVersion() >= metadataVersion) {
            registeredVersion = a.getHeldChecked() ? a.getMetadataVersion() : -1;
        }
        boolean older = a.getMetadataVersion() < metadataVersion;
        apply(a, sentAtMs);
        if (older || closed.getAsBoolean()) {
            return; // ignored as older than what was applied: it may not list what is newer
        }
        Set<String> assigned = new HashSet<>();
        a.getSegmentsList().forEach(s -> assigned.add(Key.of(s).logName()));
        Set<Key> nextOfClosing = nextOfClosing(a);
        try {
            for (String name : directory.logNames()) {
                if (assigned.contains(name) || !Key.isLogName(name) || hosted.containsKey(Key.parse(name)) || logs.holds(Key.parse(name))
                        || nextOfClosing.contains(Key.parse(name))) {
                    // Assigned; not a replica's log (not named by Key.logName); or hosted and kept by apply above,
                    // as newer than this answer (a roll's next segment taken ahead of it: takeNext).
                    continue;
                }
                LOG.info("Log {} on disk is not assigned to node {} (its segment was deleted or dropped while the node was away): deleting it",
                        name, config.nodeId());
                directory.deleteLog(name);
                Key k = Key.parse(name);
                index.dropSegment(k.shardId(), k.sequence());
            }
        } catch (RuntimeException | org.rocksdb.RocksDBException e) {
            LOG.warn("Storage node {}: deleting unassigned logs failed (tried again at the next registration): {}", config.nodeId(), e.toString());
        }
    }

    /**
     * The logs that may be the next segment of one the answer lists open and closing: its leader may have handed over
     * to it, and a replica here in the pair's ISR may hold acknowledged records of it (kept; taken again when the
     * closing segment's leader names it, or dropped once an answer lists the seal without it).
     */
    private static Set<Key> nextOfClosing(NodeAssignments a) {
        Set<Key> next = new HashSet<>();
        for (Segment s : a.getSegmentsList()) {
            if (s.getClosingVersion() != 0 && s.getStatus() == dev.segstore.protocol.meta.SegmentStatus.OPEN) {
                next.add(new Key(s.getShardId(), s.getSequence() + 1));
            }
        }
        return next;
    }

    /**
     * The meta leader's word on the read leases of the leaders replaced by replicas here
     * (NodeAssignments.lease_waits, WatchAssignmentsResponse.lease_waits): each waits at most that long more.
     */
    synchronized void leaseWaits(List<dev.segstore.protocol.meta.LeaseWait> waits) {
        for (dev.segstore.protocol.meta.LeaseWait w : waits) {
            Hosted h = hosted.get(new Key(w.getShardId(), w.getSequence()));
            if (h != null) {
                h.partition.predecessorLeaseEndsIn(w.getLeaderEpoch(), w.getRemainingMs());
            }
        }
    }

    /**
     * A controlled shutdown begins: no replica here answers reads as an open segment's leader any more (hosted now or
     * later), before the node asks the controller to hand its leaderships over. Their successors then need not wait
     * for this node's read leases to end (Partition.stopLeaderReads).
     */
    synchronized void stopLeaderReads() {
        leaderReadsStopped = true;
        hosted.values().forEach(h -> h.partition.stopLeaderReads());
    }

    /**
     * Opens replica {@code key} of {@code s} ({@link ReplicaOpener#open}), with the version up to which the last
     * registration checked the logs held and whether leader reads are stopped (both guarded by this monitor).
     */
    private Hosted open(Key key, Segment s, Shard shard) {
        return opener.open(key, s, shard, registeredVersion, leaderReadsStopped);
    }

    /** The cluster's feature level as the newest assignments applied said (0 from an older meta-service). */
    int clusterFeatureLevel() {
        return clusterFeatureLevel;
    }

    /** A follower's fetch answer named {@code s}, the segment after one this node hosts ({@link NextSegments#hint}). */
    void hint(Segment s, Shard shard, int fetchEpoch) {
        rolls.hint(s, shard, fetchEpoch);
    }

    /**
     * Close ahead: hosts {@code n}, the next segment of a closing one this node hosts, before the seal is recorded: as
     * its leader after this node handed over, or as a follower told of it by the closing segment's leader. Taken only
     * while the last assignment of the closing segment shows it open and closing, with the leader and epoch {@code n}
     * names (so from the pair's current leader as this node knows it), and only if the node does not host the
     * committed segment already; a log on disk that starts elsewhere holds nothing acknowledged (every ISR member
     * learns the end before the leader takes a write after it) and is made again.
     */
    synchronized void takeAhead(Segment n, Shard shard) {
        Key key = Key.of(n);
        Hosted closing = hosted.get(new Key(key.shardId(), key.sequence() - 1));
        if (closed.getAsBoolean() || deletedShards.contains(key.shardId()) || closing == null || !n.getReplicasList().contains(config.nodeId())) {
            return;
        }
        Segment c = closing.assigned;
        if (c.getStatus() != dev.segstore.protocol.meta.SegmentStatus.OPEN || closing.closingVersion == 0
                || n.getCreatedVersion() != closing.closingVersion || c.getLeader() != n.getLeader() || c.getLeaderEpoch() != n.getLeaderEpoch()) {
            return;
        }
        Hosted h = hosted.get(key);
        if (h != null) {
            Segment had = h.assigned;
            if (had.getCreatedVersion() != closing.closingVersion || had.getLeaderEpoch() > n.getLeaderEpoch()) {
                return; // the committed segment (the answers rule it), or taken in a later epoch already
            }
            if (h.partition.log().logStartOffset() != n.getStartOffset()) {
                // First, whatever epoch it was taken in: a leader that lost the tail it handed over at (a page-cache
                // crash) hands over again from another end, and this log (outside the ISR) can never follow it.
                LOG.warn("{}: taken ahead from {}, the leader hands over at {}: made again", key.logName(),
                        h.partition.log().logStartOffset(), n.getStartOffset());
                drop(key);
                h = null;
            } else if (had.getLeaderEpoch() == n.getLeaderEpoch() && had.getLeader() == n.getLeader()
                    && (had.getLeader() != config.nodeId() || h.partition.role() == Partition.Role.LEADER)) {
                return; // taken in this epoch already
            } else {
                take(key, h, n, NO_LEASE);
                return;
            }
        }
        if (directory.onOfflineDirectory(key.logName())) {
            return;
        }
        try {
            h = open(key, n, shard); // a log on disk that starts elsewhere is made again (openLog)
            hosted.put(key, h);
        } catch (RuntimeException e) {
            LOG.warn("Segment {}: cannot open the next segment ahead of its seal ({}); asked again at the next hint", key.logName(), e.toString());
            return;
        }
        LOG.debug("{}: the next segment, taken ahead of the seal (leader {} in epoch {}, from {})", key.logName(), n.getLeader(),
                n.getLeaderEpoch(), n.getStartOffset());
        take(key, h, n, NO_LEASE);
        replicaWaits.hosted(key);
    }
}
