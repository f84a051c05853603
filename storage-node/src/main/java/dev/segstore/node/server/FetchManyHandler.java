package dev.segstore.node.server;

import dev.segstore.adapter.ErrorCode;
import dev.segstore.node.replica.Partition;
import dev.segstore.protocol.node.FetchManyRequest;
import dev.segstore.protocol.node.FetchManyResponse;
import dev.segstore.protocol.node.FetchManyResult;
import dev.segstore.protocol.node.FetchRequest;
import dev.segstore.protocol.node.FetchResponse;
import dev.segstore.protocol.rpc.Attachment;
import dev.segstore.protocol.rpc.Reply;
import dev.segstore.protocol.rpc.RpcException;

import java.io.IOException;
import java.nio.channels.WritableByteChannel;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Function;

/**
 * The leader side of {@code node.FetchMany} (node.proto): the follower fetches of many segments in one call. Each
 * entry is taken on its shard's owner thread exactly as a {@code node.Fetch} of it is ({@link Leader#slice}: the
 * same epoch, replica and offset checks, the same progress accounting); an entry that fails gets its own error and
 * leaves the others alone. The call is answered at once when any entry has batches, tombstones or an error, else
 * held until one of the segments has something new, the wait ends, or the follower node sends a call that wakes it
 * ({@code wake_held}), then every entry is taken again.
 */
final class FetchManyHandler {
    /** The batch bytes of one answer when the request names none: 8 MiB, well below the frame limit (64 MiB). */
    static final int DEFAULT_MAX_BYTES = 8 << 20;
    /** The most entries of a round in one task on an owner thread (a round of many shards is a few tasks per owner). */
    static final int ENTRIES_PER_TASK = 64;

    /** The storage node's part: what one follower fetch of a hosted segment gives. */
    interface Leader {
        /**
         * The follower fetch {@code r} as {@code node.Fetch} takes it, with at most about {@code maxBytes} of batches
         * (0: none); fails as {@code node.Fetch} fails. {@code heldAgain}: the entry taken again after the call was held.
         */
        Partition.FollowerFetch slice(FetchRequest r, int maxBytes, boolean heldAgain);

        /** Completes when the segment of {@code r} has data or tombstones beyond it, or its leader's role changed. */
        CompletableFuture<Void> news(FetchRequest r);

        /** A slice taken for {@code r} as a {@code node.Fetch} answer (its batches as the attachment). */
        Reply reply(FetchRequest r, Partition.FollowerFetch f);
    }

    /** Per follower node: completing it answers the call that node holds here (FetchManyRequest.wake_held). */
    private final java.util.concurrent.ConcurrentHashMap<Integer, CompletableFuture<Void>> held = new java.util.concurrent.ConcurrentHashMap<>();
    private final Leader leader;
    private final ShardOwners owners;
    private final Function<Throwable, RpcException> wire;
    private final long defaultWaitMs;
    private final long maxWaitMs;
    /** The fetch sessions of follower nodes ({@code FetchManyRequest.session}). */
    private final ParkedFetches sessions;

    FetchManyHandler(Leader leader, ShardOwners owners, Function<Throwable, RpcException> wire, long defaultWaitMs, long maxWaitMs) {
        this.leader = leader;
        this.owners = owners;
        this.wire = wire;
        this.defaultWaitMs = defaultWaitMs;
        this.maxWaitMs = maxWaitMs;
        this.sessions = new ParkedFetches(this, defaultWaitMs, maxWaitMs);
    }

    /** One entry's outcome: a slice, or an error; {@code entryId}: its id in a fetch session (0 outside one). */
    record Part(FetchRequest request, long entryId, Partition.FollowerFetch fetch, RpcException error) {
        boolean news() {
            return error != null || !fetch.slice().isEmpty() || !fetch.tombstones().offsets().isEmpty();
        }

        void release() {
            if (fetch != null) {
                fetch.slice().close();
            }
        }
    }

    /** The owner thread of the segment {@code r} fetches. */
    java.util.concurrent.Executor ownerOf(FetchRequest r) {
        return owners.of(r.getSegment().getShardId());
    }

