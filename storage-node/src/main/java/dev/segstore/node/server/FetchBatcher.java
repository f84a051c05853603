package dev.segstore.node.server;

import dev.segstore.protocol.node.FetchManyRequest;
import dev.segstore.protocol.node.FetchManyResponse;
import dev.segstore.protocol.node.FetchManyResult;
import dev.segstore.protocol.node.FetchRequest;
import dev.segstore.protocol.node.FetchResponse;
import dev.segstore.protocol.rpc.RpcClient;
import dev.segstore.protocol.rpc.RpcException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The follower side of {@code node.FetchMany} (node.proto): the follower fetches that this node's replica loops
 * ({@link ReplicaFetchers}) make to one leader node go out together, in rounds, as Kafka's replica fetcher sends one
 * fetch per broker pair: one call at a time per leader node, held there until one of its segments has something new,
 * carrying every segment whose loop waits for its next round. The answer is split again and each fetch completes with
 * its entry's answer (or its entry's error) as a {@code node.Fetch} of it would: nothing of a segment's own checks
 * moves here, each loop checks its answer against its replica's state as before.
 *
 * <p>Rounds: once a held call is answered, the next one waits until every segment answered in it has asked again
 * (its loop appended what came, durably in fsync mode), at most {@link #ROUND_GATHER_MS}; so the loops stay in one
 * call. A fetch asked while a call is held (a replica that starts following, a retry after an error, a round given
 * up for a new epoch) does not wait for that call: it goes at once in a call that is not held and asks the leader node
 * to answer the held one now ({@code wake_held}), and the next round carries them all.
 *
 * <p>Quiet answers are not handed back: an entry of a held round (never of a call that woke one) whose answer is the
 * one its replica's loop took last ({@link Replica#lastQuiet}: no batches, no tombstones, no next segment, the same
 * answer to the same request) would leave that replica as it is, and its loop would ask the same again; so the entry
 * stays here and goes in the next round as it is, its leader counted as having answered ({@link Replica#heard}), for
 * as long as its loop would ask it again ({@link Replica#wanted}: still following, the same leader epoch, leader
 * address and wait), else it is handed the quiet answer and its loop runs as before. A round then costs this node the segments that had news, not every segment it follows
 * from that leader node (docs/benchmarks.md, "Batched rounds that cost the follower the segments with news").
 *
 * <p>A leader node that does not know the method (an older version, during an upgrade) answers "unknown method":
 * the fetches of that call go one by one ({@code node.Fetch}), and so do the fetches to it for
 * {@link #UNSUPPORTED_RETRY_MS} ({@link #batches} is false: the caller sends them itself) before it is asked again.
 */
final class FetchBatcher {
    private static final Logger LOG = LoggerFactory.getLogger(FetchBatcher.class);
    /** How long a leader node that does not know node.FetchMany is fetched from segment by segment. */
    static final long UNSUPPORTED_RETRY_MS = 60_000;
    /** About the most batch bytes one answer brings (each segment's own limit still holds). */
    static final int MAX_BYTES = 8 << 20;
    /** The longest the next round waits for the segments of the last one to ask again. */
    static final long ROUND_GATHER_MS = 100;

    /** The calls to leader nodes (through the node's fault seam). */
    interface Calls {
        CompletableFuture<RpcClient.Answer<FetchManyResponse>> many(String address, FetchManyRequest request);

        CompletableFuture<RpcClient.Answer<FetchResponse>> one(String address, FetchRequest request);
    }

    /**
     * The replica whose loop asks a fetch: {@code called} runs as a call carrying it goes out (Hosted#leaderCalled),
     * {@code heard} as an answer to it arrives that is not handed back (a quiet one, Hosted#leaderAnswered);
     * {@code wanted} says whether its loop still wants an answer to it; {@code lastQuiet} (null: never held back) is
     * the replica's own memo of the last quiet answer its loop took.
     */
    record Replica(Runnable called, Runnable heard, java.util.function.BooleanSupplier wanted, LastQuiet lastQuiet) {
        /** A replica whose answers are all handed back, none held back as quiet (tests). */
        static Replica handedBackAll(Runnable called) {
            return new Replica(called, () -> { }, () -> true, null);
        }
    }

    /**
     * A replica's last answer with no batches and no tombstones that its loop took, and the request it answered.
     */
    static final class LastQuiet {
        /** What the loop took, request and answer together (two loops may write it: one abandoned, one live). */
        private record Taken(FetchRequest request, FetchResponse response) {
        }

        private volatile Taken last;

        void taken(FetchRequest request, FetchResponse response) {
            last = new Taken(request, response);
        }

        void clear() {
            last = null;
        }

        /** Whether {@code response} to {@code request} is what the loop took last (so would change nothing). */
        boolean same(FetchRequest request, FetchResponse response) {
            Taken t = last;
            return t != null && t.request().equals(request) && t.response().equals(response);
        }
    }

    /** A fetch waiting for its call. */
    private static final class Entry {
        final FetchRequest request;
        final Replica replica;
        final CompletableFuture<RpcClient.Answer<FetchResponse>> answer = new CompletableFuture<>();
        /** The quiet answer it was held back with, or null while none came (then it goes out as its loop asked it). */
        FetchResponse heldBackWith;

        Entry(FetchRequest request, Replica replica) {
            this.request = request;
            this.replica = replica;
        }

        Hosted.Key key() {
            return Hosted.Key.of(request.getSegment());
        }

        /**
         * Whether {@code r} (this entry's part of a held round's answer) would change nothing: it is held back. Never an
         * answer carrying a next segment (it is repeated so that a replica whose taking of it failed takes it again).
         */
        boolean quiet(FetchManyResult r) {
            LastQuiet last = replica.lastQuiet();
            if (last == null || r.hasError() || r.getBatchBytes() != 0 || r.getResponse().getTombstonesCount() != 0
                    || r.getResponse().hasNextSegment() || !last.same(request, r.getResponse())) {
                return false;
            }
            try {
                return replica.wanted().getAsBoolean();
            } catch (RuntimeException e) {
                return false; // handed to its loop, which decides as it always did
            }
        }

        /** Hands the answer to the loop, and keeps it in the replica's memo if it brought nothing. */
        void complete(RpcClient.Answer<FetchResponse> a) {
            LastQuiet last = replica.lastQuiet();
            if (last != null) {
                if (a.attachment().remaining() == 0 && a.message().getTombstonesCount() == 0) {
                    last.taken(request, a.message());
                } else {
                    last.clear();
                }
            }
            answer.complete(a);
        }

        void fail(Throwable e) {
            LastQuiet last = replica.lastQuiet();
            if (last != null) {
                last.clear();
            }
            answer.completeExceptionally(e);
        }
    }

    private final int nodeId;
    private final Calls calls;
    private final java.util.concurrent.ScheduledExecutorService sender;
    private final ConcurrentHashMap<String, Queue> queues = new ConcurrentHashMap<>();
    private final AtomicLong manyCalls = new AtomicLong();
    private final AtomicLong heldBack = new AtomicLong();
    private final long roundGatherMs;

    FetchBatcher(int nodeId, Calls calls, java.util.concurrent.ScheduledExecutorService sender) {
        this(nodeId, calls, sender, ROUND_GATHER_MS);
    }

    /** With the longest wait of a round for the segments of the last one other than {@link #ROUND_GATHER_MS} (tests). */
    FetchBatcher(int nodeId, Calls calls, java.util.concurrent.ScheduledExecutorService sender, long roundGatherMs) {
        this.nodeId = nodeId;
        this.calls = calls;
        this.sender = sender;
        this.roundGatherMs = roundGatherMs;
    }

    /**
     * The answer to {@code request} (a follower fetch from the leader at {@code address}), sent with the others of
     * its round, for {@code replica}'s loop.
     */
    CompletableFuture<RpcClient.Answer<FetchResponse>> fetch(String address, FetchRequest request, Replica replica) {
        Entry e = new Entry(request, replica);
        queues.computeIfAbsent(address, Queue::new).add(e);
        return e.answer;
    }

    /** node.FetchMany entries held back as quiet so far (tests, metrics). */
    long heldBack() {
        return heldBack.get();
    }

    /** Whether fetches to the leader node at {@code address} go in node.FetchMany rounds (not while it is an older one). */
    boolean batches(String address) {
        Queue q = queues.get(address);
        return q == null || !q.unsupported();
    }

    /** node.FetchMany calls sent so far (tests, metrics). */
    long manyCalls() {
        return manyCalls.get();
    }

    /** One leader node's rounds. */
    private final class Queue {
        private final String address;
        private List<Entry> queued = new ArrayList<>();
        /** Whether a held call is out. */
        private boolean held;
        /** Segments answered (or being answered) in this round that have not asked again yet. */
        private final java.util.Set<Hosted.Key> awaited = new java.util.HashSet<>();
        private long gatherUntilNanos;
        private boolean checkScheduled;
        private volatile long unsupportedUntilNanos;
        private volatile boolean unsupported;

        Queue(String address) {
            this.address = address;
        }

        boolean unsupported() {
            if (unsupported && System.nanoTime() - unsupportedUntilNanos > 0) {
                unsupported = false; // ask again: the node may have been upgraded
            }
            return unsupported;
        }

        void add(Entry e) {
            synchronized (this) {
                queued.add(e);
                awaited.remove(e.key());
            }
            decide();
        }

        /** Sends what is queued if it is time: a held round, or a call that wakes the held one. */
        private void decide() {
            List<Entry> batch;
            boolean wake;
            synchronized (this) {
                if (queued.isEmpty()) {
                    return;
                }
                if (held) {
                    wake = true;
                } else {
                    long left = gatherUntilNanos - System.nanoTime();
                    if (!awaited.isEmpty() && left > 0) {
                        if (!checkScheduled) {
                            checkScheduled = true;
                            schedule(left);
                        }
                        return;
                    }
                    wake = false;
                    held = true;
                    awaited.clear();
                }
                batch = queued;
                queued = new ArrayList<>();
                if (wake) {
                    batch.forEach(e -> awaited.add(e.key())); // they join the next round once answered
                }
            }
            send(batch, wake);
        }

        private void schedule(long nanos) {
            try {
                sender.schedule(() -> {
                    synchronized (this) {
                        checkScheduled = false;
                    }
                    decide();
                }, nanos, TimeUnit.NANOSECONDS);
            } catch (java.util.concurrent.RejectedExecutionException closing) {
                List<Entry> batch;
                synchronized (this) {
                    batch = queued;
                    queued = new ArrayList<>();
                }
                fail(batch, new RpcException(RpcException.UNAVAILABLE, "the storage node is shutting down"));
            }
        }

        private void send(List<Entry> batch, boolean wake) {
            // An entry held back whose loop no longer wants it (it stopped following, or its leader epoch changed) is
            // handed its quiet answer, as if it had not been held back; its loop then decides what comes next.
            List<Entry> out = new ArrayList<>(batch.size());
            for (Entry e : batch) {
                if (e.heldBackWith != null && !stillWanted(e)) {
                    e.complete(new RpcClient.Answer<>(e.heldBackWith, ByteBuffer.allocate(0)));
                } else {
                    out.add(e);
                }
            }
            if (out.isEmpty()) {
                if (!wake) {
                    synchronized (this) {
                        held = false; // the round that was to go carried nothing
                    }
                    decide();
                }
                return;
            }
            FetchManyRequest.Builder request = FetchManyRequest.newBuilder().setMaxBytes(MAX_BYTES).setReplicaId(nodeId).setWakeHeld(wake);
            int wait = Integer.MAX_VALUE;
            for (Entry e : out) {
                request.addFetches(e.request);
                wait = Math.min(wait, e.request.getMaxWaitMs());
            }
            manyCalls.incrementAndGet();
            out.forEach(e -> e.replica.called().run());
            CompletableFuture<RpcClient.Answer<FetchManyResponse>> call;
            try {
                call = calls.many(address, request.setMaxWaitMs(wake ? 0 : wait).build());
            } catch (RuntimeException e) {
                call = CompletableFuture.failedFuture(e);
            }
            call.whenComplete((a, e) -> answered(out, wake, a, e));
        }

        private void answered(List<Entry> batch, boolean wake, RpcClient.Answer<FetchManyResponse> a, Throwable e) {
            boolean whole = e == null && a.message().getResultsCount() == batch.size();
            // Only a held round's quiet entries are held back: an entry of a call that woke it goes back to its loop
            // (held back, it would go out again at once in another such call while the round is held).
            boolean[] quiet = new boolean[batch.size()];
            int heldNow = 0;
            for (int i = 0; i < batch.size(); i++) {
                Entry x = batch.get(i);
                quiet[i] = whole && !wake && x.quiet(a.message().getResults(i));
                if (quiet[i]) {
                    heldNow++;
                    x.heldBackWith = a.message().getResults(i).getResponse();
                    try {
                        x.replica.heard().run();
                    } catch (RuntimeException ignored) {
                        // marks the leader as having answered; it does not fail
                    }
                }
            }
            synchronized (this) {
                if (!wake) {
                    held = false;
                    gatherUntilNanos = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(roundGatherMs);
                }
                // Those answered successfully are awaited for the next round; a failed one comes back when its loop
                // retries, whenever that is; one held back goes in the next round as it is.
                for (int i = 0; i < batch.size(); i++) {
                    Entry x = batch.get(i);
                    boolean ok = e == null && i < a.message().getResultsCount() && !a.message().getResults(i).hasError();
                    if (quiet[i]) {
                        queued.add(x);
                        awaited.remove(x.key());
                    } else if (ok) {
                        awaited.add(x.key());
                    } else {
                        awaited.remove(x.key());
                    }
                }
            }
            heldBack.addAndGet(heldNow);
            if (e == null) {
                split(a, batch, quiet);
            } else if (unknownMethod(e)) {
                LOG.info("Leader node {} does not know node.FetchMany (an older version): fetching from it segment by segment"
                        + " for {} s", address, UNSUPPORTED_RETRY_MS / 1000);
                unsupportedUntilNanos = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(UNSUPPORTED_RETRY_MS);
                unsupported = true;
                for (Entry x : batch) {
                    calls.one(address, x.request).whenComplete((one, failed) -> {
                        if (failed != null) {
                            x.fail(failed);
                        } else {
                            x.complete(one);
                        }
                    });
                }
            } else {
                fail(batch, e);
            }
            decide();
        }
    }

    /**
     * Completes each entry with its part of the answer: its FetchResponse and its bytes of the attachment, or its error;
     * entries marked {@code heldBack} are left as they are (their part has no bytes).
     */
    private static void split(RpcClient.Answer<FetchManyResponse> a, List<Entry> batch, boolean[] heldBack) {
        List<FetchManyResult> results = a.message().getResultsList();
        ByteBuffer batches = a.attachment();
        if (results.size() != batch.size()) {
            fail(batch, new RpcException(RpcException.INTERNAL, "node.FetchMany answered " + results.size() + " entries for "
                    + batch.size()));
            return;
        }
        int at = batches.position();
        for (int i = 0; i < batch.size(); i++) {
            FetchManyResult r = results.get(i);
            Entry e = batch.get(i);
            if (heldBack[i]) {
                continue;
            }
            if (r.hasError()) {
                e.fail(RpcException.of(r.getError()));
                continue;
            }
            int bytes = r.getBatchBytes();
            if (bytes < 0 || at + bytes > batches.limit()) {
                e.fail(new RpcException(RpcException.INTERNAL, "node.FetchMany: entry " + i + " of "
                        + bytes + " bytes overruns the attachment (" + batches.remaining() + " bytes)"));
                continue;
            }
            e.complete(new RpcClient.Answer<>(r.getResponse(), batches.slice(at, bytes)));
            at += bytes;
        }
    }

    private static void fail(List<Entry> batch, Throwable e) {
        Throwable cause = e instanceof CompletionException && e.getCause() != null ? e.getCause() : e;
        batch.forEach(x -> x.fail(cause));
    }

    private static boolean stillWanted(Entry e) {
        try {
            return e.replica.wanted().getAsBoolean();
        } catch (RuntimeException failed) {
            return false;
        }
    }

    /** Whether a call failed because the answering node does not know the method (RpcServer: "unknown method"). */
    static boolean unknownMethod(Throwable t) {
        Throwable e = t instanceof CompletionException && t.getCause() != null ? t.getCause() : t;
        return e instanceof RpcException re && re.code() == RpcException.INVALID_ARGUMENT && re.getMessage() != null
                && re.getMessage().contains("unknown method");
    }
}

