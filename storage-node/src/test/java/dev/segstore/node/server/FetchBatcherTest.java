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

    private final FetchBatcher batcher = new FetchBatcher(2, new FetchBatcher.Calls() {
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
    }, sender);

    @AfterEach
    void stop() {
        sender.shutdownNow();
    }

    private static FetchRequest fetch(long shard, long offset) {
        return FetchRequest.newBuilder().setSegment(SegmentRef.newBuilder().setShardId(shard).setSequence(0)).setReplicaId(2)
                .setLeaderEpoch(1).setOffset(offset).setMaxWaitMs(1_000).build();
    }

    private CompletableFuture<RpcClient.Answer<FetchResponse>> fetchFrom(String address, FetchRequest r) {
        return batcher.fetch(address, r, called::incrementAndGet);
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
