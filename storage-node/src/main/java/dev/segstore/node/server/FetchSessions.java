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
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;

/**
 * The follower side of fetch sessions ({@code FetchManyRequest.session}, node.proto; {@code replica.fetch.sessions}):
 * this node's replica loops' fetches to one leader node go in {@code node.FetchMany} calls of one session, and the
 * leader parks each entry ({@link ParkedFetches}) until its segment has news or its wait passes, answering it in
 * whichever call of the session is out then. Each loop gets its own entry's answer (its batches, watermarks,
 * tombstones, or its error), which it takes exactly as a {@code node.Fetch} answer: nothing of a segment's own checks
 * moves here.
 *
 * <p>Calls: while entries are parked at the leader, one call is out to receive their answers, held there until one is
 * ready. Once an answer came, the next call waits until the loops answered in it have asked again (at most
 * {@link #ROUND_GATHER_MS}), so their fetches go in one call; a fetch asked while a call is out goes at
 * once in a new call, which makes the leader answer the held one. Under load a call carries the segments that had
 * news, not every segment this node follows from that leader node.
 *
 * <p>A call that fails (an error, a lost connection, a time-out, a leader that holds no such session: it restarted)
 * may have carried answers: every entry the session has out fails (its loop retries as after any failed fetch) and the
 * next call starts a new session; the leader drops the old one once no call came for it for 30 s. Every call starts its
 * session ({@code session_start}) until an answer shows the leader holds it, since two calls may arrive in either
 * order. A newer fetch of a segment replaces its older entry (whose loop gave that round up; the leader too keeps the
 * newer of two entries of a segment, by id). A leader node that does not know the method answers "unknown method", and
 * one that does not know sessions answers every entry of each call in order: both are taken, and the fetches to that
 * node go one by one ({@code node.Fetch}) for {@link #UNSUPPORTED_RETRY_MS}.
 */
final class FetchSessions {
    private static final Logger LOG = LoggerFactory.getLogger(FetchSessions.class);
    /** The longest a call of a session may be held at the leader (each entry's own wait is shorter). */
    static final int CALL_WAIT_MS = 2_000;
    /** How long a leader node that does not know node.FetchMany, or sessions, is fetched from segment by segment. */
    static final long UNSUPPORTED_RETRY_MS = 60_000;
    /** About the most batch bytes one answer brings (each segment's own limit still holds). */
    static final int MAX_BYTES = 8 << 20;
    /** The longest the next call waits for the loops answered in the last answer to ask again. */
    static final long ROUND_GATHER_MS = 100;

    /** The calls to leader nodes (through the node's fault seam). */
    interface Calls {
        CompletableFuture<RpcClient.Answer<FetchManyResponse>> many(String address, FetchManyRequest request);

        CompletableFuture<RpcClient.Answer<FetchResponse>> one(String address, FetchRequest request);
    }

    private final int nodeId;
    private final Calls calls;
    private final ScheduledExecutorService sender;
    private final long roundGatherMs;
    private final ConcurrentHashMap<String, Queue> queues = new ConcurrentHashMap<>();

    FetchSessions(int nodeId, Calls calls, ScheduledExecutorService sender, long roundGatherMs) {
        this.nodeId = nodeId;
        this.calls = calls;
        this.sender = sender;
        this.roundGatherMs = roundGatherMs;
    }

    /** The answer to {@code request} (a follower fetch from the leader at {@code address}); {@code called} runs as it goes out. */
    CompletableFuture<RpcClient.Answer<FetchResponse>> fetch(String address, FetchRequest request, Runnable called) {
        return queues.computeIfAbsent(address, Queue::new).add(request, called);
    }

    /** Whether fetches to the leader node at {@code address} go in sessions (not while it is an older one). */
    boolean batches(String address) {
        Queue q = queues.get(address);
        return q == null || !q.unsupported();
    }

    private static long newSessionId() {
        long id;
        do {
            id = ThreadLocalRandom.current().nextLong();
        } while (id == 0);
        return id;
    }

    /** A fetch of the session: sent, or waiting for its call. */
    private static final class Entry {
        final long id;
        final FetchRequest request;
        final Hosted.Key key;
        final Runnable called;
        final CompletableFuture<RpcClient.Answer<FetchResponse>> answer = new CompletableFuture<>();
        /** When its call went out (System.nanoTime); guarded by the queue. */
        long sentAtNanos;

        Entry(long id, FetchRequest request, Runnable called) {
            this.id = id;
            this.request = request;
            this.key = Hosted.Key.of(request.getSegment());
            this.called = called;
        }
    }

