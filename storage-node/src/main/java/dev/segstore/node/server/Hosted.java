package dev.segstore.node.server;

import dev.segstore.node.replica.Partition;
import dev.segstore.protocol.meta.Segment;
import dev.segstore.protocol.node.SegmentRef;

/**
 * One replica a storage node hosts: its partition, its share of the node's key and tag index, the assignment
 * last applied to it (written by the {@link AssignmentReconciler} under its monitor, read by others), and
 * the guard of its fetch loop ({@link ReplicaFetchers}).
 */
final class Hosted {
    final Partition partition;
    final ReplicaIndex index;
    volatile Segment assigned;
    /**
     * Close ahead: the metadata version of the command that marked this segment closing (meta.proto,
     * {@code Segment.closing_version}), as an assignment or this leader's close request told it; 0 while not closing.
     */
    volatile long closingVersion;
    /** Whether a fetch loop runs for this replica: claimed by whoever starts one, released by the loop as it ends. */
    final LoopGuard fetching = new LoopGuard();
    /**
     * System.nanoTime() when the first call to its leader (a fetch or an epoch look-up) went out since the leader
     * last answered one, or 0 when every call sent since has been answered (or none was sent). The leader is silent
     * only while a call it was sent goes unanswered: a follower that sent nothing (its own node busy: its threads
     * waiting on disk forces while 1,000 replicas open) has no news of its leader, not a silent one.
     */
    volatile long unansweredSinceNanos;
    /** System.nanoTime() when it last took a leader (a new epoch): a new leader gets as long as an old one to answer. */
    volatile long leaderSinceNanos = System.nanoTime();
    /** Completed (and replaced) at each change of leader epoch: a fetch held at the old leader is given up then. */
    volatile java.util.concurrent.CompletableFuture<Void> leaderChange = new java.util.concurrent.CompletableFuture<>();

    /**
     * Set on the leader of a segment it rolled, once the controller's answer came: the next segment as that answer
     * gave it, for its followers (node.proto, {@code FetchResponse.next_segment}); null before.
     */
    volatile NextSegment next;
    /** Writes refused while the segment seals, waiting for {@link #next} (ReplicaRequests.refusedByRoll), in arrival order. */
    private final java.util.ArrayDeque<java.util.concurrent.CompletableFuture<NextSegment>> awaitingNext = new java.util.ArrayDeque<>();

    /**
     * The next segment once this leader's roll is answered: at once if it was, else completed when the answer comes
     * (waiters in the order they came), with null when the roll is not answered (it failed: a deposed leader, the
     * meta-service unreachable; asked again later) or after {@code maxWaitMs}.
     */
    java.util.concurrent.CompletableFuture<NextSegment> awaitNext(long maxWaitMs) {
        java.util.concurrent.CompletableFuture<NextSegment> f = new java.util.concurrent.CompletableFuture<>();
        synchronized (awaitingNext) {
            NextSegment n = next;
            if (n != null) {
                return java.util.concurrent.CompletableFuture.completedFuture(n);
            }
            awaitingNext.add(f);
        }
        f.completeOnTimeout(null, maxWaitMs, java.util.concurrent.TimeUnit.MILLISECONDS).whenComplete((n, e) -> {
            synchronized (awaitingNext) {
                awaitingNext.remove(f);
            }
        });
        return f;
    }

    /** The controller's answer to this leader's roll named the next segment: followers and refused writers are told. */
    void rolledTo(NextSegment n) {
        next = n;
        endAwaitingNext(n);
    }

    /** This leader's roll request failed: the writes waiting for its answer are answered without a next segment. */
    void rollUnanswered() {
        endAwaitingNext(null);
    }

    private void endAwaitingNext(NextSegment n) {
        java.util.List<java.util.concurrent.CompletableFuture<NextSegment>> waiters;
        synchronized (awaitingNext) {
            waiters = java.util.List.copyOf(awaitingNext);
            awaitingNext.clear();
        }
        waiters.forEach(w -> w.complete(n)); // in the order the writes came
    }

    /**
     * The next segment of a roll, its shard, and the followers it was sent to (a follower's fetch is answered at once
     * until it is sent it; every answer to it carries it).
     */
    record NextSegment(Segment segment, dev.segstore.protocol.meta.Shard shard, java.util.Set<Integer> sentTo) {
        NextSegment(Segment segment, dev.segstore.protocol.meta.Shard shard) {
            this(segment, shard, java.util.concurrent.ConcurrentHashMap.newKeySet());
        }

        /** Whether follower {@code replicaId} holds a replica of the next segment (only those are sent it). */
        boolean isFor(int replicaId) {
            return segment.getReplicasList().contains(replicaId);
        }

        /** Whether follower {@code replicaId} holds a replica of it and was not sent it yet. */
        boolean dueTo(int replicaId) {
            return isFor(replicaId) && !sentTo.contains(replicaId);
        }

        void markSent(int replicaId) {
            sentTo.add(replicaId);
        }
    }

    /** The replica has taken a new leader epoch: a fetch still held at the old leader ends. */
    void leaderChanged() {
        java.util.concurrent.CompletableFuture<Void> old = leaderChange;
        leaderChange = new java.util.concurrent.CompletableFuture<>();
        old.complete(null);
    }
    /**
     * The fetch loop's count of fetches in a row that the leader's node refused as hosting no replica yet
     * (rpc.proto, {@code Error.rolling}); read and written only by the one loop running at a time.
     */
    volatile int rollingFetchRefusals;

    /** A call to the leader goes out now (fetch loop). */
    void leaderCalled(long nowNanos) {
        if (unansweredSinceNanos == 0) {
            unansweredSinceNanos = nowNanos;
        }
    }

    /** The leader answered a call, as the answer arrives (before it waits for the shard's owner thread). */
    void leaderAnswered(long nowNanos) {
        unansweredSinceNanos = 0;
    }

    /**
     * How long the leader has left a call unanswered, counted from the later of the first unanswered call and
     * {@link #leaderSinceNanos} (a new leader gets as long as an old one to answer); 0 when no call is unanswered.
     */
    long leaderSilentNanos(long nowNanos) {
        long since = unansweredSinceNanos;
        return since == 0 ? 0 : Math.max(0, nowNanos - Math.max(since, leaderSinceNanos));
    }

    Hosted(Partition partition, ReplicaIndex index) {
        this.partition = partition;
        this.index = index;
    }

    /** A hosted replica's name: the shard's never-reused id and the segment's sequence. */
    record Key(long shardId, long sequence) {
        static Key of(SegmentRef r) {
            return new Key(r.getShardId(), r.getSequence());
        }

        /** The reader's route epoch a request names ({@code SegmentRef.route_epoch}), or -1 if it names none. */
        static int routeEpoch(SegmentRef r) {
            return r.hasRouteEpoch() ? r.getRouteEpoch() : -1;
        }

        static Key of(Segment s) {
            return new Key(s.getShardId(), s.getSequence());
        }

        String logName() {
            return shardId + "-" + sequence;
        }

        /** Whether {@code name} is a replica's log name ({@link #logName}). */
        static boolean isLogName(String name) {
            return name.matches("\\d+-\\d+");
        }

        /** The key of a log named by {@link #logName}. */
        static Key parse(String logName) {
            int dash = logName.indexOf('-');
            return new Key(Long.parseLong(logName.substring(0, dash)), Long.parseLong(logName.substring(dash + 1)));
        }
    }
}
