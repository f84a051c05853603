package dev.segstore.client;

import dev.segstore.adapter.NewRecord;
import dev.segstore.adapter.StorageException;
import dev.segstore.protocol.MetaMethods;
import dev.segstore.protocol.NodeMethods;
import dev.segstore.protocol.meta.DescribeClusterResponse;
import dev.segstore.protocol.meta.DurabilityMode;
import dev.segstore.protocol.meta.Empty;
import dev.segstore.protocol.meta.GetRouteRequest;
import dev.segstore.protocol.meta.Segment;
import dev.segstore.protocol.meta.SegmentStatus;
import dev.segstore.protocol.meta.Shard;
import dev.segstore.protocol.meta.ShardRoute;
import dev.segstore.protocol.meta.StorageNode;
import dev.segstore.protocol.node.ProduceRequest;
import dev.segstore.protocol.node.ProduceResponse;
import dev.segstore.protocol.rpc.RpcHandler;
import dev.segstore.protocol.rpc.RpcServer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The retry of a write whose answer was lost while its segment got sealed, against one scripted server that
 * plays both the meta-service and the storage node. The first attempt is appended (offset 0 of segment 0) but
 * never answered; meanwhile segment 0 is sealed at 1 and segment 1 opens. The retry must find the batch in
 * segment 0, not write it a second time to segment 1 (producer state is per segment): chaos found exactly that.
 */
@Timeout(60)
class RetryAcrossSegmentsTest {

    private static Segment segment(long sequence, long start, long end) {
        return Segment.newBuilder().setShard("s").setShardId(7).setSequence(sequence).setStartOffset(start).setEndOffset(end)
                .setStatus(end < 0 ? SegmentStatus.OPEN : SegmentStatus.SEALED).addReplicas(1).setLeader(1).addIsr(1).build();
    }

    private static ShardRoute route(Segment... segments) {
        return ShardRoute.newBuilder().setShard(Shard.newBuilder().setName("s").setShardId(7)).addAllSegments(List.of(segments)).build();
    }

    private final AtomicReference<ShardRoute> route = new AtomicReference<>(route(segment(0, 0, -1)));
    private final List<ProduceRequest> produced = new CopyOnWriteArrayList<>();

    /**
     * Runs {@code test} against a server answering route and cluster look-ups from {@link #route} and produce
     * calls with {@code produce} (each recorded in {@link #produced}), through an adapter with 300 ms calls.
     */
    private void withServer(java.util.function.Function<ProduceRequest, CompletableFuture<ProduceResponse>> produce,
                            ThrowingConsumer<SegmentStorageAdapter> test) throws Exception {
        InetSocketAddress[] self = new InetSocketAddress[1];
        RpcServer server = new RpcServer(1, 1 << 20)
                .register(RpcHandler.of(MetaMethods.GET_ROUTE, GetRouteRequest.parser(), r -> CompletableFuture.completedFuture(route.get())))
                .register(RpcHandler.of(MetaMethods.DESCRIBE_CLUSTER, Empty.parser(), r -> CompletableFuture.completedFuture(
                        DescribeClusterResponse.newBuilder().addNodes(StorageNode.newBuilder().setNodeId(1)
                                .setHost("127.0.0.1").setPort(self[0].getPort())).build())))
                .register(RpcHandler.of(NodeMethods.PRODUCE, ProduceRequest.parser(), r -> {
                    produced.add(r);
                    return produce.apply(r);
                }));
        self[0] = server.start("127.0.0.1", 0);
        try (SegmentStorageAdapter adapter = new SegmentStorageAdapter(new SegmentStorageAdapter.Settings(
                List.of("127.0.0.1:" + self[0].getPort()), 20_000, 300, DurabilityMode.FSYNC))) {
            test.accept(adapter);
        } finally {
            server.close();
        }
    }

    @FunctionalInterface
    private interface ThrowingConsumer<T> {
        void accept(T t) throws Exception;
    }

    private static long writeOnce(SegmentStorageAdapter adapter) throws Exception {
        return adapter.write("s", NewRecord.of(1, "once".getBytes(StandardCharsets.UTF_8))).get(30, TimeUnit.SECONDS);
    }

