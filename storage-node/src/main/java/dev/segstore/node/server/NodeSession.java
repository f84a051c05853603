package dev.segstore.node.server;

import dev.segstore.adapter.ErrorCode;
import dev.segstore.client.MetaClient;
import dev.segstore.node.replica.Partition;
import dev.segstore.protocol.meta.NodeAssignments;
import dev.segstore.protocol.meta.Segment;
import dev.segstore.protocol.rpc.RpcException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

/**
 * A storage node's session with the meta-service: registration (tried every heartbeat period until it succeeds),
 * heartbeats (with the replicas on failed data directories and the leaders found silent), heartbeats asked for
 * between the periodic ones, the assignment watch ({@code meta.WatchAssignments}) and the controlled shutdown. The
 * registration, the heartbeats and the watch calls run on the node's control thread ({@code node-control}), which
 * {@link StorageNode} owns and schedules; a watch's answer is taken where its call completes (and the next watch sent
 * from there), {@link #requestHeartbeat} may be called from any thread, and {@link #shutdownGracefully} runs on its
 * caller's and waits for the control thread. The {@link AssignmentReconciler} applies the answers. {@link StorageNode#close} ends the waits here
 * ({@link #endWaits}).
 */
final class NodeSession {
    /** Logs under StorageNode's name, as before the session was split from it (log settings that name it still apply). */
    private static final Logger LOG = LoggerFactory.getLogger(StorageNode.class);
    private final NodeConfig config;
    private final DataDirectories directories;
    private final MetaClient meta;
    private final MetaCalls metaCalls;
    private final AssignmentReconciler reconciler;
    private final Map<Hosted.Key, Hosted> hosted;
    /** The node's control thread (StorageNode's, which shuts it down). */
    private final ScheduledExecutorService control;
    /** Whether the node is closed (StorageNode's {@code closed}, written before {@link #endWaits} runs). */
    private final BooleanSupplier closed;
    private final int boundPort;
    /** The meta call the control thread waits for now, if any: {@link #endWaits} ends the wait (see {@link #awaitMeta}). */
    private volatile CompletableFuture<?> controlWait;
    private volatile long incarnation = -1;
    /** This process's random id: a retried registration of it is not taken for a restart. */
    private final long instanceId = java.util.concurrent.ThreadLocalRandom.current().nextLong(1, Long.MAX_VALUE);
    /**
     * The page cache this node's segment files were written through ({@code RegisterNodeRequest.page_cache_id}),
     * read at start once the newest segment of each log was forced; "" when unknown.
     */
    private final String pageCacheId;
    private volatile int registrationFailures; // written by the control thread only
    /** When a failed registration was last logged as a warning, and the failures since (control thread only). */
    private long registrationWarnedNanos;
    private int registrationFailuresUnlogged;
    /** Set by {@link #shutdownGracefully}: the node no longer registers again (a fence then is final for it). */
    private volatile boolean shuttingDown;
    /** Counted down by {@link #endWaits}: ends a controlled shutdown's wait. */
    private final java.util.concurrent.CountDownLatch closing = new java.util.concurrent.CountDownLatch(1);
    /** A heartbeat asked for by {@link #requestHeartbeat} waits to run on the control thread. */
    private final java.util.concurrent.atomic.AtomicBoolean heartbeatRequested = new java.util.concurrent.atomic.AtomicBoolean();
    /**
     * How long the meta leader may hold this node's assignment watch ({@code meta.WatchAssignments}) when nothing
     * changes: a few seconds, so a watch stuck on a deposed meta leader is given up soon, heartbeats going on meanwhile.
     */
    static final long WATCH_WAIT_MS = 5_000;
    /** Set when the meta-service does not know {@code meta.WatchAssignments} (an older one): heartbeats only. */
    private volatile boolean watchUnsupported;
    /** The replicas' monotonic clock: when heartbeats are sent ({@code read.lease.ms} counts from there). */
    private final java.util.function.LongSupplier monotonicMs;

