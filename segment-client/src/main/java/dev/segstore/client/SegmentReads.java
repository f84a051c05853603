package dev.segstore.client;

import dev.segstore.adapter.ErrorCode;
import dev.segstore.adapter.Header;
import dev.segstore.adapter.StorageException;
import dev.segstore.adapter.StoredRecord;
import dev.segstore.protocol.NodeMethods;
import dev.segstore.protocol.meta.Segment;
import dev.segstore.protocol.meta.SegmentStatus;
import dev.segstore.protocol.meta.ShardRoute;
import dev.segstore.protocol.node.FetchRequest;
import dev.segstore.protocol.node.FetchResponse;
import dev.segstore.protocol.node.IndexReadRequest;
import dev.segstore.protocol.node.TimestampRequest;
import dev.segstore.protocol.node.TimestampResponse;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.IntFunction;
import java.util.function.Predicate;

import static dev.segstore.client.RouteCache.openSegment;
import static dev.segstore.client.RouteCache.ref;
import static dev.segstore.client.RouteCache.segmentFor;
import static dev.segstore.client.SegmentStorageAdapter.storageError;

/**
 * The segment engine's reads (docs/architecture.md, "The segment engine"): by offset, tag, key and timestamp, and
 * the log-end look-up. Each walks the segments of the route it is given, one request at a time: a sealed segment
 * is read from its ISR members in turn until one answers in full ({@link #fromSealed}), the open one from its
 * leader. When a node says that the segment the route calls open is sealed, the walk goes on in a fresh route
 * ({@link RouteCache#past}). A walk runs within one attempt: the caller retries it with a fresh route
 * ({@link ShardRetries}). Thread-safe.
 */
final class SegmentReads {
    private static final int READ_MAX_BYTES = 4 << 20;

    private final RouteCache routes;
    private final NodeCalls calls;

    SegmentReads(RouteCache routes, NodeCalls calls) {
        this.routes = routes;
        this.calls = calls;
    }

    /** The shard's log end: the high watermark of its open segment. */
    CompletableFuture<Long> logEndOffset(String shard, ShardRoute route) {
        Segment open = openSegment(route);
        return calls.callNode(open.getLeader(), NodeMethods.FETCH, FetchRequest.newBuilder().setSegment(ref(open)).setReplicaId(-1)
                .setOffset(open.getStartOffset()).setMaxRecords(1).setMaxBytes(1).build(), FetchResponse.parser())
                .thenCompose(r -> r.getSealed() // the route is older than the roll that sealed it: the end is further on
                        ? routes.past(shard, open.getSequence()).thenCompose(fresh -> logEndOffset(shard, fresh))
                        : CompletableFuture.completedFuture(r.getHighWatermark()));
    }

    /** Reads segment after segment from {@code offset} until {@code limit} records or the end. */
    CompletableFuture<List<StoredRecord>> readFrom(ShardRoute route, long offset, int limit, List<StoredRecord> out) {
        Segment seg = segmentFor(route, offset);
        if (seg == null || out.size() >= limit) {
            return CompletableFuture.completedFuture(out);
        }
        boolean sealed = seg.getStatus() == SegmentStatus.SEALED;
        FetchRequest req = FetchRequest.newBuilder().setSegment(ref(seg)).setReplicaId(-1).setOffset(offset)
                .setMaxRecords(limit - out.size()).setMaxBytes(READ_MAX_BYTES).build();
        CompletableFuture<ConsumerFetch> fetched;
        if (sealed) {
            // A replica that has not caught up with the seal yet stops short, or refuses an offset above its
            // high watermark: another member that has it all answers (see fromSealed).
            fetched = fromSealed(seg, "offset " + offset, node -> calls.fetchFrom(node, req),
                    r -> r.nextOffset() > offset || r.highWatermark() >= seg.getEndOffset());
        } else {
            fetched = calls.fetchFrom(seg.getLeader(), req);
            // Past the high watermark of the open segment: the end of the shard, an empty read.
            fetched = fetched.exceptionally(e -> {
                if (storageError(e).code() == ErrorCode.OFFSET_OUT_OF_RANGE) {
                    return new ConsumerFetch(List.of(), offset, offset, -1);
                }
                throw storageError(e);
            });
        }
        return fetched.thenCompose(r -> {
            r.records().forEach(rec -> out.add(fromLog(rec)));
            long next = r.nextOffset();
            if (out.size() >= limit) {
                return CompletableFuture.completedFuture(out);
            }
            if (!sealed && r.sealedEnd() >= 0 && next >= r.sealedEnd()) {
                // The end of what the route calls the open segment, but the node says it was sealed there: the
                // route is older than the roll, and the records go on in a later segment. Not the end of the shard.
                return routes.past(route.getShard().getName(), seg.getSequence()).thenCompose(fresh -> readFrom(fresh, next, limit, out));
            }
            if (next == offset) {
                return CompletableFuture.completedFuture(out); // nothing further here: the end
            }
            return readFrom(route, next, limit, out); // past deleted records, or on into the next segment
        });
    }

