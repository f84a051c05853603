package dev.segstore.node.server;

import dev.segstore.adapter.ErrorCode;
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
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The follower side of node.FetchMany: rounds per leader node, answers split per segment, the fallback for older leaders. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class FetchBatcherTest {
    private final ScheduledExecutorService sender = Executors.newSingleThreadScheduledExecutor();
    /** The node.FetchMany calls made, with the futures that answer them. */
    private final List<FetchManyRequest> sent = new CopyOnWriteArrayList<>();
    private final List<CompletableFuture<RpcClient.Answer<FetchManyResponse>>> answers = new CopyOnWriteArrayList<>();
    private final List<FetchRequest> singles = new CopyOnWriteArrayList<>();
    private final AtomicInteger called = new AtomicInteger();

    private final FetchBatcher.Calls calls = new FetchBatcher.Calls() {
        @Override
        public CompletableFuture<RpcClient.Answer<FetchManyResponse>> many(String address, FetchManyRequest request) {
            CompletableFuture<RpcClient.Answer<FetchManyResponse>> f = new CompletableFuture<>();
            sent.add(request);
            answers.add(f);
            return f;
        }

        @Override
        public CompletableFuture<RpcClient.Answer<FetchResponse>> one(String address, FetchRequest request) {
            singles.add(request);
            return CompletableFuture.completedFuture(new RpcClient.Answer<>(FetchResponse.newBuilder().setHighWatermark(request.getOffset()).build(),
                    ByteBuffer.allocate(0)));
        }
    };
    private final FetchBatcher batcher = new FetchBatcher(2, calls, sender);

    @AfterEach
    void stop() {
        sender.shutdownNow();
    }

    private static FetchRequest fetch(long shard, long offset) {
        return FetchRequest.newBuilder().setSegment(SegmentRef.newBuilder().setShardId(shard).setSequence(0)).setReplicaId(2)
                .setLeaderEpoch(1).setOffset(offset).setMaxWaitMs(1_000).build();
    }

    private CompletableFuture<RpcClient.Answer<FetchResponse>> fetchFrom(String address, FetchRequest r) {
        return batcher.fetch(address, r, FetchBatcher.Replica.handedBackAll(called::incrementAndGet));
    }

    private static FetchManyResult ok(long hw, int bytes) {
        return FetchManyResult.newBuilder().setResponse(FetchResponse.newBuilder().setHighWatermark(hw)).setBatchBytes(bytes).build();
    }

    private static RpcClient.Answer<FetchManyResponse> answer(byte[] attachment, FetchManyResult... results) {
        return new RpcClient.Answer<>(FetchManyResponse.newBuilder().addAllResults(List.of(results)).build(), ByteBuffer.wrap(attachment));
    }

    private void awaitCalls(int n) {
        InJvmCluster.waitFor(n + " node.FetchMany calls", 10_000, () -> sent.size() >= n);
    }

    @Test
    void fetchesGoInRoundsAndEachTakesItsOwnPartOfTheAnswer() throws Exception {
        CompletableFuture<RpcClient.Answer<FetchResponse>> a = fetchFrom("leader", fetch(1, 10));
        awaitCalls(1);
        assertFalse(sent.get(0).getWakeHeld());
        assertEquals(1_000, sent.get(0).getMaxWaitMs());
        assertEquals(2, sent.get(0).getReplicaId());
        // A fetch asked while the round is held goes at once, unheld, and wakes the held call.
        CompletableFuture<RpcClient.Answer<FetchResponse>> b = fetchFrom("leader", fetch(2, 20));
        awaitCalls(2);
        assertTrue(sent.get(1).getWakeHeld());
        assertEquals(List.of(fetch(2, 20)), sent.get(1).getFetchesList());
        assertEquals(2, called.get(), "each fetch counts as a call to its leader once its call goes out");
        answers.get(1).complete(answer(new byte[]{7, 8, 9}, ok(20, 3)));
        answers.get(0).complete(answer(new byte[0], ok(10, 0)));
        RpcClient.Answer<FetchResponse> bAnswer = b.get(5, TimeUnit.SECONDS);
        assertEquals(20, bAnswer.message().getHighWatermark());
        assertEquals(3, bAnswer.attachment().remaining());
        assertEquals(7, bAnswer.attachment().get(bAnswer.attachment().position()));
        assertEquals(10, a.get(5, TimeUnit.SECONDS).message().getHighWatermark());
        // The next round waits for both to ask again: both fetches in one held call, the answer's bytes split by entry.
        CompletableFuture<RpcClient.Answer<FetchResponse>> b2 = fetchFrom("leader", fetch(2, 23));
        CompletableFuture<RpcClient.Answer<FetchResponse>> a2 = fetchFrom("leader", fetch(1, 10));
        awaitCalls(3);
        FetchManyRequest round = sent.get(2);
        assertFalse(round.getWakeHeld());
        assertEquals(List.of(fetch(2, 23), fetch(1, 10)), round.getFetchesList());
        answers.get(2).complete(answer(new byte[]{1, 2, 3, 4, 5}, ok(23, 2), ok(11, 3)));
        ByteBuffer bBytes = b2.get(5, TimeUnit.SECONDS).attachment();
        ByteBuffer aBytes = a2.get(5, TimeUnit.SECONDS).attachment();
        assertEquals(List.of((byte) 1, (byte) 2), List.of(bBytes.get(bBytes.position()), bBytes.get(bBytes.position() + 1)));
        assertEquals(2, bBytes.remaining());
        assertEquals(3, aBytes.remaining());
        assertEquals(3, aBytes.get(aBytes.position()));
        assertEquals(3, sent.size());
    }

    @Test
    void aQuietAnswerRepeatedIsHeldBackAndItsFetchGoesInTheNextRoundAsItIs() throws Exception {
        FetchBatcher.LastQuiet memo = new FetchBatcher.LastQuiet();
        AtomicInteger heard = new AtomicInteger();
        FetchBatcher.Replica replica = new FetchBatcher.Replica(called::incrementAndGet, heard::incrementAndGet, () -> true, memo);
        FetchRequest r = fetch(1, 10);
        CompletableFuture<RpcClient.Answer<FetchResponse>> first = batcher.fetch("leader", r, replica);
        awaitCalls(1);
        answers.get(0).complete(answer(new byte[0], ok(10, 0)));
        assertEquals(10, first.get(5, TimeUnit.SECONDS).message().getHighWatermark(), "a first quiet answer goes to the loop");
        // The loop asks the same again and gets the same answer: it would change nothing, so it is held back and the
        // fetch goes out again in the next round, its leader counted as having answered.
        CompletableFuture<RpcClient.Answer<FetchResponse>> second = batcher.fetch("leader", r, replica);
        awaitCalls(2);
        answers.get(1).complete(answer(new byte[0], ok(10, 0)));
        awaitCalls(3);
        assertEquals(List.of(r), sent.get(2).getFetchesList());
        assertFalse(sent.get(2).getWakeHeld());
        assertFalse(second.isDone(), "a repeated quiet answer was handed to the loop");
        assertEquals(1, heard.get(), "the leader's answer to a held-back fetch did not count as an answer");
        assertEquals(1, batcher.heldBack());
        assertEquals(3, called.get(), "each call carrying the fetch counts as a call to its leader");
        // News (here a new high watermark) goes to the loop.
        answers.get(2).complete(answer(new byte[0], ok(11, 0)));
        assertEquals(11, second.get(5, TimeUnit.SECONDS).message().getHighWatermark());
        assertEquals(1, batcher.heldBack());
    }

    @Test
    void aHeldBackFetchWhoseLoopNoLongerWantsItIsHandedItsQuietAnswer() throws Exception {
        // Rounds wait up to a minute for the segments of the last one (not 100 ms), so the round after the held one
        // goes only once segment 2 asks again, whatever the pace of this test.
        FetchBatcher batcher = new FetchBatcher(2, calls, sender, 60_000);
        FetchBatcher.LastQuiet memo = new FetchBatcher.LastQuiet();
        java.util.concurrent.atomic.AtomicBoolean wanted = new java.util.concurrent.atomic.AtomicBoolean(true);
        FetchBatcher.Replica quiet = new FetchBatcher.Replica(called::incrementAndGet, () -> { }, wanted::get, memo);
        FetchRequest a = fetch(1, 10);
        batcher.fetch("leader", a, quiet);
        awaitCalls(1);
        answers.get(0).complete(answer(new byte[0], ok(10, 0)));
        CompletableFuture<RpcClient.Answer<FetchResponse>> heldBack = batcher.fetch("leader", a, quiet);
        CompletableFuture<RpcClient.Answer<FetchResponse>> busy = batcher.fetch("leader", fetch(2, 0), FetchBatcher.Replica.handedBackAll(called::incrementAndGet));
        awaitCalls(2);
        assertEquals(List.of(a), sent.get(1).getFetchesList());
        awaitCalls(3); // the busy segment's fetch, asked while the round was held, woke it
        assertEquals(List.of(fetch(2, 0)), sent.get(2).getFetchesList());
        // The held round: segment 1 quiet again (held back), and the next round waits for segment 2, which had news.
        answers.get(2).complete(answer(new byte[]{1}, ok(1, 1)));
        busy.get(5, TimeUnit.SECONDS);
        answers.get(1).complete(answer(new byte[0], ok(10, 0)));
        assertFalse(heldBack.isDone());
        // Before the next round goes, segment 1's loop stops wanting it (say its leader epoch changed): it gets the
        // quiet answer it was held back with, and the round goes without it.
        wanted.set(false);
        batcher.fetch("leader", fetch(2, 1), FetchBatcher.Replica.handedBackAll(called::incrementAndGet));
        assertEquals(10, heldBack.get(5, TimeUnit.SECONDS).message().getHighWatermark());
        awaitCalls(4);
        assertEquals(List.of(fetch(2, 1)), sent.get(3).getFetchesList());
    }

    @Test
    void aQuietAnswerIsNotHeldBackWhenTheLoopNoLongerWantsItOrAsksSomethingElse() throws Exception {
        FetchBatcher.LastQuiet memo = new FetchBatcher.LastQuiet();
        java.util.concurrent.atomic.AtomicBoolean wanted = new java.util.concurrent.atomic.AtomicBoolean(true);
        FetchBatcher.Replica replica = new FetchBatcher.Replica(called::incrementAndGet, () -> { }, wanted::get, memo);
        batcher.fetch("leader", fetch(1, 10), replica);
        awaitCalls(1);
        answers.get(0).complete(answer(new byte[0], ok(10, 0)));
        // The same answer to another request (the loop's offset moved): handed to the loop.
        CompletableFuture<RpcClient.Answer<FetchResponse>> other = batcher.fetch("leader", fetch(1, 12), replica);
        awaitCalls(2);
        answers.get(1).complete(answer(new byte[0], ok(10, 0)));
        assertEquals(10, other.get(5, TimeUnit.SECONDS).message().getHighWatermark());
        // The same request and answer, but the loop no longer wants it: handed to the loop.
        wanted.set(false);
        CompletableFuture<RpcClient.Answer<FetchResponse>> unwanted = batcher.fetch("leader", fetch(1, 12), replica);
        awaitCalls(3);
        answers.get(2).complete(answer(new byte[0], ok(10, 0)));
        assertEquals(10, unwanted.get(5, TimeUnit.SECONDS).message().getHighWatermark());
        assertEquals(0, batcher.heldBack());
    }

    @Test
    void answersWithNewsOrANextSegmentAndAnswersToACallThatWokeTheRoundAreNeverHeldBack() throws Exception {
        FetchBatcher.LastQuiet memo = new FetchBatcher.LastQuiet();
        FetchBatcher.Replica replica = new FetchBatcher.Replica(called::incrementAndGet, () -> { }, () -> true, memo);
        FetchRequest r = fetch(1, 10);
        FetchManyResult quiet = ok(10, 0);
        FetchManyResult tombstones = FetchManyResult.newBuilder().setResponse(quiet.getResponse().toBuilder().addTombstones(3)).build();
        FetchManyResult next = FetchManyResult.newBuilder().setResponse(quiet.getResponse().toBuilder()
                .setNextSegment(dev.segstore.protocol.meta.Segment.newBuilder().setShardId(1).setSequence(1))).build();
        int call = 0;
        // Each pair below: the loop took the first answer, the second has news or a next segment: not held back.
        // (A next segment is repeated in every answer so that a replica whose taking of it failed takes it again.)
        for (FetchManyResult[] pair : List.of(new FetchManyResult[]{quiet, ok(10, 2)}, new FetchManyResult[]{quiet, tombstones},
                new FetchManyResult[]{next, next})) {
            FetchManyResult news = pair[1];
            CompletableFuture<RpcClient.Answer<FetchResponse>> first = batcher.fetch("leader", r, replica);
            awaitCalls(++call);
            answers.get(call - 1).complete(answer(new byte[0], pair[0]));
            first.get(5, TimeUnit.SECONDS);
            CompletableFuture<RpcClient.Answer<FetchResponse>> second = batcher.fetch("leader", r, replica);
            awaitCalls(++call);
            answers.get(call - 1).complete(answer(new byte[news.getBatchBytes()], news));
            assertEquals(news.getResponse(), second.get(5, TimeUnit.SECONDS).message());
        }
        assertEquals(0, batcher.heldBack());
        // A quiet answer repeated in a call that woke the held round goes back to its loop too (held back, it would go
        // out at once in another such call while the round is held).
        CompletableFuture<RpcClient.Answer<FetchResponse>> held = fetchFrom("leader", fetch(2, 0));
        awaitCalls(++call);
        CompletableFuture<RpcClient.Answer<FetchResponse>> woke = batcher.fetch("leader", r, replica);
        awaitCalls(++call);
        assertTrue(sent.get(call - 1).getWakeHeld());
        answers.get(call - 1).complete(answer(new byte[0], quiet)); // the same quiet answer as the loop took last
        assertEquals(quiet.getResponse(), woke.get(5, TimeUnit.SECONDS).message());
        assertEquals(0, batcher.heldBack());
        answers.get(call - 2).complete(answer(new byte[0], ok(0, 0)));
        held.get(5, TimeUnit.SECONDS);
    }

    @Test
    void anEntryThatFailedFailsItsFetchOnlyAndDoesNotHoldUpTheNextRound() throws Exception {
        CompletableFuture<RpcClient.Answer<FetchResponse>> a = fetchFrom("leader", fetch(1, 0));
        CompletableFuture<RpcClient.Answer<FetchResponse>> b = fetchFrom("leader", fetch(2, 0));
        awaitCalls(2);
        answers.get(1).complete(answer(new byte[0], ok(5, 0)));
        answers.get(0).complete(answer(new byte[0], FetchManyResult.newBuilder().setError(new RpcException(ErrorCode.FENCED_EPOCH.code(),
                "fenced", "", 2, false).toError()).build()));
        assertEquals(5, b.get(5, TimeUnit.SECONDS).message().getHighWatermark());
        ExecutionException failed = assertThrows(ExecutionException.class, () -> a.get(5, TimeUnit.SECONDS));
        assertEquals(ErrorCode.FENCED_EPOCH.code(), ((RpcException) failed.getCause()).code());
        assertEquals(2, ((RpcException) failed.getCause()).leaderEpoch());
        fetchFrom("leader", fetch(2, 0));
        awaitCalls(3);
        assertFalse(sent.get(2).getWakeHeld(), "the next round goes as soon as the segment answered asks again");
        assertEquals(List.of(fetch(2, 0)), sent.get(2).getFetchesList());
    }

    @Test
    void aCallThatFailsFailsEachOfItsFetches() {
        CompletableFuture<RpcClient.Answer<FetchResponse>> a = fetchFrom("leader", fetch(1, 0));
        awaitCalls(1);
        answers.get(0).completeExceptionally(new RpcException(RpcException.UNAVAILABLE, "connection lost"));
        ExecutionException failed = assertThrows(ExecutionException.class, () -> a.get(5, TimeUnit.SECONDS));
        assertEquals(RpcException.UNAVAILABLE, ((RpcException) failed.getCause()).code());
    }

    @Test
    void aLeaderNodeWithoutTheMethodIsFetchedFromSegmentBySegment() throws Exception {
        CompletableFuture<RpcClient.Answer<FetchResponse>> a = fetchFrom("old", fetch(1, 4));
        awaitCalls(1);
        answers.get(0).completeExceptionally(new RpcException(RpcException.INVALID_ARGUMENT, "unknown method 'node.FetchMany'"));
        assertEquals(4, a.get(5, TimeUnit.SECONDS).message().getHighWatermark());
        assertEquals(List.of(fetch(1, 4)), singles);
        assertFalse(batcher.batches("old"), "the next fetches to that node go one by one");
        assertTrue(batcher.batches("new"));
        // Other leader nodes still get batched calls.
        fetchFrom("new", fetch(2, 0));
        awaitCalls(2);
    }

    @Test
    void anOlderNodesAnswerToTheMethodIsKnownForWhatItIs() throws Exception {
        // A node of a version without node.FetchMany: its RPC server has no handler for the method.
        dev.segstore.protocol.rpc.RpcServer older = new dev.segstore.protocol.rpc.RpcServer(1, 1 << 20);
        java.net.InetSocketAddress at = older.start("127.0.0.1", 0);
        try (RpcClient client = new RpcClient()) {
            CompletableFuture<RpcClient.Answer<FetchManyResponse>> call = client.callWithAttachment("127.0.0.1:" + at.getPort(),
                    dev.segstore.protocol.NodeMethods.FETCH_MANY, FetchManyRequest.getDefaultInstance(), FetchManyResponse.parser(), 5_000);
            ExecutionException failed = assertThrows(ExecutionException.class, () -> call.get(10, TimeUnit.SECONDS));
            assertTrue(FetchBatcher.unknownMethod(failed.getCause()), failed.getCause().toString());
            assertFalse(FetchBatcher.unknownMethod(new RpcException(RpcException.INVALID_ARGUMENT, "node 2 is not a replica")));
        } finally {
            older.close();
        }
    }

    @Test
    void anAnswerWithTheWrongNumberOfEntriesFailsThem() {
        CompletableFuture<RpcClient.Answer<FetchResponse>> a = fetchFrom("leader", fetch(1, 0));
        awaitCalls(1);
        answers.get(0).complete(answer(new byte[0]));
        ExecutionException failed = assertThrows(ExecutionException.class, () -> a.get(5, TimeUnit.SECONDS));
        assertEquals(RpcException.INTERNAL, ((RpcException) failed.getCause()).code());
    }
}