    /**
     * @param hosted    the node's hosted-replica map itself (not a copy)
     * @param control   the node's control thread: heartbeats, watches and the controlled shutdown's answers run there
     * @param closed    whether the node is closed
     * @param boundPort the port the node serves on, as bound
     */
    NodeSession(NodeConfig config, java.util.function.LongSupplier monotonicMs, DataDirectories directories, MetaClient meta,
                MetaCalls metaCalls, AssignmentReconciler reconciler, Map<Hosted.Key, Hosted> hosted, ScheduledExecutorService control,
                BooleanSupplier closed, String pageCacheId, int boundPort) {
        this.config = config;
        this.monotonicMs = monotonicMs;
        this.directories = directories;
        this.meta = meta;
        this.metaCalls = metaCalls;
        this.reconciler = reconciler;
        this.hosted = hosted;
        this.control = control;
        this.closed = closed;
        this.pageCacheId = pageCacheId;
        this.boundPort = boundPort;
    }

    /**
     * Called by {@link StorageNode#close} once it set {@code closed}: ends a controlled shutdown's wait, and fails
     * the meta call the control thread waits for (CLOSED). {@code closed} is written before {@link #controlWait} is
     * read here, and {@link #awaitMeta} writes {@link #controlWait} before it reads {@code closed} (both volatile):
     * either this sees the wait and fails it, or {@link #awaitMeta} sees the node closed and fails it itself.
     */
    void endWaits() {
        closing.countDown();
        CompletableFuture<?> waiting = controlWait;
        if (waiting != null) {
            waiting.completeExceptionally(new RpcException(ErrorCode.CLOSED.code(), "storage node " + config.nodeId() + " is closing"));
        }
    }

    /** Whether the node has registered with the meta-service (it serves no replica before). */
    boolean registered() {
        return incarnation >= 0;
    }

    /** Failed registration attempts since the node started (each is retried on the next tick). */
    int registrationFailures() {
        return registrationFailures;
    }

    private void register() {
        try {
            long sentAtMs = monotonicMs.getAsLong(); // the answer's ISR memberships hold from here (read.lease.ms)
            // The logs it holds: the controller marks every assigned replica it does not hold offline (a lost log, or
            // one on a directory that is offline) before it may lead or count in an ISR.
            List<dev.segstore.protocol.meta.SegmentId> held = segmentIds(directories.logNames());
            NodeAssignments a = awaitMeta(metaCalls.call(dev.segstore.protocol.MetaMethods.REGISTER_NODE,
                    () -> meta.registerNode(config.nodeId(), config.registeredHost(), config.registeredPort(boundPort), !directories.indexDirectoryOnline(),
                            instanceId, pageCacheId, held, config.readLeaseMs(), dev.segstore.protocol.FeatureLevels.MAX)), 30);
            incarnation = a.getNode().getIncarnation();
            LOG.info("Storage node {} registered, incarnation {}, {} segment(s) assigned", config.nodeId(), incarnation, a.getSegmentsCount());
            reconciler.applyRegistration(a, sentAtMs);
            registrationWarnedNanos = 0; // a later failure (a registration after a fence) is warned of at once
            registrationFailuresUnlogged = 0;
        } catch (Exception e) {
            registrationFailures++;
            Throwable cause = e.getCause() != null ? e.getCause() : e;
            long now = System.nanoTime();
            if (registrationWarnedNanos == 0 || now - registrationWarnedNanos >= TimeUnit.SECONDS.toNanos(10)) {
                // Tried again every tick; warned at the first failure and at most every 10 s after (a refused build
                // or a meta-service that is down would otherwise log twice a second).
                LOG.warn("Storage node {}: registration with the meta-service failed ({}){}; trying again", config.nodeId(), cause.toString(),
                        registrationFailuresUnlogged == 0 ? "" : " (and " + registrationFailuresUnlogged + " times since the last warning)");
                registrationWarnedNanos = now == 0 ? 1 : now;
                registrationFailuresUnlogged = 0;
            } else {
                registrationFailuresUnlogged++;
                LOG.debug("Storage node {}: registration failed again ({})", config.nodeId(), cause.toString());
            }
        }
    }

