package dev.segstore.node.server;

import dev.segstore.adapter.ErrorCode;
import dev.segstore.log.epoch.EpochEndOffset;
import dev.segstore.node.replica.LeaderEndPoint;
import dev.segstore.node.replica.Partition;
import dev.segstore.node.replica.ReplicaException;
import dev.segstore.node.replica.Tombstones;
import dev.segstore.node.server.Hosted.Key;
import dev.segstore.protocol.NodeMethods;
import com.google.protobuf.Message;
import dev.segstore.protocol.node.EpochEndOffsetRequest;
import dev.segstore.protocol.node.EpochEndOffsetResponse;
import dev.segstore.protocol.node.FetchManyRequest;
import dev.segstore.protocol.node.FetchManyResponse;
import dev.segstore.protocol.node.FetchRequest;
import dev.segstore.protocol.node.FetchResponse;
import dev.segstore.protocol.node.SegmentRef;
import dev.segstore.protocol.rpc.Frames;
import dev.segstore.protocol.rpc.RpcClient;
import dev.segstore.protocol.rpc.RpcException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.BiPredicate;

/**
 * The follower side of a storage node: one fetch loop per followed replica, run on two fetcher threads
 * ({@code node-fetcher}), and the calls it makes to leaders on other nodes, through the node's
 * {@link StorageNode.PeerFaults} seam. With {@code replica.fetch.batched} (the default) the loops' fetches to one
 * leader node go in the calls of one fetch session ({@link FetchSessions}, node.FetchMany); each loop still takes its
 * own answer. A loop's rounds do not hold a fetcher thread while a fetch is out (it
 * may be long-polled at the leader); each round truncates against the leader first when the partition asks
 * for it, and the next round is scheduled when one completes.
 *
 * <p>State: the connections to peers and each replica's {@link LoopGuard}; which replicas exist and their
 * assignments are the {@link AssignmentReconciler}'s, read here through {@code hosts} and {@link Hosted}.
 */
