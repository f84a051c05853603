package dev.segstore.node.server;

import dev.segstore.adapter.ErrorCode;
import dev.segstore.log.FileSlice;
import dev.segstore.node.replica.Partition;
import dev.segstore.node.replica.ReplicaException;
import dev.segstore.node.replica.Tombstones;
import dev.segstore.protocol.node.FetchManyRequest;
import dev.segstore.protocol.node.FetchManyResponse;
import dev.segstore.protocol.node.FetchManyResult;
import dev.segstore.protocol.node.FetchRequest;
import dev.segstore.protocol.node.SegmentRef;
import dev.segstore.protocol.rpc.Reply;
import dev.segstore.protocol.rpc.RpcException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The leader side of fetch sessions (node.FetchMany with a session) on a stand-in for the node's segments: an entry
 * with nothing new is parked and answered, taken again, in whichever call of the session is out once its segment has
 * news or its wait has passed; each entry is taken as a long-polled node.Fetch is, once when it arrives and once when it
 * is answered.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class ParkedFetchesTest {
    private final ShardOwners owners = new ShardOwners(2, "test-owner");
    /** Per shard id: the epoch the stand-in leader is in; a fetch in another epoch fails FENCED_EPOCH. */
    private final Map<Long, Integer> epochs = new ConcurrentHashMap<>();
    /** Per shard id: the tombstones the next take of it brings (news). */
    private final Map<Long, List<Long>> tombstones = new ConcurrentHashMap<>();
    /** Per shard id: the news futures handed out, each fresh, as Partition#awaitDataAfter hands them out. */
    private final Map<Long, List<CompletableFuture<Void>>> news = new ConcurrentHashMap<>();
    /** Per shard id: each take of an entry, "offset" when it arrived, "offset again" when taken after it was held. */
    private final Map<Long, List<String>> taken = new ConcurrentHashMap<>();

    private final FetchManyHandler handler = new FetchManyHandler(new FetchManyHandler.Leader() {
        @Override
        public Partition.FollowerFetch slice(FetchRequest r, int maxBytes, boolean heldAgain) {
            long shard = r.getSegment().getShardId();
            int epoch = epochs.get(shard);
            if (r.getLeaderEpoch() != epoch) {
                throw new ReplicaException(ErrorCode.FENCED_EPOCH, shard + ": fetch in epoch " + r.getLeaderEpoch() + ", leader is in " + epoch, 1, epoch);
            }
            taken.computeIfAbsent(shard, k -> new CopyOnWriteArrayList<>()).add(r.getOffset() + (heldAgain ? " again" : ""));
            List<Long> t = tombstones.getOrDefault(shard, List.of());
            return new Partition.FollowerFetch(FileSlice.empty(r.getOffset()), 10 * shard, 10 * shard, new Tombstones.Slice(0, t, t.size(), 0));
        }

        @Override
        public CompletableFuture<Void> news(FetchRequest r) {
            CompletableFuture<Void> f = new CompletableFuture<>();
            news.computeIfAbsent(r.getSegment().getShardId(), k -> new CopyOnWriteArrayList<>()).add(f);
            return f;
        }

        @Override
        public Reply reply(FetchRequest r, Partition.FollowerFetch f) {
            return FetchManyHandlerTest.stubReply(f);
        }
    }, owners, FetchManyHandlerTest::wire, 200, 8_000);

    @AfterEach
    void stop() {
        owners.close();
    }

    private static FetchRequest fetch(long shard, int epoch, long offset, int waitMs) {
        return FetchRequest.newBuilder().setSegment(SegmentRef.newBuilder().setShardId(shard).setSequence(0)).setReplicaId(2)
                .setLeaderEpoch(epoch).setOffset(offset).setMaxBytes(1 << 20).setMaxWaitMs(waitMs).build();
    }

    /** The sessions started so far (the first call of each starts it). */
    private final java.util.Set<Long> started = ConcurrentHashMap.newKeySet();

    /** A call of session {@code session}: entries {@code fetches} with ids {@code ids}; the session's first call starts it. */
    private FetchManyRequest call(long session, List<FetchRequest> fetches, long... ids) {
        FetchManyRequest.Builder b = FetchManyRequest.newBuilder().setReplicaId(2).setMaxWaitMs(10_000).setSession(session)
                .setSessionStart(started.add(session)).addAllFetches(fetches);
        for (long id : ids) {
            b.addEntryIds(id);
        }
        return b.build();
    }

    private CompletableFuture<Void> latestNews(long shard) {
        List<CompletableFuture<Void>> l = news.get(shard);
        return l.get(l.size() - 1);
    }

    private void awaitParked(int n) {
        InJvmCluster.waitFor(n + " entries parked", 10_000, () -> handler.parkedCount() == n);
    }

    private static List<Long> ids(FetchManyResponse r) {
        return r.getResultsList().stream().map(FetchManyResult::getEntryId).sorted().toList();
    }

    private static FetchManyResponse message(CompletableFuture<Reply> f) throws Exception {
        return (FetchManyResponse) f.get(10, TimeUnit.SECONDS).message();
    }

    @Test
    void aQuietEntryIsParkedAndAnsweredInALaterCallOfTheSessionOnceItsSegmentHasNews() throws Exception {
        epochs.put(1L, 3);
        epochs.put(2L, 3);
        CompletableFuture<Reply> first = handler.handle(call(7, List.of(fetch(1, 3, 5, 10_000), fetch(2, 3, 6, 10_000)), 11, 12));
        awaitParked(2);
        assertFalse(first.isDone(), "nothing new: the call is held");
        tombstones.put(2L, List.of(42L));
        latestNews(2).complete(null);
        FetchManyResponse r = message(first);
        assertTrue(r.getSession(), "a session's answer");
        assertEquals(List.of(12L), ids(r), "only the entry with news is answered");
        assertEquals(List.of(42L), r.getResults(0).getResponse().getTombstonesList());
        assertEquals(List.of("6", "6 again"), taken.get(2L), "taken when it came and again when answered, as a held node.Fetch");
        assertEquals(1, handler.parkedCount(), "segment 1 stays parked");

        // The next call carries segment 2's next fetch only; segment 1's news is answered in it.
        tombstones.remove(2L);
        CompletableFuture<Reply> second = handler.handle(call(7, List.of(fetch(2, 3, 6, 10_000)), 13));
        awaitParked(2);
        assertFalse(second.isDone());
        latestNews(1).complete(null);
        FetchManyResponse r2 = message(second);
        assertEquals(List.of(11L), ids(r2), "an entry sent in the first call, answered in the second");
        assertEquals(10, r2.getResults(0).getResponse().getHighWatermark());
        assertEquals(List.of("5", "5 again"), taken.get(1L));
    }

    @Test
    void aParkedEntryIsAnsweredWhenItsWaitPassesAndTheOthersDueWithinHalfTheirWaitGoWithIt() throws Exception {
        epochs.put(1L, 3);
        epochs.put(2L, 3);
        epochs.put(3L, 3);
        long start = System.nanoTime();
        CompletableFuture<Reply> first = handler.handle(call(7, List.of(fetch(1, 3, 0, 300), fetch(2, 3, 0, 300)), 1, 2));
        awaitParked(2);
        // Segment 3's entry comes later, with a wait that ends 4 s after the others'.
        CompletableFuture<Reply> second = handler.handle(call(7, List.of(fetch(3, 3, 0, 4_300)), 3));
        FetchManyResponse older = message(first);
        assertEquals(List.of(), older.getResultsList(), "a newer call of the session answers the held one at once");
        FetchManyResponse r = message(second);
        assertTrue(System.nanoTime() - start >= TimeUnit.MILLISECONDS.toNanos(300), "not before the wait passed");
        assertEquals(List.of(1L, 2L), ids(r), "the two whose waits passed; segment 3's is not due for 4 s");
        assertEquals(List.of("0", "0 again"), taken.get(1L));
        assertEquals(1, handler.parkedCount());
        for (CompletableFuture<Void> f : news.get(1L)) {
            assertTrue(f.isDone(), "an answered entry's wait for news is completed: it leaves the partition's waiters");
        }
    }

    @Test
    void anEntryWithNewsOrAnErrorIsAnsweredAtOnceWithItsId() throws Exception {
        epochs.put(1L, 3);
        epochs.put(2L, 5);
        tombstones.put(1L, List.of(1L));
        FetchManyResponse r = message(handler.handle(call(7, List.of(fetch(1, 3, 0, 10_000), fetch(2, 3, 0, 10_000)), 21, 22)));
        assertEquals(List.of(21L, 22L), ids(r));
        FetchManyResult failed = r.getResultsList().stream().filter(x -> x.getEntryId() == 22).findFirst().orElseThrow();
        assertEquals(ErrorCode.FENCED_EPOCH.code(), failed.getError().getCode());
        assertEquals(0, handler.parkedCount());
    }

    @Test
    void aCallOfASessionNotHeldHereIsRefusedAndSessionsOfOneFollowerNodeLeaveEachOtherAlone() throws Exception {
        epochs.put(1L, 3);
        epochs.put(2L, 3);
        ExecutionException unknown = assertThrows(ExecutionException.class, () -> handler.handle(FetchManyRequest.newBuilder().setReplicaId(2)
                .setSession(99).addFetches(fetch(1, 3, 0, 10_000)).addEntryIds(1).build()).get(10, TimeUnit.SECONDS),
                "a session this node never started (it restarted since): the follower must start another");
        assertEquals(RpcException.UNAVAILABLE, ((RpcException) unknown.getCause()).code());
        assertEquals(null, taken.get(1L), "nothing of a refused call is taken");
        // A new session of the same follower node (after a lost call) and a late call of the old one: each its own.
        CompletableFuture<Reply> fresh = handler.handle(call(8, List.of(fetch(1, 3, 0, 10_000)), 1));
        awaitParked(1);
        CompletableFuture<Reply> late = handler.handle(call(7, List.of(fetch(2, 3, 0, 10_000)), 1));
        awaitParked(2);
        latestNews(1).complete(null);
        assertEquals(List.of(1L), ids(message(fresh)));
        assertFalse(late.isDone(), "the other session's call is not answered by this one's news");
    }

    @Test
    void aHeldCallReadsAgainWhenAnEntryParkedByALaterCallIsDueSooner() throws Exception {
        epochs.put(1L, 3);
        epochs.put(2L, 3);
        epochs.put(3L, 3);
        CompletableFuture<Reply> held = handler.handle(call(7, List.of(fetch(1, 3, 0, 10_000)), 1));
        awaitParked(1);
        // A later call brings news for segment 2 (answered at once) and parks segment 3 with a 300 ms wait.
        tombstones.put(2L, List.of(5L));
        FetchManyResponse now = message(handler.handle(call(7, List.of(fetch(2, 3, 0, 10_000), fetch(3, 3, 0, 300)), 2, 3)));
        assertEquals(List.of(2L), ids(now));
        // The first call, held for segment 1's 10 s, answers segment 3 once its 300 ms have passed, not 10 s later.
        assertEquals(List.of(3L), ids((FetchManyResponse) held.get(5, TimeUnit.SECONDS).message()));
    }

    @Test
    void aSessionCallWhoseEntryIdsDoNotMatchItsEntriesIsRefused() {
        epochs.put(1L, 3);
        ExecutionException e = assertThrows(ExecutionException.class,
                () -> handler.handle(call(7, List.of(fetch(1, 3, 0, 10_000)))).get(10, TimeUnit.SECONDS));
        assertEquals(ErrorCode.INVALID_ARGUMENT.code(), ((RpcException) e.getCause()).code());
    }
}