    /**
     * The open segments this node follows whose leader has answered none of its fetches for {@code leader.unreachable.ms}
     * (since it took that leader, in that epoch): reported in heartbeats (HeartbeatRequest.unreachable_leaders).
     */
    private List<dev.segstore.protocol.meta.UnreachableLeader> silentLeaders() {
        long limitNanos = TimeUnit.MILLISECONDS.toNanos(config.leaderUnreachableMs());
        if (limitNanos == 0) {
            return List.of();
        }
        long now = System.nanoTime();
        long sinceLast = lastSilenceCheckNanos == 0 ? 0 : now - lastSilenceCheckNanos; // the first check (at start) compares with none
        lastSilenceCheckNanos = now;
        if (sinceLast > Math.max(TimeUnit.SECONDS.toNanos(1), limitNanos / 2)) {
            // Checked every heartbeat and every tick: a check this late means this process did not run (paused, or
            // starved), and its leaders' silence is counted again from now. A node back from a pause must not report
            // leaders that answered all along.
            LOG.warn("Storage node {}: this process did not run for {} ms (paused?): counting its leaders' silence again from now",
                    config.nodeId(), TimeUnit.NANOSECONDS.toMillis(sinceLast));
            hosted.values().forEach(h -> h.leaderSinceNanos = now);
            return List.of();
        }
        List<dev.segstore.protocol.meta.UnreachableLeader> out = new java.util.ArrayList<>();
        hosted.forEach((k, h) -> {
            Segment a = h.assigned;
            long silentNanos = h.leaderSilentNanos(now);
            if (a == null || a.getStatus() != dev.segstore.protocol.meta.SegmentStatus.OPEN || a.getLeader() < 0 || a.getLeader() == config.nodeId()
                    || h.partition.role() != Partition.Role.FOLLOWER || silentNanos < limitNanos || directories.onOfflineDirectory(k.logName())) {
                return;
            }
            out.add(dev.segstore.protocol.meta.UnreachableLeader.newBuilder().setShard(a.getShard()).setShardId(a.getShardId())
                    .setSequence(a.getSequence()).setLeader(a.getLeader()).setLeaderEpoch(a.getLeaderEpoch())
                    .setSilentMs(TimeUnit.NANOSECONDS.toMillis(silentNanos)).build());
        });
        return out;
    }

    /** System.nanoTime() of the last {@link #silentLeaders} check (control thread), 0 before the first. */
    private long lastSilenceCheckNanos;

    /** Segments whose silent leader was reported already (control thread), so that a new one is reported at once. */
    private final java.util.Set<String> reportedSilent = new java.util.HashSet<>();

    /** Control thread, often: a leader newly found silent is reported now, not at the next heartbeat. */
    void silentLeaderTick() {
        java.util.Set<String> now = new java.util.HashSet<>();
        for (dev.segstore.protocol.meta.UnreachableLeader u : silentLeaders()) {
            now.add(u.getShardId() + "-" + u.getSequence() + "@" + u.getLeaderEpoch());
        }
        boolean fresh = !reportedSilent.containsAll(now);
        if (fresh) {
            LOG.warn("Storage node {}: leaders silent for {} ms or more: {}; reporting them", config.nodeId(), config.leaderUnreachableMs(), now);
        }
        reportedSilent.clear();
        reportedSilent.addAll(now);
        if (fresh) {
            heartbeat();
        }
    }

    /** How many replicas on failed data directories the last heartbeat reported (control thread; logged when it changes). */
    private int reportedOffline;