final class ReplicaFetchers implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(ReplicaFetchers.class);
    static final int FETCH_MAX_BYTES = 1 << 20;
    static final long FETCH_IDLE_MS = 10;
    /** The pause after a failed fetch round. */
    static final long FETCH_FAILED_MS = 100;
    /**
     * The pause after a fetch the leader's node refused because it hosts no replica of the segment yet (rpc.proto,
     * {@code Error.rolling}): a roll has just placed the segment on both nodes and the leader's node is still
     * opening it (tens of ms). After {@link #MAX_ROLLING_FETCH_RETRIES} such refusals in a row, the usual pause.
     */
    static final long ROLLING_FETCH_RETRY_MS = 5;
    static final int MAX_ROLLING_FETCH_RETRIES = 40;
    /**
     * How long a follower of an open segment lets the leader hold its fetch: new data or a delete wakes the fetch
     * at once, so the wait costs no latency; it bounds the idle traffic (one fetch per segment per wait: 200 ms
     * made 315 fetches a second on a node leading 34 idle segments).
     */
    private static final int OPEN_FETCH_WAIT_MS = 1_000;
    /**
     * How long a follower of a sealed segment lets the leader hold its fetch: only deletes are new there, and
     * a delete wakes the fetch at once, so a long wait costs no latency and keeps idle segments quiet.
     */
    static final int SEALED_FETCH_WAIT_MS = 2_000;

    private final int nodeId;
    private final long replicaMaxLagMs;
    private final Map<Integer, String> nodeAddresses;
    private final ShardOwners owners;
    private final StorageNode.PeerFaults faults;
    /** Whether the node still hosts this replica as this {@link Hosted} (it may have been deleted since). */
    private final BiPredicate<Key, Hosted> hosts;
    /** Asks for fresh assignments now: a leader this node follows said it leads no more. */
    private final Runnable leaderMoved;
    private final RpcClient peers;
    private final ScheduledExecutorService fetchers;
    private volatile boolean closed;
    /** Sends the fetches to each leader node in one fetch session (node.FetchMany); null: one call per fetch (replica.fetch.batched). */
    private final FetchSessions sessions;

    /** Told the next segment of a roll when a leader's fetch answer carries it (AssignmentReconciler#hint). */
    private final NextSegmentHint nextSegment;

    /** A leader's fetch answer named the next segment (node.proto, {@code FetchResponse.next_segment}). */
    interface NextSegmentHint {
        /** @param fetchEpoch the leader epoch the fetch that brought it was asked in */
        void accept(dev.segstore.protocol.meta.Segment segment, dev.segstore.protocol.meta.Shard shard, int fetchEpoch);
    }

    ReplicaFetchers(int nodeId, long replicaMaxLagMs, String outgoingHost, Map<Integer, String> nodeAddresses, ShardOwners owners,
                    StorageNode.PeerFaults faults, BiPredicate<Key, Hosted> hosts, Runnable leaderMoved,
                    dev.segstore.protocol.rpc.TlsConfig tls, boolean batched,
                    NextSegmentHint nextSegment) {
        this.nextSegment = nextSegment;
        this.nodeId = nodeId;
        this.peers = new RpcClient(2, Frames.DEFAULT_MAX_FRAME_BYTES, tls, outgoingHost);
        this.replicaMaxLagMs = replicaMaxLagMs;
        this.nodeAddresses = nodeAddresses;
        this.owners = owners;
        this.faults = faults;
        this.hosts = hosts;
        this.leaderMoved = leaderMoved;
        java.util.concurrent.ScheduledThreadPoolExecutor loops = new java.util.concurrent.ScheduledThreadPoolExecutor(2, r -> {
            Thread t = new Thread(r, "node-fetcher");
            t.setDaemon(true);
            return t;
        });
        loops.setExecuteExistingDelayedTasksAfterShutdownPolicy(false); // closed: rounds still waiting do not run
        this.fetchers = loops;
        FetchSessions.Calls calls = new FetchSessions.Calls() {
            @Override
            public CompletableFuture<RpcClient.Answer<FetchManyResponse>> many(String address, FetchManyRequest request) {
                return throughFaults(address, NodeMethods.FETCH_MANY,
                        () -> peers.callWithAttachment(address, NodeMethods.FETCH_MANY, request, FetchManyResponse.parser(), 5_000));
            }

            @Override
            public CompletableFuture<RpcClient.Answer<FetchResponse>> one(String address, FetchRequest request) {
                return fetchOne(address, request);
            }
        };
        this.sessions = !batched ? null : new FetchSessions(nodeId, calls, fetchers, FetchSessions.ROUND_GATHER_MS);
    }

    /** Starts the replica's fetch loop unless one runs. */
    void start(Key key, Hosted h) {
        if (h.fetching.claim()) {
            runFetchLoop(key, h);
        }
    }

    private void runFetchLoop(Key key, Hosted h) {
        try {
            fetchers.execute(() -> fetchLoop(key, h));
        } catch (java.util.concurrent.RejectedExecutionException closing) {
            h.fetching.release(() -> false);
        }
    }

    private boolean shouldFetch(Key key, Hosted h) {
        return !closed && hosts.test(key, h) && h.partition.role() == Partition.Role.FOLLOWER && h.assigned.getLeader() >= 0;
    }

    /** Ends the fetch loop, unless a role change made it wanted again meanwhile ({@link LoopGuard}). */
    private void stopFetching(Key key, Hosted h) {
        if (h.fetching.release(() -> shouldFetch(key, h))) {
            runFetchLoop(key, h);
        }
    }

    private void fetchLoop(Key key, Hosted h) {
        // Followers of sealed segments go on fetching too (long-polled): deletes still reach them.
        if (!shouldFetch(key, h)) {
            stopFetching(key, h);
            return;
        }
        CompletableFuture<Integer> round;
        CompletableFuture<Void> leaderChange = h.leaderChange; // completed by the next change of leader epoch
        RemoteLeader[] leaderOfRound = new RemoteLeader[1];
        try {
            int wait = fetchWaitMs(h.partition.sealedEnd() >= 0);
            RemoteLeader leader = remoteLeader(key, h, h.assigned.getLeader(), wait);
            leaderOfRound[0] = leader;
            if (h.partition.needsTruncation()) {
                try {
                    h.partition.truncateToLeader(leader);
                } finally {
                    // Also when it failed after a cut (a later question to the leader failed): the cut stands.
                    h.index.resetTo(h.partition.log().logEndOffset());
                }
            }
            round = h.partition.fetchOnceAsync(leader, FETCH_MAX_BYTES);
        } catch (RuntimeException e) {
            round = CompletableFuture.failedFuture(e);
        }
        // The fetch runs without a fetcher thread (it may be held at the leader); the next round is scheduled
        // when it completes: at once after news, after a short pause when it failed or came back empty. A new leader
        // epoch ends the wait at once (ABANDONED): a round held at a leader that is paused or cut off would otherwise
        // keep this follower from its new leader until the call's timeout. Its late answer, if any, is dropped by the
        // partition (asked under an epoch that no longer holds). (Answers are marked as they arrive: remoteLeader.)
        round.applyToEither(leaderChange.thenApply(v -> ABANDONED), x -> x).whenComplete((taken, e) -> {
            if (e == null && taken == ABANDONED) {
                LOG.debug("Fetch for {}: the leader changed while it waited; fetching from the new one", key.logName());
                scheduleRound(key, h, 0);
                return;
            }
            boolean rolling = e != null && isRolling(e) && h.rollingFetchRefusals < MAX_ROLLING_FETCH_RETRIES;
            h.rollingFetchRefusals = rolling ? h.rollingFetchRefusals + 1 : 0;
            long delay = nextRoundDelayMs(taken, e, rolling, leaderOfRound[0] != null && leaderOfRound[0].batched);
            if (e != null) {
                LOG.debug("Fetch for {} failed: {}", key.logName(), e.toString());
                if (ReplicaException.codeOf(e) == ErrorCode.NOT_LEADER && !rolling) {
                    // The leader stepped down (a controlled shutdown, a new epoch): learn who leads now, which may
                    // be this node, instead of at the next periodic heartbeat.
                    leaderMoved.run();
                }
            }
            try {
                fetchers.schedule(() -> fetchLoop(key, h), delay, TimeUnit.MILLISECONDS);
            } catch (java.util.concurrent.RejectedExecutionException closing) {
                h.fetching.release(() -> false);
            }
        });
    }

    /**
     * The leader's end point for one replica's loop. Each call marks the replica's leader as called when it goes out,
     * and as answered when an answer arrives, on the RPC thread, before it queues for the shard's owner thread
     * (leader.unreachable.ms: Hosted#leaderSilentNanos).
     */
    private RemoteLeader remoteLeader(Key key, Hosted h, int leaderId, int maxWaitMs) {
        String address = nodeAddresses.get(leaderId);
        if (address == null) {
            throw new ReplicaException(ErrorCode.UNAVAILABLE, "no address known for node " + leaderId);
        }
        SegmentRef ref = SegmentRef.newBuilder().setShardId(key.shardId()).setSequence(key.sequence()).build();
        return new RemoteLeader() {
            @Override
            public CompletableFuture<EpochEndOffset> endOffsetForEpoch(int leaderEpoch, int epoch) {
                h.leaderCalled(System.nanoTime());
                return callPeer(address, NodeMethods.EPOCH_END_OFFSET, EpochEndOffsetRequest.newBuilder().setSegment(ref)
                                .setLeaderEpoch(leaderEpoch).setEpoch(epoch).build(), EpochEndOffsetResponse.parser())
                        .whenComplete((r, e) -> answered(h, e))
                        .thenApply(r -> new EpochEndOffset(r.getEpoch(), r.getEndOffset()))
                        .exceptionally(e -> {
                            throw asReplicaException(e);
                        });
            }

            @Override
            public CompletableFuture<FetchResult> fetch(int followerId, int leaderEpoch, long fetchOffset, long tombstoneFrom, int maxBytes) {
                FetchRequest request = FetchRequest.newBuilder().setSegment(ref).setReplicaId(followerId)
                        .setLeaderEpoch(leaderEpoch).setOffset(fetchOffset).setTombstoneFrom(tombstoneFrom)
                        .setMaxWaitMs(maxWaitMs).setMaxBytes(maxBytes).build();
                // With batching on, the fetch goes out with this node's other fetches to the same leader node
                // (node.FetchMany) and comes back as its own entry of the answer, as node.Fetch would answer it; the
                // leader counts as called when that call goes out.
                CompletableFuture<RpcClient.Answer<FetchResponse>> call;
                if (sessions != null && sessions.batches(address)) {
                    batched = true;
                    call = sessions.fetch(address, request, () -> h.leaderCalled(System.nanoTime()));
                } else {
                    h.leaderCalled(System.nanoTime());
                    call = fetchOne(address, request);
                }
                return call.whenComplete((a, e) -> answered(h, e)).thenApplyAsync(a -> {
                    FetchResponse r = a.message();
                    if (r.hasNextSegment()) {
                        nextSegment.accept(r.getNextSegment(), r.getNextShard(), leaderEpoch); // taken on the node's roll thread
                    }
                    // The batches come as the answer's attachment (zero-copy on the leader's side).
                    return new FetchResult(a.attachment(), r.getHighWatermark(), r.getLogEndOffset(),
                            new Tombstones.Slice(r.getTombstoneBase(), r.getTombstonesList(), r.getTombstoneEnd(), r.getTombstoneWatermark()));
                }, owners.of(key.shardId())) // the follower's append (and its checksum checks) runs on the shard's owner
                        .exceptionally(e -> {
                            throw asReplicaException(e);
                        });
            }
        };
    }

    /** How long a caught-up follower fetch may be held at its leader. */
    private int fetchWaitMs(boolean sealed) {
        // Held fetches stay well within the lag limit, or the leader would take a quiet follower for a
        // lagging one; a sealed segment's, where only deletes are new, may wait longer.
        return (int) Math.min(sealed ? SEALED_FETCH_WAIT_MS : OPEN_FETCH_WAIT_MS, replicaMaxLagMs / 3);
    }

    /** One follower fetch as its own call (node.Fetch). */
    private CompletableFuture<RpcClient.Answer<FetchResponse>> fetchOne(String address, FetchRequest request) {
        return throughFaults(address, NodeMethods.FETCH,
                () -> peers.callWithAttachment(address, NodeMethods.FETCH, request, FetchResponse.parser(), 5_000));
    }

    /** A leader's end point for one round of a replica's loop. */
    private abstract static class RemoteLeader implements LeaderEndPoint {
        /** Whether the round's fetch went in a fetch session (its answers pace the loop, not a pause). */
        volatile boolean batched;
    }

    /** A successful answer from the leader, as it arrives; a failed call (an error, a timeout, a lost connection) is none. */
    private static void answered(Hosted h, Throwable e) {
        if (e == null) {
            h.leaderAnswered(System.nanoTime());
        }
    }

    private <R extends Message> CompletableFuture<R> callPeer(String address, String method, Message request,
                                                             com.google.protobuf.Parser<R> parser) {
        return throughFaults(address, method, () -> peers.call(address, method, request, parser, 5_000));
    }

    /** Makes a call to another storage node unless the fault rules drop it (then it fails UNAVAILABLE). */
    private <T> CompletableFuture<T> throughFaults(String address, String method, java.util.function.Supplier<CompletableFuture<T>> call) {
        if (faults.drop(nodeId, address, method)) {
            return CompletableFuture.failedFuture(new RpcException(ErrorCode.UNAVAILABLE.code(), "dropped by the fault rules"));
        }
        long delay = faults.delayMs(nodeId, address, method);
        if (delay > 0) {
            return CompletableFuture.supplyAsync(call, CompletableFuture.delayedExecutor(delay, TimeUnit.MILLISECONDS)).thenCompose(f -> f);
        }
        return call.get();
    }

    /**
     * A peer's or the controller's error as the replica layer reads it: a wire error keeps its code (the
     * replica acts on OFFSET_OUT_OF_RANGE, FENCED_EPOCH, INVALID_ARGUMENT); anything else stays as it is, which
     * the replica takes as an unknown outcome.
     */
    static RuntimeException asReplicaException(Throwable t) {
        Throwable e = t instanceof CompletionException && t.getCause() != null ? t.getCause() : t;
        if (e instanceof RpcException re) {
            ReplicaException r = new ReplicaException(ErrorCode.fromCode(re.code()), re.getMessage());
            return re.rolling() ? r.rolling() : r;
        }
        return e instanceof RuntimeException r ? r : new CompletionException(e);
    }

    /** What a fetch round that was given up for a new leader epoch counts as (no records taken). */
    private static final int ABANDONED = -1;

    private void scheduleRound(Key key, Hosted h, long delayMs) {
        try {
            fetchers.schedule(() -> fetchLoop(key, h), delayMs, TimeUnit.MILLISECONDS);
        } catch (java.util.concurrent.RejectedExecutionException closing) {
            h.fetching.release(() -> false);
        }
    }

    /**
     * The pause before a fetch loop's next round: none after news, {@link #FETCH_IDLE_MS} after an empty answer,
     * {@link #ROLLING_FETCH_RETRY_MS} after a refusal from a roll that is still to be retried soon ({@code rolling}),
     * {@link #FETCH_FAILED_MS} after any other failure.
     */
    static long nextRoundDelayMs(Integer taken, Throwable failure, boolean rolling) {
        return nextRoundDelayMs(taken, failure, rolling, false);
    }

    /**
     * As above; {@code batched}: the round's fetch went in a fetch session, where an answer with nothing new comes only
     * once its wait at the leader passed (it was parked there): that is all the pacing it needs, the loop asks again at
     * once ({@link FetchSessions}).
     */
    static long nextRoundDelayMs(Integer taken, Throwable failure, boolean rolling, boolean batched) {
        if (failure == null) {
            return taken != null && taken > 0 || batched ? 0 : FETCH_IDLE_MS;
        }
        return rolling ? ROLLING_FETCH_RETRY_MS : FETCH_FAILED_MS;
    }

    /** Whether a failure is (or wraps) a refusal that comes from a segment roll (rpc.proto, {@code Error.rolling}). */
    static boolean isRolling(Throwable failure) {
        for (Throwable e = failure; e != null; e = e.getCause()) {
            if (e instanceof ReplicaException re) {
                return re.isRolling();
            }
        }
        return false;
    }

    @Override
    public void close() {
        closed = true;
        // The calls first: a loop waiting for a leader's answer (truncating against it) ends with UNAVAILABLE. Then
        // the loops end without an interrupt (one may be writing the leader-epoch file: an interrupt closes the
        // FileChannel under it and takes the data directory offline), before the logs close under them.
        peers.close();
        fetchers.shutdown();
        try {
            if (!fetchers.awaitTermination(5, TimeUnit.SECONDS)) {
                LOG.warn("Replica fetchers of node {} did not stop within 5 s; closing anyway", nodeId);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
