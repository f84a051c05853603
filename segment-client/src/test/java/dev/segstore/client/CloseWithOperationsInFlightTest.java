package dev.segstore.client;

import dev.segstore.adapter.ErrorCode;
import dev.segstore.adapter.NewRecord;
import dev.segstore.adapter.ShardConfig;
import dev.segstore.adapter.ShardFilter;
import dev.segstore.adapter.StorageException;
import dev.segstore.protocol.MetaMethods;
import dev.segstore.protocol.NodeMethods;
import dev.segstore.protocol.meta.CommitOffsetsRequest;
import dev.segstore.protocol.meta.CreateShardRequest;
import dev.segstore.protocol.meta.DescribeClusterResponse;
import dev.segstore.protocol.meta.Empty;
import dev.segstore.protocol.meta.GetOffsetRequest;
import dev.segstore.protocol.meta.GetRouteRequest;
import dev.segstore.protocol.meta.ListShardsRequest;
import dev.segstore.protocol.meta.StorageNode;
import dev.segstore.protocol.node.FetchRequest;
import dev.segstore.protocol.node.ProduceRequest;
import dev.segstore.protocol.node.ProduceResponse;
import dev.segstore.protocol.rpc.RpcException;
import dev.segstore.protocol.rpc.RpcHandler;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code close()} with operations in flight (docs/adapter-contract.md): every operation's future completes, with
 * its real outcome if it gets one within the close grace (one call timeout), else with CLOSED, or OUTCOME_UNKNOWN
 * for a write an attempt of which went out. Before, retries waiting for their pause were dropped by the timer's
 * shutdown, in the adapter and in the meta client, and their futures never completed.
 */
@Timeout(60)
class CloseWithOperationsInFlightTest {
    private static final NewRecord RECORD = NewRecord.of(1, "r".getBytes(StandardCharsets.UTF_8)).withKey("k");

