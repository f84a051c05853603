package dev.segstore.node.server;

import dev.segstore.protocol.node.FetchManyRequest;
import dev.segstore.protocol.node.FetchManyResponse;
import dev.segstore.protocol.node.FetchManyResult;
import dev.segstore.protocol.node.FetchRequest;
import dev.segstore.protocol.node.FetchResponse;
import dev.segstore.protocol.node.SegmentRef;
import dev.segstore.protocol.rpc.RpcClient;
import dev.segstore.protocol.rpc.RpcException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.ByteBuffer;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The follower side of fetch sessions against a scripted leader: answers come by entry id in any call of the session,
 * their bytes split by entry; a failed call fails every entry out and starts a new session; a leader that does not know
 * sessions answers in order.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class FetchSessionsTest {
    private final ScheduledExecutorService sender = Executors.newSingleThreadScheduledExecutor();
    private final List<FetchManyRequest> sent = new CopyOnWriteArrayList<>();
    private final List<CompletableFuture<RpcClient.Answer<FetchManyResponse>>> answers = new CopyOnWriteArrayList<>();
    private final AtomicInteger called = new AtomicInteger();

    private final FetchSessions.Calls calls = new FetchSessions.Calls() {
        @Override
        public CompletableFuture<RpcClient.Answer<FetchManyResponse>> many(String address, FetchManyRequest request) {
            CompletableFuture<RpcClient.Answer<FetchManyResponse>> f = new CompletableFuture<>();
            sent.add(request);
            answers.add(f);
            return f;
        }

        @Override
        public CompletableFuture<RpcClient.Answer<FetchResponse>> one(String address, FetchRequest request) {
            return CompletableFuture.failedFuture(new AssertionError("no node.Fetch expected"));
        }
    };
    /** Rounds gather for at most 50 ms. */
    private final FetchSessions sessions = new FetchSessions(2, calls, sender, 50);

    @AfterEach
    void stop() {
        sender.shutdownNow();
    }

    private static FetchRequest fetch(long shard, long offset) {
        return FetchRequest.newBuilder().setSegment(SegmentRef.newBuilder().setShardId(shard).setSequence(0)).setReplicaId(2)
                .setLeaderEpoch(1).setOffset(offset).setMaxWaitMs(1_000).build();
    }

    private CompletableFuture<RpcClient.Answer<FetchResponse>> fetchFrom(FetchRequest r) {
        return sessions.fetch("leader", r, called::incrementAndGet);
    }

    private static FetchManyResult ok(long entryId, long hw, int bytes) {
        return FetchManyResult.newBuilder().setEntryId(entryId).setResponse(FetchResponse.newBuilder().setHighWatermark(hw)).setBatchBytes(bytes).build();
    }

    private static RpcClient.Answer<FetchManyResponse> answer(boolean session, byte[] attachment, FetchManyResult... results) {
        return new RpcClient.Answer<>(FetchManyResponse.newBuilder().setSession(session).addAllResults(List.of(results)).build(),
                ByteBuffer.wrap(attachment));
    }

    private void awaitCalls(int n) {
        InJvmCluster.waitFor(n + " node.FetchMany calls", 10_000, () -> sent.size() >= n);
    }

    @Test
    void entriesAreAnsweredByIdInAnyCallOfTheSessionEachWithItsOwnBytes() throws Exception {
        CompletableFuture<RpcClient.Answer<FetchResponse>> a = fetchFrom(fetch(1, 10));
        awaitCalls(1);
        CompletableFuture<RpcClient.Answer<FetchResponse>> b = fetchFrom(fetch(2, 20)); // asked while a call is out: at once
        awaitCalls(2);
        FetchManyRequest first = sent.get(0);
        FetchManyRequest second = sent.get(1);
        assertNotEquals(0, first.getSession());
        assertTrue(first.getSessionStart(), "the first call starts the session");
        assertTrue(second.getSessionStart(), "so does every call until an answer shows the leader holds it (they may arrive in either order)");
        assertEquals(first.getSession(), second.getSession(), "one session per leader node");
        assertEquals(List.of(fetch(1, 10)), first.getFetchesList());
        assertEquals(List.of(fetch(2, 20)), second.getFetchesList());
        assertEquals(2, called.get(), "each fetch counts as a call to its leader once its call goes out");
        long idA = first.getEntryIds(0);
        long idB = second.getEntryIds(0);
        // The leader answers the older call empty (the newer one took over), then the newer one with both, b first.
        answers.get(0).complete(answer(true, new byte[0]));
        assertFalse(a.isDone());
        answers.get(1).complete(answer(true, new byte[]{7, 8, 9, 4}, ok(idB, 20, 3), ok(idA, 10, 1)));
        RpcClient.Answer<FetchResponse> bAnswer = b.get(5, TimeUnit.SECONDS);
        assertEquals(20, bAnswer.message().getHighWatermark());
        assertEquals(3, bAnswer.attachment().remaining());
        assertEquals(7, bAnswer.attachment().get(bAnswer.attachment().position()));
        RpcClient.Answer<FetchResponse> aAnswer = a.get(5, TimeUnit.SECONDS);
        assertEquals(10, aAnswer.message().getHighWatermark());
        assertEquals(1, aAnswer.attachment().remaining());
        assertEquals(4, aAnswer.attachment().get(aAnswer.attachment().position()));
    }

    @Test
    void whileEntriesAreParkedOneCallIsOutToBringTheirAnswersAndTheLoopsAnsweredGoTogether() throws Exception {
        CompletableFuture<RpcClient.Answer<FetchResponse>> a = fetchFrom(fetch(1, 10));
        awaitCalls(1);
        CompletableFuture<RpcClient.Answer<FetchResponse>> b = fetchFrom(fetch(2, 20));
        awaitCalls(2);
        answers.get(0).complete(answer(true, new byte[0]));
        // Segment 2 has news; segment 1 stays parked at the leader.
        answers.get(1).complete(answer(true, new byte[0], ok(sent.get(1).getEntryIds(0), 21, 0)));
        b.get(5, TimeUnit.SECONDS);
        // Segment 2's loop does not ask again within the gather: after it, a call goes out for segment 1's answer anyway.
        awaitCalls(3);
        assertEquals(0, sent.get(2).getFetchesCount(), "a call with no entry, to receive the parked one's answer");
        assertFalse(sent.get(2).getSessionStart(), "the leader answered as a session's: it holds it");
        // Segment 2's loop asks again while that call is out: it goes at once.
        CompletableFuture<RpcClient.Answer<FetchResponse>> b2 = fetchFrom(fetch(2, 21));
        awaitCalls(4);
        assertEquals(List.of(fetch(2, 21)), sent.get(3).getFetchesList());
        answers.get(2).complete(answer(true, new byte[0]));
        answers.get(3).complete(answer(true, new byte[0], ok(sent.get(0).getEntryIds(0), 11, 0)));
        assertEquals(11, a.get(5, TimeUnit.SECONDS).message().getHighWatermark(), "sent in the first call, answered in the fourth");
        assertFalse(b2.isDone());
        // Now the answered loop asks again at once: its fetch waits for nothing and goes in the next call with b2 parked.
        CompletableFuture<RpcClient.Answer<FetchResponse>> a2 = fetchFrom(fetch(1, 11));
        awaitCalls(5);
        assertEquals(List.of(fetch(1, 11)), sent.get(4).getFetchesList());
        assertFalse(a2.isDone());
    }

    @Test
    void loopsAnsweredTogetherAskAgainTogetherEvenWhileAnotherCallIsOut() throws Exception {
        CompletableFuture<RpcClient.Answer<FetchResponse>> a = fetchFrom(fetch(1, 10));
        awaitCalls(1);
        CompletableFuture<RpcClient.Answer<FetchResponse>> b = fetchFrom(fetch(2, 20));
        awaitCalls(2);
        fetchFrom(fetch(3, 30));
        awaitCalls(3);
        // The third call brings a's and b's answers; the first two stay out (held at the leader).
        answers.get(2).complete(answer(true, new byte[0], ok(sent.get(0).getEntryIds(0), 11, 0), ok(sent.get(1).getEntryIds(0), 21, 0)));
        a.get(5, TimeUnit.SECONDS);
        b.get(5, TimeUnit.SECONDS);
        fetchFrom(fetch(1, 11));
        fetchFrom(fetch(2, 21));
        awaitCalls(4);
        assertEquals(List.of(fetch(1, 11), fetch(2, 21)), sent.get(3).getFetchesList(), "one call for both, not one each");
    }

    @Test
    void aFailedCallFailsEveryEntryOutAndTheNextCallOpensANewSession() throws Exception {
        CompletableFuture<RpcClient.Answer<FetchResponse>> a = fetchFrom(fetch(1, 10));
        awaitCalls(1);
        CompletableFuture<RpcClient.Answer<FetchResponse>> b = fetchFrom(fetch(2, 20));
        awaitCalls(2);
        answers.get(0).complete(answer(true, new byte[0]));
        answers.get(1).completeExceptionally(new RpcException(RpcException.UNAVAILABLE, "connection lost"));
        ExecutionException e = assertThrows(ExecutionException.class, () -> a.get(5, TimeUnit.SECONDS),
                "parked at the leader in the lost session, its answer may have been in the lost call");
        assertEquals("connection lost", e.getCause().getMessage());
        assertThrows(ExecutionException.class, () -> b.get(5, TimeUnit.SECONDS));
        fetchFrom(fetch(1, 10));
        awaitCalls(3);
        assertNotEquals(sent.get(0).getSession(), sent.get(2).getSession(), "a new session: what the old one parked is left to it");
        assertTrue(sent.get(2).getSessionStart());
    }

    @Test
    void aNewerFetchOfASegmentReplacesItsOlderEntryWhoseAnswerIsThenSkipped() throws Exception {
        CompletableFuture<RpcClient.Answer<FetchResponse>> old = fetchFrom(fetch(1, 10));
        awaitCalls(1);
        CompletableFuture<RpcClient.Answer<FetchResponse>> fresh = fetchFrom(fetch(1, 10).toBuilder().setLeaderEpoch(2).build());
        awaitCalls(2);
        assertThrows(ExecutionException.class, () -> old.get(5, TimeUnit.SECONDS), "its loop gave that round up");
        answers.get(0).complete(answer(true, new byte[0]));
        // The leader still answers the old entry (it came first) with 2 bytes, then the new one with 1.
        answers.get(1).complete(answer(true, new byte[]{1, 2, 3}, ok(sent.get(0).getEntryIds(0), 5, 2), ok(sent.get(1).getEntryIds(0), 6, 1)));
        RpcClient.Answer<FetchResponse> f = fresh.get(5, TimeUnit.SECONDS);
        assertEquals(6, f.message().getHighWatermark());
        assertEquals(1, f.attachment().remaining());
        assertEquals(3, f.attachment().get(f.attachment().position()), "the replaced entry's bytes were skipped");
    }

    @Test
    void aLeaderThatDoesNotKnowSessionsAnswersEveryEntryInOrder() throws Exception {
        CompletableFuture<RpcClient.Answer<FetchResponse>> a = fetchFrom(fetch(1, 10));
        awaitCalls(1);
        answers.get(0).complete(answer(false, new byte[]{5, 6}, FetchManyResult.newBuilder()
                .setResponse(FetchResponse.newBuilder().setHighWatermark(12)).setBatchBytes(2).build()));
        RpcClient.Answer<FetchResponse> r = a.get(5, TimeUnit.SECONDS);
        assertEquals(12, r.message().getHighWatermark());
        assertEquals(2, r.attachment().remaining());
        assertFalse(sessions.batches("leader"), "its fetches go one by one (node.Fetch) for a while");
    }
}