    /** Segment after segment (those after sequence {@code after} that may hold {@code offset} or later). */
    CompletableFuture<List<StoredRecord>> tagRead(String shard, ShardRoute route, long after, String tag, long offset, int limit,
                                            List<StoredRecord> out) {
        Segment seg = route.getSegmentsList().stream().filter(s -> s.getSequence() > after)
                .filter(s -> s.getStatus() != SegmentStatus.SEALED || s.getEndOffset() > offset).findFirst().orElse(null);
        if (seg == null || out.size() >= limit) {
            return CompletableFuture.completedFuture(out);
        }
        int want = limit - out.size();
        IndexReadRequest req = IndexReadRequest.newBuilder().setSegment(ref(seg)).setTerm(tag).setFromOffset(offset).setLimit(want).build();
        return indexRead(seg, NodeMethods.READ_BY_TAG, req, want).thenCompose(r -> {
            r.getRecordsList().forEach(w -> out.add(fromWire(w)));
            if (r.getSealed() && seg.getStatus() != SegmentStatus.SEALED && out.size() < limit) {
                // The route calls it open, the node says sealed: later segments exist that the route does not list.
                return routes.past(shard, seg.getSequence()).thenCompose(fresh -> tagRead(shard, fresh, seg.getSequence(), tag, offset, limit, out));
            }
            return tagRead(shard, route, seg.getSequence(), tag, offset, limit, out);
        });
    }

    /**
     * An index read of one segment: a sealed one from a random ISR member, the open one from its leader. A member
     * whose high watermark is below the sealed end (it has not caught up with the seal yet) answers only for what
     * it holds: when that answer has fewer than {@code want} records, or the member fails, another member is asked
     * ({@link #fromSealed}), so a read never goes on into the next segment past records the member lacks.
     */
    private CompletableFuture<FetchResponse> indexRead(Segment seg, String method, IndexReadRequest req, int want) {
        if (seg.getStatus() != SegmentStatus.SEALED) {
            return calls.callNode(seg.getLeader(), method, req, FetchResponse.parser());
        }
        return fromSealed(seg, "'" + req.getTerm() + "' from offset " + req.getFromOffset(),
                node -> calls.callNode(node, method, req, FetchResponse.parser()),
                r -> r.getRecordsCount() >= want || r.getHighWatermark() >= seg.getEndOffset());
    }

    /**
     * Asks the members of a sealed segment in turn until one answers in full ({@code complete}): a random ISR
     * member first (reads spread over the ISR), then the route's leader, then the other ISR members. A member that
     * has not caught up with the seal yet (its high watermark below the sealed end: a follower still fetching, or a
     * replica that restarted or came back after losing the lead) answers only for what it holds, or refuses an
     * offset above its watermark; taken as the answer, that would end a read short or skip records into the next
     * segment. The route's leader may be such a replica (the route is older than a leader change), so it is not
     * taken on trust either. When no member answers in full the read fails UNAVAILABLE and is retried with a
     * fresh route. Any error other than "behind" or a retriable one is final.
     */
    private <R> CompletableFuture<R> fromSealed(Segment seg, String what, IntFunction<CompletableFuture<R>> ask, Predicate<R> complete) {
        List<Integer> order = new ArrayList<>();
        order.add(anyInSync(seg));
        if (seg.getLeader() >= 0 && !order.contains(seg.getLeader())) {
            order.add(seg.getLeader());
        }
        seg.getIsrList().stream().filter(n -> !order.contains(n)).forEach(order::add);
        return askInTurn(seg, what, order, 0, ask, complete, null);
    }

    private <R> CompletableFuture<R> askInTurn(Segment seg, String what, List<Integer> order, int i, IntFunction<CompletableFuture<R>> ask,
                                               Predicate<R> complete, StorageException last) {
        if (i == order.size()) {
            return CompletableFuture.failedFuture(new StorageException(ErrorCode.UNAVAILABLE, "shard '" + seg.getShard() + "': no member "
                    + order + " of sealed segment " + seg.getSequence() + " could answer for " + what + " up to its end "
                    + seg.getEndOffset() + " yet" + (last == null ? "" : " (last error: " + last.getMessage() + ")") + "; retry"));
        }
        return ask.apply(order.get(i)).handle((r, e) -> {
            if (e == null && complete.test(r)) {
                return CompletableFuture.completedFuture(r);
            }
            StorageException se = e == null ? last : storageError(e);
            if (e != null && !se.retriable() && se.code() != ErrorCode.OFFSET_OUT_OF_RANGE) {
                return CompletableFuture.<R>failedFuture(se);
            }
            return askInTurn(seg, what, order, i + 1, ask, complete, se);
        }).thenCompose(x -> x);
    }

