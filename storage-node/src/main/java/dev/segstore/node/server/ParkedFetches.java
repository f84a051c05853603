package dev.segstore.node.server;

import dev.segstore.adapter.ErrorCode;
import dev.segstore.protocol.node.FetchManyRequest;
import dev.segstore.protocol.node.FetchRequest;
import dev.segstore.protocol.rpc.Reply;
import dev.segstore.protocol.rpc.RpcException;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * The leader side of fetch sessions ({@code FetchManyRequest.session}, node.proto): the entries of a follower node's
 * {@code node.FetchMany} calls are parked here, one per segment, each exactly as a long-polled {@code node.Fetch} of it
 * is held: taken when it arrives (its epoch checked, its offset counted as the follower's progress), answered at once
 * if it has news (batches, tombstones, an error), else kept until its segment has news or its own wait has passed, and
 * then taken again ({@code heldAgain}: not a request that arrived now) and answered, in whichever call of the session
 * is out then. The call is held until some entry of the session is ready; a newer call of the session answers the
 * older one at once with what is ready.
 *
 * <p>So a call costs this node the entries sent or answered in it, not every segment the follower node fetches from
 * here: under load a round carries the segments that had news; idle, each entry comes back once per wait, as a held
 * {@code node.Fetch} does. What the leader counts for a follower is unchanged: each entry is one fetch request, taken
 * when it arrives and again when it is answered, as with {@code node.Fetch}. When one entry's wait passes, every
 * entry due within half its wait is answered with it, so an idle session's entries stay in one call.
 *
 * <p>A session is made by the call that starts it ({@code session_start}); a call of a session not held here (this node
 * restarted, or dropped it) is refused, so the follower fails what it had out and starts another at once. A session
 * without a call for {@link #IDLE_SESSION_NANOS} (its follower gave it up: a lost call, a restart) is dropped, its
 * parked entries unanswered (the follower failed them when it gave the session up). Sessions are kept per follower
 * node and id, so calls of an old session that arrive late (after a time-out) leave the new one alone.
 */
final class ParkedFetches {
    private final FetchManyHandler handler;
    private final long defaultWaitMs;
    private final long maxWaitMs;
    /** A session with no call for this long is dropped (a live one has a call out, or sends one within its waits). */
    static final long IDLE_SESSION_NANOS = TimeUnit.SECONDS.toNanos(30);
    /** The sessions, by follower node and id. */
    private final ConcurrentHashMap<SessionKey, Session> sessions = new ConcurrentHashMap<>();

    private record SessionKey(int follower, long id) {
    }

    ParkedFetches(FetchManyHandler handler, long defaultWaitMs, long maxWaitMs) {
        this.handler = handler;
        this.defaultWaitMs = defaultWaitMs;
        this.maxWaitMs = maxWaitMs;
    }

    /** An entry parked here: its request, its id, when its wait ends, and whether its segment has news. */
    private static final class Parked {
        final FetchRequest request;
        final long id;
        final long waitNanos;
        final long deadlineNanos;
        volatile boolean news;
        /** Its wait for news (set before it is parked). */
        volatile CompletableFuture<Void> newsFuture;

        Parked(FetchRequest request, long id, long waitNanos, long now) {
            this.request = request;
            this.id = id;
            this.waitNanos = waitNanos;
            this.deadlineNanos = now + waitNanos;
        }
    }

    /** One follower node's session. */
    private final class Session {
        final long id;
        /** When its last call came, or its held call was answered (System.nanoTime); guarded by this. */
        private long lastCallNanos = System.nanoTime();
        /** The parked entries by segment; guarded by this. */
        private final Map<Hosted.Key, Parked> parked = new HashMap<>();
        /** Completing it wakes the call of this session held now; guarded by this. */
        private CompletableFuture<Void> held;
        private boolean ended;

        Session(long id) {
            this.id = id;
        }

        /** Parks {@code p}; an entry of the same segment parked before is dropped (its loop asked anew). */
        void park(Parked p) {
            // Its wait for news is registered first, so that whoever takes it out (an answer, the session's end) also
            // ends that wait: a wait left registered would stay among the partition's waiters until its next append.
            CompletableFuture<Void> news = handler.newsOf(p.request);
            p.newsFuture = news;
            // The wake-up of the held call (and the answer it then takes) runs on the segment's owner thread, not on
            // the thread that completed the news: that is the log's I/O thread, inside the partition's monitor, right
            // after the leader's append, and in fsync mode it forces next (run there, writes one at a time took about
            // 1 ms longer than with node.Fetch: docs/benchmarks.md, "Fetch sessions").
            java.util.concurrent.Executor owner = handler.ownerOf(p.request);
            news.thenRun(() -> {
                p.news = true;
                boolean wake;
                synchronized (this) {
                    wake = parked.get(Hosted.Key.of(p.request.getSegment())) == p;
                }
                if (wake) {
                    try {
                        owner.execute(this::wake);
                    } catch (java.util.concurrent.RejectedExecutionException closing) {
                        wake();
                    }
                }
            });
            Parked before = null;
            boolean dropped;
            synchronized (this) {
                Hosted.Key key = Hosted.Key.of(p.request.getSegment());
                Parked now = parked.get(key);
                // Of two entries of one segment the newer stands (ids grow in the follower's order), whichever came
                // first: calls may arrive out of order, and the follower answers only the newer one's loop.
                dropped = ended || (now != null && Long.compareUnsigned(now.id, p.id) > 0);
                if (!dropped) {
                    before = parked.put(key, p);
                }
            }
            if (dropped) {
                news.complete(null);
                return;
            }
            if (before != null) {
                before.newsFuture.complete(null); // leaves the partition's waiters
            }
            if (p.news) {
                wake(); // news came before it was parked: the held call must not miss it
            }
        }

        /** The parked entries ready now, taken out: news, a passed wait, or (with one passed) due within half its wait. */
        List<Parked> takeReady(long now) {
            List<Parked> out = new ArrayList<>();
            synchronized (this) {
                boolean anyDue = false;
                for (Parked p : parked.values()) {
                    if (now - p.deadlineNanos >= 0) {
                        anyDue = true;
                        break;
                    }
                }
                Iterator<Parked> it = parked.values().iterator();
                while (it.hasNext()) {
                    Parked p = it.next();
                    if (p.news || now - p.deadlineNanos >= 0 || (anyDue && p.deadlineNanos - now <= p.waitNanos / 2)) {
                        out.add(p);
                        it.remove();
                    }
                }
            }
            for (Parked p : out) {
                p.newsFuture.complete(null);
            }
            return out;
        }

        synchronized boolean anyReady(long now) {
            for (Parked p : parked.values()) {
                if (p.news || now - p.deadlineNanos >= 0) {
                    return true;
                }
            }
            return ended;
        }

        /** When the first parked entry's wait ends (Long.MAX_VALUE from now: none parked). */
        synchronized long earliestDeadline(long now) {
            long first = now + Long.MAX_VALUE / 2;
            for (Parked p : parked.values()) {
                if (p.deadlineNanos - first < 0) {
                    first = p.deadlineNanos;
                }
            }
            return first;
        }

        /** Makes {@code wake} the held call's, answering the one held before. */
        void hold(CompletableFuture<Void> wake) {
            CompletableFuture<Void> before;
            synchronized (this) {
                before = held;
                held = wake;
                lastCallNanos = System.nanoTime();
            }
            if (before != null) {
                before.complete(null);
            }
        }

        /** Whether {@code wake} was still the held call's (else a newer call took over, or the session ended). */
        synchronized boolean unhold(CompletableFuture<Void> wake) {
            lastCallNanos = System.nanoTime();
            if (held == wake) {
                held = null;
                return !ended;
            }
            return false;
        }

        synchronized void called() {
            lastCallNanos = System.nanoTime();
        }

        /** Whether nothing has come from its follower for {@link #IDLE_SESSION_NANOS} and no call is held. */
        synchronized boolean idle(long now) {
            return held == null && now - lastCallNanos > IDLE_SESSION_NANOS;
        }

        void wake() {
            CompletableFuture<Void> h;
            synchronized (this) {
                h = held;
            }
            if (h != null) {
                h.complete(null);
            }
        }

        void end() {
            List<Parked> dropped;
            synchronized (this) {
                ended = true;
                dropped = new ArrayList<>(parked.values());
                parked.clear();
            }
            dropped.forEach(p -> p.newsFuture.complete(null));
            wake();
        }

        synchronized boolean ended() {
            return ended;
        }
    }

    /** Parked entries of every session (tests). */
    int parkedCount() {
        int n = 0;
        for (Session s : sessions.values()) {
            synchronized (s) {
                n += s.parked.size();
            }
        }
        return n;
    }

    CompletableFuture<Reply> handle(FetchManyRequest r) {
        if (r.getEntryIdsCount() != r.getFetchesCount()) {
            return CompletableFuture.failedFuture(new RpcException(ErrorCode.INVALID_ARGUMENT.code(), "node.FetchMany in a session: "
                    + r.getFetchesCount() + " entries, " + r.getEntryIdsCount() + " entry ids"));
        }
        dropIdle();
        SessionKey key = new SessionKey(r.getReplicaId(), r.getSession());
        Session s = r.getSessionStart() ? sessions.computeIfAbsent(key, k -> new Session(k.id())) : sessions.get(key);
        if (s == null) {
            return CompletableFuture.failedFuture(new RpcException(RpcException.UNAVAILABLE, "no fetch session " + Long.toUnsignedString(r.getSession())
                    + " of node " + r.getReplicaId() + " here (this node restarted, or dropped it): start another"));
        }
        s.called();
        long callWaitMs = r.getMaxWaitMs() > 0 ? Math.min(r.getMaxWaitMs(), maxWaitMs) : defaultWaitMs;
        long callDeadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(callWaitMs);
        long[] ids = new long[r.getEntryIdsCount()];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = r.getEntryIds(i);
        }
        return handler.take(r.getFetchesList(), ids, r.getMaxBytes(), false).thenCompose(parts -> {
            List<FetchManyHandler.Part> now = new ArrayList<>();
            long t = System.nanoTime();
            for (FetchManyHandler.Part p : parts) {
                if (p.news()) {
                    now.add(p);
                } else {
                    p.release();
                    long waitMs = p.request().getMaxWaitMs() > 0 ? Math.min(p.request().getMaxWaitMs(), maxWaitMs) : defaultWaitMs;
                    s.park(new Parked(p.request(), p.entryId(), TimeUnit.MILLISECONDS.toNanos(waitMs), t));
                }
            }
            // A call held before this one re-reads when its first entry's wait ends: these may end sooner.
            s.wake();
            return collect(s, now, r.getMaxBytes(), callDeadline);
        });
    }

    /** Drops the sessions no call came for in {@link #IDLE_SESSION_NANOS}. */
    private void dropIdle() {
        long now = System.nanoTime();
        sessions.entrySet().removeIf(e -> {
            if (e.getValue().idle(now)) {
                e.getValue().end();
                return true;
            }
            return false;
        });
    }

    /**
     * Answers with {@code now} and the parked entries ready, taken again; holds the call first while there are none
     * (until one is ready, the call's own wait passes, or a newer call of the session takes over).
     */
    private CompletableFuture<Reply> collect(Session s, List<FetchManyHandler.Part> now, int maxBytes, long callDeadline) {
        long t = System.nanoTime();
        List<Parked> ready = s.takeReady(t);
        if (now.isEmpty() && ready.isEmpty() && callDeadline - t > 0 && !s.ended()) {
            CompletableFuture<Void> wake = new CompletableFuture<>();
            s.hold(wake);
            if (s.anyReady(System.nanoTime())) {
                wake.complete(null); // news between the look above and the hold
            }
            long first = s.earliestDeadline(t);
            long until = first - callDeadline < 0 ? first : callDeadline;
            return wake.completeOnTimeout(null, Math.max(0, until - t), TimeUnit.NANOSECONDS).thenCompose(v -> {
                if (s.unhold(wake)) {
                    // Still this session's held call: woken by news, a passed wait or an entry parked since (which
                    // may be due sooner): answered if anything is ready, else held again until the next wait ends.
                    return collect(s, new ArrayList<>(), maxBytes, callDeadline);
                }
                return answer(s.takeReady(System.nanoTime()), List.of(), maxBytes); // a newer call took over
            });
        }
        return answer(ready, now, maxBytes);
    }

    private CompletableFuture<Reply> answer(List<Parked> ready, List<FetchManyHandler.Part> now, int maxBytes) {
        if (ready.isEmpty()) {
            return CompletableFuture.completedFuture(handler.answer(now, true));
        }
        List<FetchRequest> again = new ArrayList<>(ready.size());
        long[] ids = new long[ready.size()];
        for (int i = 0; i < ready.size(); i++) {
            again.add(ready.get(i).request);
            ids[i] = ready.get(i).id;
        }
        long taken = 0;
        for (FetchManyHandler.Part p : now) {
            taken += p.fetch() == null ? 0 : p.fetch().slice().length();
        }
        int budget = (int) Math.max(1, (maxBytes > 0 ? maxBytes : FetchManyHandler.DEFAULT_MAX_BYTES) - taken);
        return handler.take(again, ids, budget, true).thenApply(parts -> {
            List<FetchManyHandler.Part> all = new ArrayList<>(now.size() + parts.size());
            all.addAll(now);
            all.addAll(parts);
            return handler.answer(all, true);
        });
    }
}