    /** The segments of replica logs named {@code names} (names that are not a replica's, Key.logName, are left out). */
    private static List<dev.segstore.protocol.meta.SegmentId> segmentIds(List<String> names) {
        List<dev.segstore.protocol.meta.SegmentId> ids = new java.util.ArrayList<>();
        for (String name : names) {
            if (Hosted.Key.isLogName(name)) {
                Hosted.Key k = Hosted.Key.parse(name);
                ids.add(dev.segstore.protocol.meta.SegmentId.newBuilder().setShardId(k.shardId()).setSequence(k.sequence()).build());
            }
        }
        return ids;
    }

    /**
     * Asks for a heartbeat now, on the control thread, besides the periodic ones: after a roll (learn the next
     * segment), after dropping a replica (a delete waits for it), and when a leader this node follows says it no
     * longer leads (a leadership moved: this node may be the new leader). Requests made while one waits to run
     * are one heartbeat.
     */
    void requestHeartbeat() {
        if (!heartbeatRequested.compareAndSet(false, true)) {
            return;
        }
        try {
            control.execute(() -> {
                heartbeatRequested.set(false);
                heartbeat();
            });
        } catch (java.util.concurrent.RejectedExecutionException stopped) {
            heartbeatRequested.set(false); // closed
        }
    }

    /** Control thread, every heartbeat interval: registers until registered, then heartbeats. */
    void heartbeat() {
        if (closed.getAsBoolean()) {
            return;
        }
        if (!registered()) {
            if (!shuttingDown) {
                register();
            }
            return;
        }
        try {
            // Failed data directories are reported with every heartbeat: the replicas on them leave their ISRs and
            // leaderships at once; when the first one (it holds the index) failed, the controller fences this node
            // (instead of after the session timeout).
            long current = incarnation;
            long sentAtMs = monotonicMs.getAsLong(); // the answer's ISR memberships hold from here (read.lease.ms)
            List<dev.segstore.protocol.meta.SegmentId> offline = segmentIds(directories.offlineLogs());
            List<dev.segstore.protocol.meta.UnreachableLeader> silent = silentLeaders();
            if (offline.size() != reportedOffline) {
                reportedOffline = offline.size();
                LOG.error("Storage node {}: {} replica(s) on failed data directories {} are reported offline: {}", config.nodeId(),
                        offline.size(), directories.all().stream().filter(d -> !d.isOnline()).map(d -> d.root() + " (" + d.failure() + ")").toList(),
                        directories.offlineLogs());
            }
            NodeAssignments a = awaitMeta(metaCalls.call(dev.segstore.protocol.MetaMethods.HEARTBEAT,
                    () -> meta.heartbeat(config.nodeId(), current, !directories.indexDirectoryOnline(), reconciler.appliedVersion(), offline,
                            silent, dev.segstore.protocol.FeatureLevels.MAX)), 10);
            reconciler.apply(a, sentAtMs);
        } catch (Exception e) {
            Throwable cause = e.getCause() != null ? e.getCause() : e;
            if (cause instanceof RpcException re && re.code() == ErrorCode.FENCED_EPOCH.code()) {
                incarnation = -1;
                if (shuttingDown) {
                    LOG.warn("Storage node {} was fenced while shutting down; not registering again", config.nodeId());
                    return;
                }
                LOG.warn("Storage node {} was fenced; registering again", config.nodeId());
                register();
            } else if (!closed.getAsBoolean()) {
                LOG.warn("Heartbeat failed: {}", cause.toString());
            }
        }
    }

    /**
     * Waits, on the control thread, up to {@code timeoutSeconds} for a meta call's answer. {@link StorageNode#close}
     * ends the wait at once (CLOSED) by failing the answer, not by interrupting the thread: the control thread also
     * reads and writes log files (indexing, opening replicas), and an interrupt closes a FileChannel under the I/O it
     * is doing (ClosedByInterruptException), which took the whole data directory offline at a clean stop, so its logs
     * were not closed cleanly and no producer state was saved.
     */
    private <T> T awaitMeta(CompletableFuture<T> answer, long timeoutSeconds) throws Exception {
        controlWait = answer;
        try {
            if (closed.getAsBoolean()) {
                answer.completeExceptionally(new RpcException(ErrorCode.CLOSED.code(), "storage node " + config.nodeId() + " is closing"));
            }
            return answer.get(timeoutSeconds, TimeUnit.SECONDS);
        } finally {
            controlWait = null;
        }
    }