    /** One leader node's session. */
    private final class Queue {
        private final String address;
        /** Guarded by this, as everything below but the volatile fields. */
        private long session = newSessionId();
        /**
         * Whether the leader answered a call of {@link #session} as a session's: until then every call starts it
         * ({@code session_start}; the leader makes it once), since two calls may reach the leader in either order.
         */
        private boolean sessionStarted;
        private long nextEntryId = 1;
        private List<Entry> queued = new ArrayList<>();
        /** Entries sent in the current session and not answered, by id. */
        private final Map<Long, Entry> out = new HashMap<>();
        /** The entry sent last per segment (a newer one replaces it). */
        private final Map<Hosted.Key, Entry> outByKey = new HashMap<>();
        private int callsOut;
        /** Segments answered in the last answer that have not asked again yet. */
        private final Set<Hosted.Key> awaited = new HashSet<>();
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

        CompletableFuture<RpcClient.Answer<FetchResponse>> add(FetchRequest request, Runnable called) {
            Entry e;
            synchronized (this) {
                e = new Entry(nextEntryId++, request, called);
                queued.add(e);
                awaited.remove(e.key);
            }
            decide();
            return e.answer;
        }

        /** Sends a call if it is time: queued fetches, or entries out with no call to answer them. */
        private void decide() {
            List<Entry> batch;
            List<Entry> replaced = new ArrayList<>();
            long id;
            boolean start;
            synchronized (this) {
                if (callsOut > 0 ? queued.isEmpty() : queued.isEmpty() && out.isEmpty()) {
                    return;
                }
                // The loops answered last go together: until each asked again (or the gather ends), nothing goes,
                // whether or not a call is out (with one out, fetches sent one by one would keep the calls apart).
                long left = gatherUntilNanos - System.nanoTime();
                if (!awaited.isEmpty() && left > 0) {
                    if (!checkScheduled) {
                        checkScheduled = true;
                        schedule(left);
                    }
                    return;
                }
                awaited.clear();
                batch = queued;
                queued = new ArrayList<>();
                for (Entry e : batch) {
                    Entry before = outByKey.put(e.key, e);
                    if (before != null && out.remove(before.id) != null) {
                        replaced.add(before);
                    }
                    out.put(e.id, e);
                    e.sentAtNanos = System.nanoTime();
                }
                callsOut++;
                id = session;
                start = !sessionStarted;
            }
            // An entry replaced by a newer fetch of its segment belongs to a round its loop gave up.
            replaced.forEach(x -> x.answer.completeExceptionally(new RpcException(RpcException.UNAVAILABLE,
                    "a newer fetch of the segment replaced this one")));
            send(batch, id, start);
        }

        /** Forgets what the session had out (the caller fails it) and starts another: the next call starts it. Under this. */
        private void resetSession() {
            out.clear();
            outByKey.clear();
            awaited.clear();
            session = newSessionId();
            sessionStarted = false;
            callsOut = 0;
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
                List<Entry> failed;
                synchronized (this) {
                    failed = new ArrayList<>(queued);
                    queued = new ArrayList<>();
                }
                RpcException down = new RpcException(RpcException.UNAVAILABLE, "the storage node is shutting down");
                failed.forEach(x -> x.answer.completeExceptionally(down));
            }
        }

        private void send(List<Entry> batch, long sessionId, boolean start) {
            FetchManyRequest.Builder request = FetchManyRequest.newBuilder().setMaxBytes(MAX_BYTES).setReplicaId(nodeId)
                    .setSession(sessionId).setSessionStart(start);
            // The call's own wait: its entries' shortest (a leader that parks holds it no longer than the first parked
            // entry's wait anyway; one that does not know sessions holds the whole call, as a node.Fetch of each).
            int wait = CALL_WAIT_MS;
            for (Entry e : batch) {
                request.addFetches(e.request).addEntryIds(e.id);
                wait = Math.min(wait, e.request.getMaxWaitMs());
            }
            request.setMaxWaitMs(wait);
            batch.forEach(e -> e.called.run());
            CompletableFuture<RpcClient.Answer<FetchManyResponse>> call;
            try {
                call = calls.many(address, request.build());
            } catch (RuntimeException e) {
                call = CompletableFuture.failedFuture(e);
            }
            call.whenComplete((a, e) -> answered(batch, sessionId, a, e));
        }