    private static int deadPort() throws Exception {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort(); // closed again: connections are refused
        }
    }

    /** Whether close() has begun: a call then fails CLOSED at once (an invalid one fails INVALID_ARGUMENT before). */
    private static boolean closing(SegmentStorageAdapter adapter) {
        return adapter.readByKey("s", "").handle((v, e) -> SegmentStorageAdapter.storageError(e).code() == ErrorCode.CLOSED).join();
    }

    /** The error {@code f} completes with, within 10 s (a future still pending then fails the test). */
    private static StorageException failure(String what, CompletableFuture<?> f) throws Exception {
        try {
            Object v = f.get(10, TimeUnit.SECONDS);
            throw new AssertionError(what + " completed normally after close: " + v);
        } catch (java.util.concurrent.TimeoutException e) {
            throw new AssertionError(what + " never completed after close()", e);
        } catch (ExecutionException e) {
            return assertInstanceOf(StorageException.class, e.getCause(), what);
        }
    }

    @Test
    void operationsWaitingToRetryAnUnreachableNodeCompleteOnClose() throws Exception {
        int dead = deadPort();
        AtomicInteger routeReads = new AtomicInteger();
        try (ScriptedServer server = ScriptedServer.start(
                RpcHandler.of(MetaMethods.GET_ROUTE, GetRouteRequest.parser(), r -> {
                    routeReads.incrementAndGet();
                    return CompletableFuture.completedFuture(ScriptedServer.route(ScriptedServer.segment(0, 0, -1)));
                }),
                RpcHandler.of(MetaMethods.DESCRIBE_CLUSTER, Empty.parser(), r -> CompletableFuture.completedFuture(
                        DescribeClusterResponse.newBuilder().addNodes(StorageNode.newBuilder().setNodeId(1)
                                .setHost("127.0.0.1").setPort(dead)).build())))) {
            SegmentStorageAdapter adapter = server.adapter(60_000, 2_000);
            Map<String, CompletableFuture<?>> ops = new LinkedHashMap<>();
            ops.put("write", adapter.write("s", RECORD));
            ops.put("readByOffset", adapter.readByOffset("s", 0, 10));
            ops.put("readByKey", adapter.readByKey("s", "k"));
            ops.put("deleteByKey", adapter.deleteByKey("s", "k"));
            ops.put("getOffsetByTimestamp", adapter.getOffsetByTimestamp("s", 0));
            // Each failed attempt reads the route again: several reads each mean the retries are under way.
            Await.until("every operation to retry", 20_000, () -> routeReads.get() >= 3 * ops.size());
            adapter.close();
            for (Map.Entry<String, CompletableFuture<?>> op : ops.entrySet()) {
                StorageException e = failure(op.getKey(), op.getValue());
                ErrorCode expected = op.getKey().equals("write") ? ErrorCode.OUTCOME_UNKNOWN : ErrorCode.CLOSED;
                assertEquals(expected, e.code(), op.getKey() + ": " + e);
            }
        }
    }

    @Test
    void operationsWaitingToRetryTheMetaServiceCompleteOnClose() throws Exception {
        AtomicInteger calls = new AtomicInteger();
        java.util.function.Function<Object, CompletableFuture<?>> unavailable = r -> {
            calls.incrementAndGet();
            return CompletableFuture.failedFuture(new RpcException(ErrorCode.UNAVAILABLE.code(), "electing"));
        };
        try (ScriptedServer server = ScriptedServer.start(
                RpcHandler.of(MetaMethods.GET_ROUTE, GetRouteRequest.parser(), unavailable::apply),
                RpcHandler.of(MetaMethods.CREATE_SHARD, CreateShardRequest.parser(), unavailable::apply),
                RpcHandler.of(MetaMethods.LIST_SHARDS, ListShardsRequest.parser(), unavailable::apply),
                RpcHandler.of(MetaMethods.GET_OFFSET, GetOffsetRequest.parser(), unavailable::apply),
                RpcHandler.of(MetaMethods.COMMIT_OFFSETS, CommitOffsetsRequest.parser(), unavailable::apply))) {
            SegmentStorageAdapter adapter = server.adapter(60_000, 2_000);
            Map<String, CompletableFuture<?>> ops = new LinkedHashMap<>();
            ops.put("createShard", adapter.createShard(ShardConfig.of("t", SegmentStorageAdapter.STORAGE_TYPE)));
            ops.put("listShards", adapter.listShards(ShardFilter.all()));
            ops.put("getOffsetByGroup", adapter.getOffsetByGroup("g", "s"));
            ops.put("commitOffset", adapter.commitOffset("g", "s", 3));
            ops.put("write", adapter.write("s", RECORD));
            ops.put("readByOffset", adapter.readByOffset("s", 0, 10));
            Await.until("every meta call to retry", 20_000, () -> calls.get() >= 3 * ops.size());
            adapter.close();
            for (Map.Entry<String, CompletableFuture<?>> op : ops.entrySet()) {
                // Nothing reached a storage node: the write was never sent, so it is not stored.
                assertEquals(ErrorCode.CLOSED, failure(op.getKey(), op.getValue()).code(), op.getKey());
            }
        }
    }

    @Test
    void aMetaClientClosedWhileItsCallsRetryCompletesThem() throws Exception {
        AtomicInteger calls = new AtomicInteger();
        try (ScriptedServer server = ScriptedServer.start(RpcHandler.of(MetaMethods.GET_ROUTE, GetRouteRequest.parser(), r -> {
            calls.incrementAndGet();
            return CompletableFuture.failedFuture(new RpcException(ErrorCode.NOT_LEADER.code(), "no leader yet"));
        }))) {
            MetaClient meta = new MetaClient(List.of(server.address()), 2_000, 60_000);
            List<CompletableFuture<?>> routes = List.of(meta.route("a"), meta.route("b"), meta.route("c"));
            Await.until("the calls to retry", 20_000, () -> calls.get() >= 9);
            meta.close();
            for (CompletableFuture<?> f : routes) {
                try {
                    f.get(10, TimeUnit.SECONDS);
                    throw new AssertionError("completed normally");
                } catch (java.util.concurrent.TimeoutException e) {
                    throw new AssertionError("a call retrying when the meta client closed never completed", e);
                } catch (ExecutionException e) {
                    RpcException re = assertInstanceOf(RpcException.class, e.getCause());
                    assertEquals(ErrorCode.CLOSED.code(), re.code(), re.toString());
                }
            }
            assertTrue(meta.route("d").isCompletedExceptionally(), "a call after close fails at once");
        }
    }

    @Test
    void aWriteAnsweredWithinTheCloseGraceGetsItsOffsets() throws Exception {
        CompletableFuture<ProduceResponse> answer = new CompletableFuture<>();
        AtomicInteger produces = new AtomicInteger();
        try (ScriptedServer server = ScriptedServer.start(
                ScriptedServer.oneOpenSegment(),
                RpcHandler.of(NodeMethods.PRODUCE, ProduceRequest.parser(), r -> {
                    produces.incrementAndGet();
                    return answer;
                }))) {
            SegmentStorageAdapter adapter = server.adapter(60_000, 10_000);
            CompletableFuture<Long> write = adapter.write("s", RECORD);
            Await.until("the write to reach the leader", 10_000, () -> produces.get() == 1);
            CompletableFuture<Void> closing = CompletableFuture.runAsync(adapter::close);
            Await.until("close() to begin", 10_000, () -> closing(adapter));
            answer.complete(ProduceResponse.newBuilder().setBaseOffset(41).setLastOffset(41).build());
            assertEquals(41L, write.get(10, TimeUnit.SECONDS), "answered within the grace: the real outcome");
            closing.get(10, TimeUnit.SECONDS);
            assertEquals(1, produces.get(), "sent once");
        }
    }

    @Test
    void operationsStillUnansweredAfterTheGraceFailWithTheirClosingError() throws Exception {
        AtomicInteger asked = new AtomicInteger();
        try (ScriptedServer server = ScriptedServer.start(
                ScriptedServer.oneOpenSegment(),
                RpcHandler.of(NodeMethods.PRODUCE, ProduceRequest.parser(), r -> {
                    asked.incrementAndGet();
                    return new CompletableFuture<>(); // a stalled node: never answers
                }),
                RpcHandler.of(NodeMethods.FETCH, FetchRequest.parser(), r -> {
                    asked.incrementAndGet();
                    return new CompletableFuture<>();
                }))) {
            SegmentStorageAdapter adapter = server.adapter(60_000, 1_000); // a grace of 1 s
            CompletableFuture<Long> write = adapter.write("s", RECORD);
            CompletableFuture<?> read = adapter.readByOffset("s", 0, 10);
            Await.until("both to reach the node", 10_000, () -> asked.get() >= 2);
            adapter.close();
            StorageException e = failure("write", write);
            assertEquals(ErrorCode.OUTCOME_UNKNOWN, e.code(), "the write went out and may have been stored: " + e);
            assertEquals(ErrorCode.CLOSED, failure("readByOffset", read).code());
        }
    }
}
