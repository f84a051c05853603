package dev.segstore.meta.server;

import dev.segstore.adapter.ErrorCode;
import dev.segstore.meta.raft.Consensus;
import dev.segstore.meta.state.MetaState;
import dev.segstore.protocol.meta.Command;
import dev.segstore.protocol.meta.ExpireSegmentsCommand;
import dev.segstore.protocol.meta.FenceNodeCommand;
import dev.segstore.protocol.meta.NodeState;
import dev.segstore.protocol.meta.StorageNode;
import dev.segstore.protocol.rpc.RpcException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;
import java.util.function.LongUnaryOperator;

/**
 * The controller: runs on the Raft leader only. It places replicas of new segments, and fences storage nodes
 * that stop sending heartbeats (the state machine then moves their leaderships to live ISR members).
 *
 * <p>Heartbeat times live only in the leader's memory, never in the Raft log: replicating every heartbeat
 * would cost a log entry per node per interval. A new leader therefore starts every node's session afresh,
 * which delays the fencing of a node that died during the failover by at most one session timeout.
 *
 * <p>Two clocks. The wall clock only stamps commands (never below the newest command time applied:
 * {@link MetaState#stamped}). Every duration this node decides on is measured on its monotonic clock:
 * sessions, the load cache, and how much of a segment's age retention may count ({@link #retentionClock}), so a
 * wall clock stepped forward (or a new leader whose clock is ahead) neither fences every node nor drops
 * segments sealed moments ago, and one stepped back does not keep a dead node alive.
 */