    @Test
    void aRetryAsksTheSegmentSealedSinceAndGetsTheOriginalOffset() throws Exception {
        withServer(r -> {
            if (produced.size() == 1) {
                // Appended at offset 0, but the answer is lost; the segment fills and is sealed.
                route.set(route(segment(0, 0, 1), segment(1, 1, -1)));
                return new CompletableFuture<>();
            }
            if (r.getSegment().getSequence() == 0 && r.getOnlyIfDuplicate()) {
                return CompletableFuture.completedFuture(ProduceResponse.newBuilder().setBaseOffset(0).setLastOffset(0).build());
            }
            // Written anew: the next offset, in segment 1.
            return CompletableFuture.completedFuture(ProduceResponse.newBuilder().setBaseOffset(1).setLastOffset(1).build());
        }, adapter -> {
            assertEquals(0, writeOnce(adapter), "the original offset, from the sealed segment");
            assertTrue(produced.stream().noneMatch(p -> p.getSegment().getSequence() == 1), "never written to segment 1: " + produced);
            ProduceRequest probe = produced.get(produced.size() - 1);
            assertTrue(probe.getOnlyIfDuplicate() && probe.getSegment().getSequence() == 0, "the last call asked segment 0");
            assertEquals(produced.get(0).getBaseSequence(), probe.getBaseSequence(), "with the first attempt's sequence");
            assertEquals(produced.get(0).getProducerId(), probe.getProducerId());
            assertTrue(probe.getMayBeDuplicate(), "the probe follows an attempt whose outcome is unknown");
        });
    }

    @Test
    void aBatchNotInTheSealedSegmentIsWrittenToTheOpenOneUnderANewSequence() throws Exception {
        withServer(r -> {
            if (produced.size() == 1) {
                // Lost before it was appended; the segment is sealed without it.
                route.set(route(segment(0, 0, 0), segment(1, 0, -1)));
                return new CompletableFuture<>();
            }
            if (r.getOnlyIfDuplicate()) {
                return CompletableFuture.completedFuture(ProduceResponse.newBuilder().setNotFound(true).build());
            }
            return CompletableFuture.completedFuture(ProduceResponse.newBuilder().setBaseOffset(0).setLastOffset(0).build());
        }, adapter -> {
            assertEquals(0, writeOnce(adapter));
            ProduceRequest last = produced.get(produced.size() - 1);
            assertEquals(1, last.getSegment().getSequence(), "written to the open segment");
            assertTrue(!last.getOnlyIfDuplicate());
            assertTrue(produced.stream().anyMatch(p -> p.getOnlyIfDuplicate() && p.getSegment().getSequence() == 0), "after asking segment 0");
            assertTrue(last.getBaseSequence() != produced.get(0).getBaseSequence(), "under a new sequence: " + produced);
        });
    }

    @Test
    void aRetryAfterAnUnknownOutcomeIsFlaggedMayBeDuplicate() throws Exception {
        withServer(r -> {
            if (produced.size() == 1) {
                return new CompletableFuture<>(); // appended, or not: the answer is lost
            }
            return CompletableFuture.completedFuture(ProduceResponse.newBuilder().setBaseOffset(0).setLastOffset(0).build());
        }, adapter -> {
            assertEquals(0, writeOnce(adapter));
            assertEquals(2, produced.size(), "one retry: " + produced);
            assertTrue(!produced.get(0).getMayBeDuplicate(), "a first attempt is not flagged");
            assertTrue(produced.get(1).getMayBeDuplicate(), "the retry after the lost answer is flagged: " + produced.get(1));
            assertEquals(produced.get(0).getBaseSequence(), produced.get(1).getBaseSequence(), "with the same sequence");
        });
    }

    @Test
    void aRetryWhoseEarlierSegmentRetentionDroppedIsNotWrittenAgain() throws Exception {
        withServer(r -> {
            if (produced.size() == 1) {
                // Appended at offset 0, but the answer is lost; segment 0 is sealed, and retention drops it.
                route.set(route(segment(1, 1, -1)));
                return new CompletableFuture<>();
            }
            // Written anew: the next offset, in segment 1.
            return CompletableFuture.completedFuture(ProduceResponse.newBuilder().setBaseOffset(1).setLastOffset(1).build());
        }, adapter -> {
            CompletableFuture<Long> write = adapter.write("s", NewRecord.of(1, "once".getBytes(StandardCharsets.UTF_8)));
            Throwable failure = write.handle((v, e) -> e).get(30, TimeUnit.SECONDS);
            assertTrue(produced.stream().noneMatch(p -> p.getSegment().getSequence() == 1),
                    "never written to segment 1 (the write answered " + (failure == null ? write.join() : failure) + "): " + produced);
            assertTrue(failure instanceof java.util.concurrent.CompletionException && failure.getCause() instanceof StorageException,
                    String.valueOf(failure));
            StorageException e = (StorageException) failure.getCause();
            assertEquals(dev.segstore.adapter.ErrorCode.OUTCOME_UNKNOWN, e.code(), e.getMessage());
            assertTrue(!e.retriable(), "not retriable: " + e);
            assertEquals(1, produced.size(), "the first attempt only: the retry found segment 0 gone and sent nothing: " + produced);
        });
    }
}