    /** Entries parked in fetch sessions (tests). */
    int parkedCount() {
        return sessions.parkedCount();
    }

    CompletableFuture<Reply> handle(FetchManyRequest r) {
        if (r.getSession() != 0) {
            return sessions.handle(r);
        }
        if (r.getWakeHeld()) {
            CompletableFuture<Void> w = held.get(r.getReplicaId());
            if (w != null) {
                w.complete(null); // the follower has fetches that are not in its held call: that one answers now
            }
        }
        long wait = r.getWakeHeld() ? 0 : r.getMaxWaitMs() > 0 ? Math.min(r.getMaxWaitMs(), maxWaitMs) : defaultWaitMs;
        return pass(r, false).thenCompose(parts -> {
            if (wait == 0 || parts.stream().anyMatch(Part::news) || r.getFetchesCount() == 0) {
                return CompletableFuture.completedFuture(answer(parts, false));
            }
            parts.forEach(Part::release);
            // Long poll: held until one segment has something new (or its leader's role changed), or the follower
            // wakes it, then every entry is taken again, so each answer reflects the leader's state when it is sent.
            CompletableFuture<Void> wake = new CompletableFuture<>();
            CompletableFuture<Void> before = held.put(r.getReplicaId(), wake);
            if (before != null) {
                before.complete(null); // an older held call of the same follower node (it gave that one up): answer it
            }
            List<CompletableFuture<?>> news = new ArrayList<>();
            news.add(wake);
            r.getFetchesList().forEach(f -> news.add(newsOf(f)));
            return CompletableFuture.anyOf(news.toArray(CompletableFuture[]::new)).handle((v, e) -> null)
                    .completeOnTimeout(null, wait, TimeUnit.MILLISECONDS)
                    .thenCompose(v -> {
                        held.remove(r.getReplicaId(), wake);
                        // Every entry's wait for news ends with the hold: one left open would stay among its partition's
                        // waiters until that segment's next append (on an idle or sealed segment, for good).
                        news.forEach(f -> f.complete(null));
                        return pass(r, true);
                    }).thenApply(parts2 -> answer(parts2, false));
        });
    }

    CompletableFuture<Void> newsOf(FetchRequest f) {
        try {
            return leader.news(f);
        } catch (RuntimeException e) {
            return CompletableFuture.completedFuture(null);
        }
    }

    /**
     * Takes every entry on its shard's owner thread, in an order that starts at a random entry, so that the bytes
     * budget of the answer does not always go to the same segments. The entries of one owner go to it together, up to
     * {@link #ENTRIES_PER_TASK} in one task: a round of hundreds of segments costs each owner a few tasks, not one
     * task (and one future) per segment.
     */
    private CompletableFuture<List<Part>> pass(FetchManyRequest r, boolean heldAgain) {
        return take(r.getFetchesList(), null, r.getMaxBytes(), heldAgain);
    }