        private void answered(List<Entry> batch, long sessionId, RpcClient.Answer<FetchManyResponse> a, Throwable e) {
            List<Entry> failed = new ArrayList<>();
            List<Taken> results = new ArrayList<>();
            boolean fallback = false;
            boolean olderLeader = false;
            long now = System.nanoTime();
            synchronized (this) {
                if (sessionId == session) {
                    callsOut--; // calls of a session given up are not counted: the reset set none out
                }
                if (sessionId != session) {
                    // An answer of a session given up: its entries were failed then; whatever it carries is dropped.
                } else if (e != null || (!a.message().getSession() && a.message().getResultsCount() != batch.size())) {
                    // The call may have carried answers of any entry out: every one fails, and a new session begins.
                    failed.addAll(out.values());
                    resetSession();
                    fallback = e != null && unknownMethod(e);
                } else if (!a.message().getSession()) {
                    // A leader node that parks nothing (an older version, which does not know sessions): every entry of
                    // the call, in order. Its fetches go one by one for a while (its held calls would answer each
                    // other: sessions do not use wake_held).
                    for (int i = 0; i < batch.size(); i++) {
                        Entry x = batch.get(i);
                        out.remove(x.id);
                        outByKey.remove(x.key, x);
                        results.add(new Taken(x, a.message().getResults(i)));
                    }
                    // Other calls out get their answers the same way (the session stays until they come).
                    olderLeader = true;
                } else {
                    sessionStarted = true;
                    for (FetchManyResult r : a.message().getResultsList()) {
                        Entry x = out.remove(r.getEntryId());
                        if (x != null) {
                            outByKey.remove(x.key, x);
                        }
                        results.add(new Taken(x, r)); // x null: replaced since, its bytes are skipped
                    }
                    // An entry the leader should have answered long ago (its wait and a call's wait passed): the
                    // leader lost the session (a restart behind a connection that came back). Everything out fails.
                    for (Entry x : out.values()) {
                        if (now - x.sentAtNanos > TimeUnit.MILLISECONDS.toNanos(x.request.getMaxWaitMs() + 2L * CALL_WAIT_MS)) {
                            LOG.debug("Leader node {} did not answer a parked fetch of {} in time: a new session", address, x.key);
                            failed.addAll(out.values());
                            resetSession();
                            break;
                        }
                    }
                }
                gatherUntilNanos = now + TimeUnit.MILLISECONDS.toNanos(roundGatherMs);
                for (Taken t : results) {
                    if (t.entry() != null && !t.result().hasError()) {
                        awaited.add(t.entry().key);
                    }
                }
            }
            if (olderLeader) {
                LOG.info("Leader node {} does not know fetch sessions (an older version): fetching from it segment by segment for {} s",
                        address, UNSUPPORTED_RETRY_MS / 1000);
                unsupportedUntilNanos = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(UNSUPPORTED_RETRY_MS);
                unsupported = true;
            }
            if (fallback) {
                LOG.info("Leader node {} does not know node.FetchMany (an older version): fetching from it segment by segment"
                        + " for {} s", address, UNSUPPORTED_RETRY_MS / 1000);
                unsupportedUntilNanos = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(UNSUPPORTED_RETRY_MS);
                unsupported = true;
                for (Entry x : failed) {
                    calls.one(address, x.request).whenComplete((one, err) -> {
                        if (err != null) {
                            x.answer.completeExceptionally(err);
                        } else {
                            x.answer.complete(one);
                        }
                    });
                }
            } else if (!failed.isEmpty()) {
                Throwable cause = e != null ? (e instanceof CompletionException && e.getCause() != null ? e.getCause() : e)
                        : new RpcException(RpcException.UNAVAILABLE, "node.FetchMany: the session at leader node " + address
                        + " was lost (" + a.message().getResultsCount() + " results for " + batch.size() + " entries sent)");
                failed.forEach(x -> x.answer.completeExceptionally(cause));
            }
            if (!results.isEmpty()) {
                split(a.attachment(), results);
            }
            decide();
        }
    }

    /** Whether a call failed because the answering node does not know the method (RpcServer: "unknown method"). */
    static boolean unknownMethod(Throwable t) {
        Throwable e = t instanceof CompletionException && t.getCause() != null ? t.getCause() : t;
        return e instanceof RpcException re && re.code() == RpcException.INVALID_ARGUMENT && re.getMessage() != null
                && re.getMessage().contains("unknown method");
    }

    /** A result of an answer and the entry it answers (null: one replaced since). */
    private record Taken(Entry entry, FetchManyResult result) {
    }

    /** Completes each entry with its part of the answer (results in the answer's order; a null entry's bytes are skipped). */
    private static void split(ByteBuffer batches, List<Taken> results) {
        int at = batches.position();
        RpcException overrun = null;
        for (Taken m : results) {
            Entry x = m.entry();
            FetchManyResult r = m.result();
            int bytes = r.hasError() ? 0 : r.getBatchBytes();
            if (overrun != null || bytes < 0 || at + bytes > batches.limit()) {
                if (overrun == null) {
                    overrun = new RpcException(RpcException.INTERNAL, "node.FetchMany: an entry of " + bytes
                            + " bytes overruns the attachment (" + batches.remaining() + " bytes)");
                }
                if (x != null) {
                    x.answer.completeExceptionally(overrun); // and every entry after it: where its bytes start is unknown
                }
                continue;
            }
            if (x != null) {
                if (r.hasError()) {
                    x.answer.completeExceptionally(RpcException.of(r.getError()));
                } else {
                    x.answer.complete(new RpcClient.Answer<>(r.getResponse(), batches.slice(at, bytes)));
                }
            }
            at += bytes;
        }
    }
}