public final class Controller {
    private static final Logger LOG = LoggerFactory.getLogger(Controller.class);
    private final MetaState state;
    private final Consensus raft;
    private final long sessionTimeoutMs;
    /** Wall-clock time, ms: stamps commands, and bounds retention's clock. */
    private final LongSupplier clockMs;
    /** Monotonic time, ms (System.nanoTime based): measures every duration. */
    private final LongSupplier monotonicMs;
    /** Leaderships moved from live nodes in this term, and when their leases end (soft state). */
    private final DeposedLeaders deposedLeaders;
    private volatile java.util.function.BiConsumer<Integer, dev.segstore.protocol.meta.LeaseWait> leaseReleases = (node, wait) -> { };
    /** Monotonic time of each node's last heartbeat to this leader. */
    private final Map<Integer, Long> lastHeartbeat = new ConcurrentHashMap<>();
    /**
     * Nodes (id -> incarnation) whose fence for a lapsed session is proposed and not applied yet. Their heartbeats
     * are refused meanwhile ({@link #beingFenced}): an answer read before the fence applies would confirm the node's
     * leaderships and start a read lease that the successors, elected by the fence without waiting, do not wait for.
     */
    private final Map<Integer, Long> fencing = new ConcurrentHashMap<>();
    /** The newest metadata version each node said (in a heartbeat to this leader) it has applied. */
    private final Map<Integer, Long> appliedVersions = new ConcurrentHashMap<>();
    /** Answers of deletes waiting for their second phase, by shard id (guarded by this). */
    private final Map<Long, List<java.util.concurrent.CompletableFuture<Void>>> deleteWaiters = new java.util.HashMap<>();
    /** Shard ids whose FinishDeleteShard is proposed and not yet answered (guarded by this). */
    private final java.util.Set<Long> finishing = new java.util.HashSet<>();
    private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "meta-controller");
        t.setDaemon(true);
        return t;
    });
    private final java.util.concurrent.atomic.AtomicInteger rotation = new java.util.concurrent.atomic.AtomicInteger();
    private volatile ScheduledFuture<?> sessionCheck;
    private volatile ScheduledFuture<?> retentionCheck;
    private Map<Integer, int[]> cachedLoad;
    private long cachedLoadAtMs;
    /** Set when this node's term as leader starts; null before the first. */
    private volatile Term term;

    /** The start of a term as leader: the monotonic and the wall-clock time then, and the newest time the state showed. */
    private record Term(long startMonotonicMs, long startWallMs, long logTimeMs) {
    }

    /** Reports of silent leaders taken (tests, monitoring). */
    private final java.util.concurrent.atomic.AtomicLong silentLeaderReports = new java.util.concurrent.atomic.AtomicLong();

    /** How many reports of silent leaders this controller took (HeartbeatRequest.unreachable_leaders, one per segment). */
    public long silentLeaderReports() {
        return silentLeaderReports.get();
    }

    /** Followers' reports of leaders that answer none of their fetches (soft state of this leader). */
    private final UnreachableLeaders unreachableLeaders;

    public Controller(MetaState state, Consensus raft, long sessionTimeoutMs, LongSupplier clockMs, LongSupplier monotonicMs) {
        this.state = state;
        this.raft = raft;
        this.sessionTimeoutMs = sessionTimeoutMs;
        this.unreachableLeaders = new UnreachableLeaders(sessionTimeoutMs);
        this.deposedLeaders = new DeposedLeaders(sessionTimeoutMs);
        this.clockMs = clockMs;
        this.monotonicMs = monotonicMs;
    }

    public void onLeaderStart() {
        beginTerm();
        long period = Math.max(50, sessionTimeoutMs / 4);
        sessionCheck = timer.scheduleWithFixedDelay(() -> {
            fenceExpired();
            finishDeletes();
            clearDeposed();
        }, period, period, TimeUnit.MILLISECONDS);
        retentionCheck = timer.scheduleWithFixedDelay(this::expireRetained, RETENTION_CHECK_MS, RETENTION_CHECK_MS, TimeUnit.MILLISECONDS);
    }

    /** Starts this node's term as leader (the periodic checks aside): fresh sessions, retention's clock. */
    void beginTerm() {
        long now = monotonicMs.getAsLong();
        term = new Term(now, clockMs.getAsLong(), state.newestTimeMs());
        synchronized (this) {
            cachedLoad = null;
        }
        lastHeartbeat.clear();
        deposedSeen.clear(); // seen afresh from now: a command of an earlier term was committed before
        deposedLeaders.clear(); // this term's moves only: new leaders of older ones wait their whole lease
        appliedVersions.clear(); // learnt afresh from the next heartbeats: a node's report to an old leader is not known here
        for (StorageNode n : state.nodes()) {
            lastHeartbeat.put(n.getNodeId(), now); // a fresh session for everyone
        }
    }

    /** How often the leader looks for segments past their shard's retention. */
    public static final long RETENTION_CHECK_MS = 1_000;

    /**
     * Retention: proposes dropping each shard's oldest segments sealed {@code retention_ms} ago or longer (the
     * state machine checks the rule again when it applies the command).
     */
    void expireRetained() {
        if (!raft.isLeader() || term == null) {
            return;
        }
        for (ExpireSegmentsCommand c : state.expired(retentionClock())) {
            LOG.info("Shard '{}': segments below {} are past retention; dropping them", c.getShard(), c.getBeforeSequence());
            raft.propose(command().setExpireSegments(c).build())
                    .whenComplete((r, e) -> {
                        if (e != null || !r.isOk()) {
                            LOG.warn("Dropping expired segments of '{}' failed: {}", c.getShard(), e != null ? e.toString() : r.message());
                        }
                    });
        }
    }

    /**
     * The time at which retention judges a sealed segment, given its seal time: this leader's wall clock, but
     * never more than the age it can vouch for without trusting that clock's past: the age the log showed when
     * this term began (the newest time the state showed then minus the seal time; none for a segment sealed since) plus
     * the time the monotonic clock has measured since. A segment sealed in this term was stamped by this node's
     * clock, so its age counts from the seal as that clock ran when the term began; a later step forward adds
     * nothing. Being at most the wall clock, it is at most the expiry command's time: the state machine's own
     * check passes whenever this one does.
     *
     * <p>So a wall clock stepped forward, or a new leader whose clock is ahead, drops no segment before the
     * retention has passed as far as the log and this node's monotonic clock show. The cost is on the safe side:
     * after a failover a segment may wait longer, by at most the time from the last command committed to the
     * new term, and never by more than the retention.
     */
    private LongUnaryOperator retentionClock() {
        Term t = term;
        long wall = clockMs.getAsLong();
        long elapsed = monotonicMs.getAsLong() - t.startMonotonicMs();
        return sealedAt -> Math.min(wall, Math.min(t.startWallMs(), Math.max(t.logTimeMs(), sealedAt)) + elapsed);
    }

    /** A command stamped with this leader's wall-clock time, never below the newest command time applied. */
    private Command.Builder command() {
        return state.stamped(Command.newBuilder(), clockMs.getAsLong());
    }

    public void onLeaderStop() {
        for (ScheduledFuture<?> s : new ScheduledFuture<?>[] {sessionCheck, retentionCheck}) {
            if (s != null) {
                s.cancel(false);
            }
        }
        unreachableLeaders.clear();
        deposedLeaders.clear();
        List<java.util.concurrent.CompletableFuture<Void>> waiting = new ArrayList<>();
        synchronized (this) {
            deleteWaiters.values().forEach(waiting::addAll);
            deleteWaiters.clear();
            finishing.clear();
        }
        // Retriable: the client asks the new leader, where the shard is still DELETING (or gone) and it waits again.
        waiting.forEach(f -> f.completeExceptionally(new RpcException(ErrorCode.NOT_LEADER.code(),
                "the meta-service leader changed while the delete waited for storage nodes; ask the new leader", "")));
    }

    /**
     * Node {@code nodeId} reports open segments whose leader answers none of its fetches: the move to propose for
     * each one whose other alive ISR members all report the same ({@link UnreachableLeaders}).
     */
    public List<dev.segstore.protocol.meta.MoveLeaderCommand> leadersUnreachable(int nodeId, List<dev.segstore.protocol.meta.UnreachableLeader> reports) {
        long now = monotonicMs.getAsLong();
        silentLeaderReports.addAndGet(reports.size());
        List<dev.segstore.protocol.meta.MoveLeaderCommand> moves = new ArrayList<>();
        for (dev.segstore.protocol.meta.UnreachableLeader r : reports) {
            unreachableLeaders.report(nodeId, r, state, now).ifPresent(m -> {
                LOG.warn("Segment {}/{}: every other ISR member reports leader {} (epoch {}) silent (node {}: {} ms): moving the leadership to node {}",
                        r.getShard(), r.getSequence(), r.getLeader(), r.getLeaderEpoch(), nodeId, r.getSilentMs(), m.getTo());
                moves.add(m);
            });
        }
        return moves;
    }

    // ---- two-phase deletes ---------------------------------------------------------------------------------

    /** Node {@code nodeId}'s heartbeat says it has applied assignments up to metadata version {@code version}. */
    public void applied(int nodeId, long version) {
        // A registered node reports 1 or more (its registration's answer is applied first); 0 comes from a node
        // of a version before two-phase deletes, which never reports: deletes do not wait for it (as before).
        Long before = appliedVersions.merge(nodeId, version == 0 ? Long.MAX_VALUE : version, Math::max);
        if (before != null && !state.deletingShards().isEmpty()) {
            finishDeletes();
        }
        for (DeposedLeaders.Release r : deposedLeaders.applied(nodeId, appliedVersions, this::incarnation)) {
            LOG.info("Segment {}/{}: old leader {} applied its move; leader {} need not wait for its read lease in epoch {}",
                    r.leaseWait().getShardId(), r.leaseWait().getSequence(), nodeId, r.to(), r.leaseWait().getLeaderEpoch());
            leaseReleases.accept(r.to(), r.leaseWait());
        }
    }

    // ---- leader read leases of leaderships moved from live nodes ------------------------------------------

    /** Told of each lease wait that ended early: MetaService answers the new leader's held watch with it. */
    public void onLeaseReleased(java.util.function.BiConsumer<Integer, dev.segstore.protocol.meta.LeaseWait> releases) {
        this.leaseReleases = releases;
    }

    /**
     * The move {@code m} proposed here was applied: its segment's leadership went from node {@code from} to
     * {@code m.to} in epoch {@code m.leader_epoch + 1}. Remembers when {@code from}'s read lease ends at the latest
     * ({@link DeposedLeaders}); with no heartbeat of it in this term, or no lease reported, nothing (the new leader
     * waits its whole lease). {@code fromIncarnation}: its incarnation when the move was proposed (only that process's
     * step-down counts); {@code deposedBefore}: the segment's {@code deposed_leader_may_serve} was set before.
     */
    public void leadershipMoved(dev.segstore.protocol.meta.MoveLeaderCommand m, int from, long fromIncarnation, boolean deposedBefore) {
        Long last = lastHeartbeat.get(from);
        long leaseMs = state.node(from).map(StorageNode::getReadLeaseMs).orElse(0L);
        if (last == null || leaseMs <= 0 || from == m.getTo() || from < 0) {
            return;
        }
        deposedLeaders.moved(m.getShardId(), m.getSequence(), m.getLeaderEpoch() + 1, from, fromIncarnation, m.getTo(), last, leaseMs,
                state.appliedCommands(), deposedBefore, appliedVersions, this::incarnation);
    }

    /**
     * Open segments this leader saw with {@code deposed_leader_may_serve}, by shard id, sequence and epoch: when it
     * first saw each (monotonic ms; at or after the command that set it, or that changed the epoch since).
     */
    private final Map<List<Long>, Long> deposedSeen = new ConcurrentHashMap<>();
    /** Those whose ClearDeposedLeaderCommand is proposed and not answered yet. */
    private final java.util.Set<List<Long>> clearing = ConcurrentHashMap.newKeySet();

    /**
     * Proposes one ClearDeposedLeaderCommand for the open segments whose deposed leaders can no longer serve: seen so in
     * its current epoch for at least the longest read.lease.ms of any node (each of them was deposed by a command
     * committed before, and its lease ended by that command + its lease), or whose move to this epoch is known here
     * with its old leader stepped down ({@link DeposedLeaders}). Not by time while some node's lease is unknown.
     */
    void clearDeposed() {
        if (!raft.isLeader()) {
            return;
        }
        long longest = 0;
        for (StorageNode n : state.nodes()) {
            longest = n.getReadLeaseMs() <= 0 ? Long.MAX_VALUE : Math.max(longest, n.getReadLeaseMs());
        }
        java.util.Set<List<Long>> current = new java.util.HashSet<>();
        List<List<Long>> proposed = new ArrayList<>();
        dev.segstore.protocol.meta.ClearDeposedLeaderCommand.Builder clear = dev.segstore.protocol.meta.ClearDeposedLeaderCommand.newBuilder();
        List<dev.segstore.protocol.meta.Segment> deposed = state.deposedOpenSegments();
        long now = monotonicMs.getAsLong(); // after the read: a segment first seen now was marked before it
        for (dev.segstore.protocol.meta.Segment s : deposed) {
            List<Long> key = List.of(s.getShardId(), s.getSequence(), (long) s.getLeaderEpoch());
            current.add(key);
            long seen = deposedSeen.computeIfAbsent(key, k -> now);
            boolean over = (longest != Long.MAX_VALUE && now - seen >= longest)
                    || deposedLeaders.steppedDown(s.getShardId(), s.getSequence(), s.getLeaderEpoch(), appliedVersions, this::incarnation);
            if (over && clearing.add(key)) {
                LOG.info("Segment {}/{} (epoch {}): no deposed leader can still serve reads from its lease; clearing the new leaders' wait",
                        s.getShard(), s.getSequence(), s.getLeaderEpoch());
                clear.addSegments(dev.segstore.protocol.meta.DeposedSegment.newBuilder().setShard(s.getShard()).setShardId(s.getShardId())
                        .setSequence(s.getSequence()).setLeaderEpoch(s.getLeaderEpoch()));
                proposed.add(key);
            }
        }
        deposedSeen.keySet().retainAll(current);
        if (!proposed.isEmpty()) { // one command for all: each command applied wakes every assignment watch
            raft.propose(command().setClearDeposedLeader(clear).build()).whenComplete((r, e) -> proposed.forEach(clearing::remove));
        }
    }

    /** What node {@code nodeId} may be told of the leases it waits for, with its assignments (NodeAssignments.lease_waits). */
    public List<dev.segstore.protocol.meta.LeaseWait> leaseWaits(int nodeId) {
        return deposedLeaders.waitsOf(nodeId, appliedVersions, this::incarnation, monotonicMs.getAsLong());
    }

    /** Node {@code nodeId}'s registered incarnation (-1: none). */
    public long incarnation(int nodeId) {
        return state.node(nodeId).map(StorageNode::getIncarnation).orElse(-1L);
    }

    /**
     * Completes once the DELETING shard {@code shard} has left the state (its delete finished), on this leader.
     * Fails NOT_LEADER if this node stops leading first.
     */
    public java.util.concurrent.CompletableFuture<Void> whenDeleted(dev.segstore.protocol.meta.Shard shard) {
        java.util.concurrent.CompletableFuture<Void> f = new java.util.concurrent.CompletableFuture<>();
        synchronized (this) {
            deleteWaiters.computeIfAbsent(shard.getShardId(), k -> new ArrayList<>()).add(f);
        }
        if (!raft.isLeader()) {
            // Leadership went between the proposal and here: the leader change's sweep may have run already.
            synchronized (this) {
                List<java.util.concurrent.CompletableFuture<Void>> w = deleteWaiters.get(shard.getShardId());
                if (w != null) {
                    w.remove(f);
                }
            }
            f.completeExceptionally(raft.notLeader());
            return f;
        }
        finishDeletes();
        return f;
    }

    /**
     * The second phase of deletes: a DELETING shard whose hosting nodes have each applied its delete (reported a
     * metadata version at or past it) or are no longer alive is finished (FinishDeleteShard); the deletes waiting
     * for a shard that is no longer DELETING are answered. Until then a hosting node may still hold a replica and
     * answer a client on a stale route: the delete's answer must not come before it has dropped it.
     */
    public void finishDeletes() {
        if (!raft.isLeader()) {
            return;
        }
        java.util.Set<Long> pending = new java.util.HashSet<>();
        List<dev.segstore.protocol.meta.Shard> ready = new ArrayList<>();
        for (dev.segstore.protocol.meta.Shard d : state.deletingShards()) {
            pending.add(d.getShardId());
            boolean done = true;
            for (int n : d.getHostedOnList()) {
                boolean alive = state.node(n).map(x -> x.getState() == NodeState.ALIVE).orElse(false);
                if (alive && appliedVersions.getOrDefault(n, -1L) < d.getDeletedVersion()) {
                    done = false;
                    break;
                }
            }
            if (done) {
                ready.add(d);
            }
        }
        answerFinished();
        for (dev.segstore.protocol.meta.Shard d : ready) {
            synchronized (this) {
                if (!finishing.add(d.getShardId())) {
                    continue;
                }
            }
            LOG.info("Shard '{}' (id {}): every node that hosted it has dropped it; finishing the delete", d.getName(), d.getShardId());
            raft.propose(command()
                    .setFinishDeleteShard(dev.segstore.protocol.meta.FinishDeleteShardCommand.newBuilder()
                            .setName(d.getName()).setShardId(d.getShardId())).build())
                    .whenComplete((r, e) -> {
                        synchronized (this) {
                            finishing.remove(d.getShardId());
                        }
                        if (e != null || !r.isOk()) {
                            LOG.warn("Finishing the delete of '{}' failed: {}", d.getName(), e != null ? e.toString() : r.message());
                            return;
                        }
                        answerFinished();
                    });
        }
    }

    /**
     * Answers the deletes waiting for shards no longer DELETING. The set is read under the waiters' lock, after
     * any waiter registered: a copy taken earlier would not hold a delete applied and awaited since, which would
     * then be answered before its nodes dropped the shard.
     */
    private void answerFinished() {
        List<java.util.concurrent.CompletableFuture<Void>> done = new ArrayList<>();
        synchronized (this) {
            java.util.Set<Long> stillDeleting = new java.util.HashSet<>();
            state.deletingShards().forEach(d -> stillDeleting.add(d.getShardId()));
            deleteWaiters.entrySet().removeIf(e -> {
                if (stillDeleting.contains(e.getKey())) {
                    return false;
                }
                done.addAll(e.getValue());
                return true;
            });
        }
        done.forEach(f -> f.complete(null));
    }

    /** The set of live nodes changed: count the load afresh at the next placement. */
    public synchronized void invalidateLoad() {
        cachedLoad = null;
    }

    /** When node {@code nodeId} last showed a sign of life here (monotonic ms), or null (tests). */
    Long lastHeartbeatMs(int nodeId) {
        return lastHeartbeat.get(nodeId);
    }

    public void heartbeat(int nodeId) {
        lastHeartbeat.put(nodeId, monotonicMs.getAsLong());
    }

    /**
     * Whether incarnation {@code incarnation} of node {@code nodeId} is being fenced for its lapsed session: its
     * heartbeat (counted by {@link #heartbeat} first) must then not be answered with assignments.
     */
    public boolean beingFenced(int nodeId, long incarnation) {
        Long fenced = fencing.get(nodeId);
        return fenced != null && fenced == incarnation;
    }

    /** Whether some incarnation of node {@code nodeId} is being fenced for its lapsed session (registrations wait). */
    public boolean fencing(int nodeId) {
        return fencing.containsKey(nodeId);
    }

    // ---- dead storage node processes, from their closed connections ----------------------------------------

    /** How long a probe of a storage node's port may take; a probe that times out proves nothing. */
    static final int PROBE_TIMEOUT_MS = 500;
    /** Connections that carry storage nodes' assignment watches, each watched for its close once. */
    private final Map<dev.segstore.protocol.rpc.RpcServer.Caller, Integer> watchConnections = new ConcurrentHashMap<>();
    /** Probes the port of a storage node whose connection closed (a blocking connect: off the timer thread). */
    private final java.util.concurrent.ExecutorService probes = Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "meta-probe");
        t.setDaemon(true);
        return t;
    });
    /** Connects to a storage node's registered address: returns normally if something listens (tests replace it). */
    private volatile Probe probe = Controller::connect;

    /** Connects to {@code host:port} within {@code timeoutMs}; throws as the connect did. */
    @FunctionalInterface
    public interface Probe {
        void connect(String host, int port, int timeoutMs) throws java.io.IOException;
    }

    /** The real probe: a TCP connect, closed at once. */
    public static final Probe CONNECT = Controller::connect;

    private static void connect(String host, int port, int timeoutMs) throws java.io.IOException {
        try (java.net.Socket s = new java.net.Socket()) {
            s.connect(new java.net.InetSocketAddress(host, port), timeoutMs);
        }
    }

    /** The storage nodes with a watch connection open to this node (tests, and what a dead process's close reaches). */
    public java.util.Set<Integer> watchingNodes() {
        return java.util.Set.copyOf(watchConnections.values());
    }

    /** Probes storage nodes' ports with {@code p} from now on (tests: a host that is down times out). */
    public void probeWith(Probe p) {
        probe = p;
    }

    /**
     * Storage node {@code nodeId} watches its assignments on {@code connection}: when that connection closes, the
     * node may be gone, and {@link #connectionClosed} finds out.
     */
    public void watchedOn(int nodeId, dev.segstore.protocol.rpc.RpcServer.Caller connection) {
        if (watchConnections.putIfAbsent(connection, nodeId) == null) {
            connection.onClose(() -> {
                watchConnections.remove(connection);
                try {
                    probes.execute(() -> connectionClosed(nodeId));
                } catch (java.util.concurrent.RejectedExecutionException e) {
                    // closed: this node no longer leads
                }
            });
        }
    }

    /**
     * Storage node {@code nodeId}'s watch connection closed. A closed connection alone proves nothing (the node
     * may have moved to another meta node, or a network failed it), so this asks the node's registered address
     * for a connection: refused, nothing listens there, and the process that registered is gone (a process
     * killed, crashed or stopped: its sockets are closed and its port is free), so the node is fenced now rather
     * than after {@code session.timeout.ms}, as a session timeout would fence it. A connection accepted (the node
     * is alive, or paused: the kernel still accepts) or a probe that times out (a network failure, a host down)
     * changes nothing: the session decides. Only a refusal fences, of the incarnation read before the probe, so a
     * process that registered again meanwhile is not fenced.
     */
    void connectionClosed(int nodeId) {
        if (!raft.isLeader()) {
            return;
        }
        java.util.Optional<StorageNode> node = state.node(nodeId);
        if (node.isEmpty() || node.get().getState() != NodeState.ALIVE) {
            return;
        }
        StorageNode n = node.get();
        try {
            probe.connect(n.getHost(), n.getPort(), PROBE_TIMEOUT_MS);
            LOG.info("Storage node {}: its meta connection closed, but {}:{} accepts connections: it stays", nodeId, n.getHost(), n.getPort());
            return;
        } catch (java.net.ConnectException e) {
            if (e.getMessage() != null && e.getMessage().contains("refused")) {
                LOG.warn("Storage node {}: its meta connection closed and {}:{} refuses connections (the process is gone): fencing it"
                        + " (segments it led: {})", nodeId, n.getHost(), n.getPort(), state.segmentsLedBy(nodeId).size());
                raft.propose(command().setFenceNode(FenceNodeCommand.newBuilder().setNodeId(nodeId).setIncarnation(n.getIncarnation()))
                        .build()).whenComplete((r, x) -> invalidateLoad());
                return;
            }
            probeFailed(n, e);
        } catch (java.io.IOException | RuntimeException e) {
            probeFailed(n, e);
        }
    }

    private static void probeFailed(StorageNode n, Exception e) {
        LOG.info("Storage node {}: its meta connection closed; probing {}:{} failed ({}): the session decides", n.getNodeId(),
                n.getHost(), n.getPort(), e.toString());
    }

    void fenceExpired() {
        if (!raft.isLeader()) {
            return;
        }
        long now = monotonicMs.getAsLong();
        for (StorageNode n : state.nodes()) {
            if (n.getState() != NodeState.ALIVE) {
                continue;
            }
            int id = n.getNodeId();
            long last = lastHeartbeat.computeIfAbsent(id, k -> now);
            if (now - last > sessionTimeoutMs) {
                fencing.put(id, n.getIncarnation());
                // Looked at again once heartbeats are refused: one counted before that is answered, and then it stays.
                if (monotonicMs.getAsLong() - lastHeartbeat.get(id) <= sessionTimeoutMs) {
                    fencing.remove(id, n.getIncarnation());
                    continue;
                }
                // Its last lease began no later than its last heartbeat came (or this term began: a node silent since
                // before then is counted from there, which only makes the lease look longer).
                boolean mayServe = n.getReadLeaseMs() <= 0 || now - last <= n.getReadLeaseMs();
                LOG.warn("Storage node {} sent no heartbeat for {} ms: fencing it (segments it led: {}{})", id, now - last,
                        state.segmentsLedBy(id).size(), mayServe ? "; their new leaders wait out its read lease, read.lease.ms = "
                                + n.getReadLeaseMs() + (n.getReadLeaseMs() <= 0 ? " (not reported)" : "") : "");
                raft.propose(command()
                        .setFenceNode(FenceNodeCommand.newBuilder().setNodeId(id).setIncarnation(n.getIncarnation()).setLeaderMayServe(mayServe))
                        .build()).whenComplete((r, e) -> {
                            fencing.remove(id, n.getIncarnation());
                            invalidateLoad();
                        });
            }
        }
    }

    /**
     * {@code count} distinct live nodes for a new segment, the least loaded first (by replicas of open
     * segments, then by leaderships, then by id); the first of them leads.
     */
    public synchronized List<Integer> place(int count) {
        long now = monotonicMs.getAsLong();
        if (cachedLoad == null || now - cachedLoadAtMs >= 1000) {
            // Counting the load reads every shard: do it at most once a second, and count our own placements
            // into the cached figures in between, so placement stays O(nodes) per shard under a burst of creations.
            cachedLoad = state.load();
            cachedLoadAtMs = now;
        }
        Map<Integer, int[]> load = cachedLoad;
        if (load.size() < count) {
            throw new RpcException(ErrorCode.NOT_ENOUGH_REPLICAS.code(), "need " + count + " live storage nodes, "
                    + load.size() + " are alive (and not shutting down)");
        }
        List<Integer> ids = new ArrayList<>(load.keySet());
        // Placements in flight are not in the state yet: rotate among equally loaded nodes so that a burst of
        // creations spreads instead of piling onto the same nodes.
        int turn = Math.floorMod(rotation.getAndIncrement(), ids.size());
        Map<Integer, Integer> order = new java.util.HashMap<>();
        for (int i = 0; i < ids.size(); i++) {
            order.put(ids.get(i), Math.floorMod(i - turn, ids.size()));
        }
        ids.sort(Comparator.<Integer>comparingInt(id -> load.get(id)[0]).thenComparingInt(id -> load.get(id)[1])
                .thenComparingInt(order::get));
        List<Integer> chosen = new ArrayList<>(ids.subList(0, count));
        chosen.sort(Comparator.<Integer>comparingInt(id -> load.get(id)[1]).thenComparingInt(order::get));
        for (int id : chosen) {
            load.get(id)[0]++;
        }
        load.get(chosen.get(0))[1]++;
        return chosen;
    }

    /**
     * Replicas for the next segment of a roll: {@code count} live nodes as {@link #place}, or, when fewer are
     * alive (and not shutting down) but at least {@code minIsr}, those (the first leads) filled up with fenced
     * and shutting-down nodes (and decommissioned ones), whose replicas join the ISR once their node is back
     * (registered again) and caught up. A shard keeps taking writes while it has {@code minIsr} live nodes, even across a roll or a restart.
     * {@code preferred} (the shard's placement set by an operator) is taken as it is when it names {@code count}
     * nodes that are all alive, not shutting down and not decommissioned.
     */
    public synchronized List<Integer> placeForRoll(int count, int minIsr, List<Integer> preferred) {
        if (preferred.size() == count && preferred.stream().allMatch(id -> state.node(id).map(Controller::active).orElse(false))) {
            return List.copyOf(preferred); // the operator's placement (alter-shard --placement), every node of it active
        }
        long live = state.nodes().stream().filter(Controller::active).count();
        if (live >= count) {
            return place(count);
        }
        if (live < minIsr) {
            throw new RpcException(ErrorCode.NOT_ENOUGH_REPLICAS.code(), "need at least " + minIsr
                    + " live storage nodes to open the next segment, " + live + " are alive");
        }
        List<Integer> chosen = new ArrayList<>(place((int) live));
        List<Integer> fenced = state.nodes().stream().filter(n -> n.getState() == NodeState.FENCED || n.getShuttingDown()
                        || (n.getState() == NodeState.ALIVE && n.getDecommissioned()))
                .map(StorageNode::getNodeId).sorted().toList();
        for (int id : fenced) {
            if (chosen.size() == count) {
                break;
            }
            chosen.add(id);
        }
        if (chosen.size() < count) {
            throw new RpcException(ErrorCode.NOT_ENOUGH_REPLICAS.code(), "need " + count + " registered storage nodes, "
                    + chosen.size() + " are known");
        }
        LOG.warn("Only {} of {} replicas of the next segment are on live nodes: {} (fenced and shutting-down nodes join when back)",
                live, count, chosen);
        return chosen;
    }

    /** Alive, not shutting down and not decommissioned: may be placed on a new segment and lead it. */
    /** Alive, not shutting down, not decommissioned: may be placed on, and may lead. */
    static boolean active(StorageNode n) {
        return n.getState() == NodeState.ALIVE && !n.getShuttingDown() && !n.getDecommissioned();
    }

    public void close() {
        onLeaderStop();
        timer.shutdownNow();
        probes.shutdownNow();
    }
}