    // ---- assignment watch (meta.WatchAssignments) ---------------------------------------------------------

    /**
     * Keeps one long poll open at the meta leader, answered as soon as a command that may change this node's
     * assignments (a roll placing a new segment here, a leadership moved to it, a fence) is applied: then the node
     * heartbeats at once, on the control thread, instead of at its next period. The watch carries no assignments;
     * only the heartbeat's answer is applied, through the reconciler's checks (versions, the read lease counted from
     * the heartbeat's send time), so a lost or spurious watch answer only moves a heartbeat. Goes through the fault
     * seam as every meta call. A meta-service without the method (an older one) answers "unknown method": the node
     * then stops watching and learns at heartbeats, as before.
     */
    void watchAssignments() {
        if (closed.getAsBoolean() || watchUnsupported) {
            return;
        }
        long current = incarnation;
        if (current < 0) {
            watchLater(); // not registered (yet, or fenced): heartbeats register it
            return;
        }
        long applied = reconciler.appliedVersion();
        long sentAt = System.nanoTime();
        CompletableFuture<dev.segstore.protocol.meta.WatchAssignmentsResponse> answer;
        try {
            answer = metaCalls.call(dev.segstore.protocol.MetaMethods.WATCH_ASSIGNMENTS,
                    () -> meta.watchAssignments(config.nodeId(), current, applied, WATCH_WAIT_MS));
        } catch (RuntimeException e) {
            LOG.debug("Storage node {}: assignment watch not sent: {}", config.nodeId(), e.toString());
            watchLater();
            return;
        }
        answer.whenComplete((r, e) -> onWatchAnswer(r, e, applied, sentAt));
    }

    private void onWatchAnswer(dev.segstore.protocol.meta.WatchAssignmentsResponse r, Throwable e, long applied, long sentAtNanos) {
        if (closed.getAsBoolean()) {
            return;
        }
        if (e != null) {
            Throwable cause = ReplicaRequests.unwrapped(e);
            if (cause instanceof RpcException re && re.code() == ErrorCode.INVALID_ARGUMENT.code()
                    && re.getMessage() != null && re.getMessage().contains("unknown method")) {
                watchUnsupported = true;
                LOG.info("Storage node {}: the meta-service does not know {}; learning assignments at heartbeats only",
                        config.nodeId(), dev.segstore.protocol.MetaMethods.WATCH_ASSIGNMENTS);
                return;
            }
            if (cause instanceof RpcException re && re.code() == ErrorCode.CLOSED.code()) {
                return;
            }
            LOG.debug("Storage node {}: assignment watch failed ({}); watching again in {} ms", config.nodeId(), cause.toString(),
                    config.heartbeatMs());
            watchLater();
            return;
        }
        r.getUpcomingList().forEach(reconciler::prepareLater);
        if (r.getLeaseWaitsCount() > 0) {
            try {
                control.execute(() -> reconciler.leaseWaits(r.getLeaseWaitsList()));
            } catch (java.util.concurrent.RejectedExecutionException stopped) {
                return;
            }
        }
        if (r.getChanged()) {
            LOG.debug("Storage node {}: assignments changed (metadata version {}); heartbeating now", config.nodeId(), r.getMetadataVersion());
            try {
                control.execute(() -> {
                    heartbeat();
                    if (reconciler.appliedVersion() > applied) {
                        watchAssignments();
                    } else {
                        watchLater(); // the heartbeat failed or was not newer: do not spin on the same answer
                    }
                });
            } catch (java.util.concurrent.RejectedExecutionException stopped) {
                // closed
            }
        } else if (r.getUpcomingCount() > 0 || r.getLeaseWaitsCount() > 0) {
            watchAssignments(); // told of a roll being committed, or of a lease wait's end: watching again at once
        } else if (System.nanoTime() - sentAtNanos < TimeUnit.MILLISECONDS.toNanos(WATCH_WAIT_MS / 2)) {
            watchLater(); // nothing new, early: replaced by another watch of this node id, or a leader closing
        } else {
            watchAssignments();
        }
    }