    /**
     * Newest segment first: the first that has a live record with the key holds the newest one. A sealed segment
     * is asked as for other reads ({@link #fromSealed}): "no such key" counts only from a member holding all of it.
     * If the segment the route calls open says it is sealed, later segments exist that may hold newer records: the
     * read starts again from the newest segment of a fresh route.
     */
    CompletableFuture<Optional<StoredRecord>> keyRead(String shard, ShardRoute route, int i, String key) {
        if (i < 0) {
            return CompletableFuture.completedFuture(Optional.empty());
        }
        Segment seg = route.getSegments(i);
        IndexReadRequest req = IndexReadRequest.newBuilder().setSegment(ref(seg)).setTerm(key).setNewestOnly(true).setLimit(1).build();
        CompletableFuture<FetchResponse> f = seg.getStatus() != SegmentStatus.SEALED
                ? calls.callNode(seg.getLeader(), NodeMethods.READ_BY_KEY, req, FetchResponse.parser())
                : fromSealed(seg, "key '" + key + "'", node -> calls.callNode(node, NodeMethods.READ_BY_KEY, req, FetchResponse.parser()),
                        r -> r.getRecordsCount() > 0 || r.getHighWatermark() >= seg.getEndOffset());
        return f.thenCompose(r -> {
            if (r.getSealed() && seg.getStatus() != SegmentStatus.SEALED) {
                return routes.past(shard, seg.getSequence()).thenCompose(fresh -> keyRead(shard, fresh, fresh.getSegmentsCount() - 1, key));
            }
            return r.getRecordsCount() > 0
                    ? CompletableFuture.completedFuture(Optional.of(fromWire(r.getRecords(r.getRecordsCount() - 1))))
                    : keyRead(shard, route, i - 1, key);
        });
    }

    /**
     * Oldest segment first (after sequence {@code after}): the first that has a record at or after the time holds
     * the answer. A sealed segment is asked of a random ISR member, and of other members when that one found
     * nothing below a high watermark short of the sealed end (or failed): see {@link #fromSealed}. When the segment
     * the route calls open says it is sealed, the look-up goes on in the segments of a fresh route.
     */
    CompletableFuture<OptionalLong> timestampRead(String shard, ShardRoute route, long after, long timestamp) {
        Segment seg = route.getSegmentsList().stream().filter(s -> s.getSequence() > after).findFirst().orElse(null);
        if (seg == null) {
            return CompletableFuture.completedFuture(OptionalLong.empty());
        }
        TimestampRequest req = TimestampRequest.newBuilder().setSegment(ref(seg)).setTimestamp(timestamp).build();
        CompletableFuture<TimestampResponse> f = seg.getStatus() != SegmentStatus.SEALED
                ? calls.callNode(seg.getLeader(), NodeMethods.OFFSET_FOR_TIMESTAMP, req, TimestampResponse.parser())
                : fromSealed(seg, "timestamp " + timestamp, node -> calls.callNode(node, NodeMethods.OFFSET_FOR_TIMESTAMP, req, TimestampResponse.parser()),
                        r -> r.getFound() || r.getHighWatermark() >= seg.getEndOffset());
        return f.thenCompose(r -> {
            if (r.getFound()) {
                return CompletableFuture.completedFuture(OptionalLong.of(r.getOffset()));
            }
            if (r.getSealed() && seg.getStatus() != SegmentStatus.SEALED) {
                return routes.past(shard, seg.getSequence()).thenCompose(fresh -> timestampRead(shard, fresh, seg.getSequence(), timestamp));
            }
            return timestampRead(shard, route, seg.getSequence(), timestamp);
        });
    }

    private static int anyInSync(Segment s) {
        if (s.getIsrCount() == 0) {
            return s.getLeader();
        }
        return s.getIsr(ThreadLocalRandom.current().nextInt(s.getIsrCount()));
    }

    private static StoredRecord fromLog(dev.segstore.log.LogRecord r) {
        return new StoredRecord(r.offset(), r.key(), java.util.Set.copyOf(r.tags()), r.timestamp(),
                r.headers().stream().map(h -> new Header(h.name(), h.value())).toList(), r.payload());
    }

    private static StoredRecord fromWire(dev.segstore.protocol.node.Record w) {
        return new StoredRecord(w.getOffset(), w.getHasKey() ? w.getKey() : null, java.util.Set.copyOf(w.getTagsList()), w.getTimestamp(),
                w.getHeadersList().stream().map(h -> new Header(h.getName(), h.getValue())).toList(), w.getPayload().toByteArray());
    }
}