    /**
     * Takes {@code fetches} (with their session ids {@code ids}, or null outside a session) as {@link #pass} takes a
     * call's entries, within {@code maxBytes} of batches in all (0 or less: {@link #DEFAULT_MAX_BYTES}).
     */
    CompletableFuture<List<Part>> take(List<FetchRequest> fetches, long[] ids, int maxBytes, boolean heldAgain) {
        int n = fetches.size();
        AtomicLong budget = new AtomicLong(maxBytes > 0 ? maxBytes : DEFAULT_MAX_BYTES);
        Part[] parts = new Part[n];
        int start = n == 0 ? 0 : ThreadLocalRandom.current().nextInt(n);
        java.util.Map<java.util.concurrent.Executor, List<Integer>> byOwner = new java.util.IdentityHashMap<>();
        for (int k = 0; k < n; k++) {
            int i = (start + k) % n;
            byOwner.computeIfAbsent(owners.of(fetches.get(i).getSegment().getShardId()), o -> new ArrayList<>()).add(i);
        }
        List<CompletableFuture<Void>> tasks = new ArrayList<>();
        byOwner.forEach((owner, entries) -> {
            for (int from = 0; from < entries.size(); from += ENTRIES_PER_TASK) {
                List<Integer> chunk = entries.subList(from, Math.min(entries.size(), from + ENTRIES_PER_TASK));
                try {
                    tasks.add(CompletableFuture.runAsync(() -> chunk.forEach(i -> parts[i] = part(fetches.get(i), id(ids, i), budget,
                            heldAgain)), owner));
                } catch (java.util.concurrent.RejectedExecutionException closing) {
                    RpcException down = new RpcException(RpcException.UNAVAILABLE, "the storage node is shutting down");
                    chunk.forEach(i -> parts[i] = new Part(fetches.get(i), id(ids, i), null, down));
                }
            }
        });
        // Each task writes its own entries, and completing it publishes them to whoever reads them after allOf.
        return CompletableFuture.allOf(tasks.toArray(CompletableFuture[]::new)).handle((v, e) -> {
            List<Part> out = new ArrayList<>(n);
            for (int i = 0; i < n; i++) {
                out.add(parts[i] != null ? parts[i] : new Part(fetches.get(i), id(ids, i), null, wire.apply(e != null ? e
                        : new IllegalStateException("entry " + i + " was not taken"))));
            }
            return out;
        });
    }

    private static long id(long[] ids, int i) {
        return ids == null ? 0 : ids[i];
    }

    private Part part(FetchRequest f, long entryId, AtomicLong budget, boolean heldAgain) {
        try {
            if (f.getReplicaId() < 0) {
                throw new RpcException(ErrorCode.INVALID_ARGUMENT.code(), "node.FetchMany takes follower fetches only (replica_id >= 0)");
            }
            int maxBytes = (int) Math.max(0, Math.min(Math.max(1, f.getMaxBytes()), budget.get()));
            Partition.FollowerFetch fetched = leader.slice(f, maxBytes, heldAgain);
            budget.addAndGet(-fetched.slice().length());
            return new Part(f, entryId, fetched, null);
        } catch (RuntimeException e) {
            return new Part(f, entryId, null, wire.apply(e));
        }
    }

    /** The answer carrying {@code parts} (in a session: with their entry ids). */
    Reply answer(List<Part> parts, boolean session) {
        FetchManyResponse.Builder response = FetchManyResponse.newBuilder().setSession(session);
        List<Attachment> batches = new ArrayList<>(parts.size());
        for (Part p : parts) {
            if (p.error() != null) {
                response.addResults(FetchManyResult.newBuilder().setError(p.error().toError()).setEntryId(p.entryId()));
                continue;
            }
            Reply one = leader.reply(p.request(), p.fetch());
            batches.add(one.attachment());
            response.addResults(FetchManyResult.newBuilder().setResponse((FetchResponse) one.message())
                    .setBatchBytes(one.attachment().length()).setEntryId(p.entryId()));
        }
        return new Reply(response.build(), new Concatenated(batches));
    }

    /** Attachments sent one after the other, as one. */
    static final class Concatenated implements Attachment {
        private final List<Attachment> parts;
        private final int length;

        Concatenated(List<Attachment> parts) {
            this.parts = List.copyOf(parts);
            long total = 0;
            for (Attachment a : parts) {
                total += a.length();
            }
            if (total > Integer.MAX_VALUE) {
                throw new IllegalArgumentException("attachments of " + total + " bytes");
            }
            this.length = (int) total;
        }

        @Override
        public int length() {
            return length;
        }

        @Override
        public long transferTo(long from, long count, WritableByteChannel target) throws IOException {
            long sent = 0;
            long partStart = 0;
            for (Attachment a : parts) {
                long partEnd = partStart + a.length();
                long at = from + sent;
                if (sent < count && at < partEnd) {
                    long want = Math.min(partEnd - at, count - sent);
                    long n = a.transferTo(at - partStart, want, target);
                    sent += Math.max(0, n);
                    if (n < want) {
                        return sent; // the channel takes no more now
                    }
                }
                partStart = partEnd;
            }
            return sent;
        }

        @Override
        public void release() {
            parts.forEach(Attachment::release);
        }
    }
}