    /** Whether the node watches its assignments (false once the meta-service said it does not know the method). */
    boolean watchingAssignments() {
        return !watchUnsupported;
    }

    /** The next watch, a heartbeat period from now. */
    private void watchLater() {
        try {
            control.schedule(this::watchAssignments, config.heartbeatMs(), TimeUnit.MILLISECONDS);
        } catch (java.util.concurrent.RejectedExecutionException stopped) {
            // closed
        }
    }

    /**
     * The controlled shutdown {@link StorageNode#shutdownGracefully} describes. Runs on the caller's thread (the
     * launcher's SIGTERM hook), which waits there for the meta-service's answers; each answer is applied on the
     * control thread.
     */
    boolean shutdownGracefully() {
        long timeoutMs = config.controlledShutdownTimeoutMs();
        if (closed.getAsBoolean() || timeoutMs <= 0 || !registered()) {
            return false;
        }
        shuttingDown = true;
        // Before asking: the successors the hand-over elects do not wait for this node's read leases.
        reconciler.stopLeaderReads();
        long start = System.nanoTime();
        long deadline = start + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
        long led = -1;
        try {
            while (true) {
                long current = incarnation;
                if (current < 0) {
                    LOG.warn("Storage node {} was fenced while shutting down: its leaderships moved with the fence", config.nodeId());
                    return false;
                }
                try {
                    long sentAtMs = monotonicMs.getAsLong();
                    NodeAssignments a = metaCalls.call(dev.segstore.protocol.MetaMethods.CONTROLLED_SHUTDOWN,
                            () -> meta.controlledShutdown(config.nodeId(), current)).get(remaining(deadline), TimeUnit.NANOSECONDS);
                    control.submit(() -> reconciler.apply(a, sentAtMs)).get(remaining(deadline), TimeUnit.NANOSECONDS);
                    led = a.getSegmentsList().stream().filter(x -> x.getLeader() == config.nodeId()).count();
                    if (led == 0) {
                        LOG.info("Storage node {} handed over its leaderships in {} ms; stopping", config.nodeId(),
                                (System.nanoTime() - start) / 1_000_000);
                        return true;
                    }
                    LOG.info("Storage node {} still leads {} segment(s) that have no other live in-sync replica; asking again",
                            config.nodeId(), led);
                } catch (java.util.concurrent.ExecutionException e) {
                    Throwable cause = e.getCause();
                    if (cause instanceof RpcException re && re.code() == ErrorCode.FENCED_EPOCH.code()) {
                        LOG.warn("Storage node {}: {}; stopping", config.nodeId(), re.getMessage());
                        return false;
                    }
                    LOG.warn("Storage node {}: controlled shutdown request failed ({}); trying again", config.nodeId(), cause.toString());
                }
                if (closing.await(Math.min(config.heartbeatMs(), remaining(deadline) / 1_000_000), TimeUnit.MILLISECONDS)) {
                    return false;
                }
                if (remaining(deadline) <= 0) {
                    break;
                }
            }
        } catch (java.util.concurrent.TimeoutException e) {
            // the deadline passed while waiting for an answer
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        } catch (java.util.concurrent.RejectedExecutionException e) {
            return false; // closed meanwhile
        }
        LOG.warn("Storage node {}: controlled shutdown gave up after {} ms ({} segment(s) still led: they move once its session expires)",
                config.nodeId(), timeoutMs, led < 0 ? "unknown" : led);
        return false;
    }

    private static long remaining(long deadlineNanos) {
        return Math.max(0, deadlineNanos - System.nanoTime());
    }
}
