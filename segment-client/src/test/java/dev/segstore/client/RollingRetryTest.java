package dev.segstore.client;

import dev.segstore.adapter.NewRecord;
import dev.segstore.protocol.NodeMethods;
import dev.segstore.protocol.node.ProduceRequest;
import dev.segstore.protocol.node.ProduceResponse;
import dev.segstore.protocol.rpc.RpcException;
import dev.segstore.protocol.rpc.RpcHandler;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A write refused because its segment is rolling (rpc.proto, {@code Error.rolling}: the segment is full and being
 * sealed, or the next segment's node has not learnt of it yet) is retried after a short pause, not the growing one:
 * the roll completes within milliseconds, and a growing pause (20, 40, 80, ... ms) would stall writes after it.
 */
@Timeout(60)
class RollingRetryTest {
    /** Refusals before the roll completes: with growing pauses they alone would take 20+40+80+160+320+500 ms. */
    private static final int REFUSALS = 6;

    @Test
    void aWriteRefusedByARollIsRetriedWithinTheRequestTimeoutOfOneSecond() throws Exception {
        AtomicReference<dev.segstore.protocol.meta.ShardRoute> route = new AtomicReference<>(
                ScriptedServer.route(ScriptedServer.segment(0, 0, -1)));
        List<ProduceRequest> produced = new CopyOnWriteArrayList<>();
        try (ScriptedServer server = ScriptedServer.start(ScriptedServer.routes(route::get),
                RpcHandler.of(NodeMethods.PRODUCE, ProduceRequest.parser(), r -> {
                    produced.add(r);
                    if (produced.size() < REFUSALS) {
                        return CompletableFuture.failedFuture(new RpcException(6, "segment 0 is full and being sealed", "", 0, true, true));
                    }
                    if (produced.size() == REFUSALS) {
                        // Sealed now, and the next segment placed; its node has not learnt of it yet.
                        route.set(ScriptedServer.route(ScriptedServer.segment(0, 0, 0), ScriptedServer.segment(1, 0, -1)));
                        return CompletableFuture.failedFuture(new RpcException(6, "node 1 hosts no replica of segment 7/1", "", -1, true, true));
                    }
                    return CompletableFuture.completedFuture(ProduceResponse.newBuilder().setBaseOffset(0).setLastOffset(0).build());
                }));
             SegmentStorageAdapter adapter = server.adapter(1_000, 300)) {
            long offset = adapter.write("s", NewRecord.of(1, "x".getBytes(StandardCharsets.UTF_8))).get(30, TimeUnit.SECONDS);
            assertEquals(0, offset);
            ProduceRequest last = produced.get(produced.size() - 1);
            assertEquals(1, last.getSegment().getSequence(), "written to the next segment");
            assertEquals(REFUSALS + 1, produced.size(), "each refusal retried once: " + produced.size());
            assertTrue(produced.stream().noneMatch(ProduceRequest::getMayBeDuplicate), "every refusal was not_applied");
        }
    }

    /**
     * A leadership hand-over (controlled shutdown): the old leader refuses with the epoch it now knows, the new one
     * refuses until it has learnt that it leads. Each such refusal names a leader epoch and is retried soon; with the
     * growing pause, {@link #REFUSALS} of them took 1,120 ms, past the request timeout of 1 s.
     */
    @Test
    void aWriteRefusedWhileTheLeadershipMovesIsRetriedWithinTheRequestTimeoutOfOneSecond() throws Exception {
        List<ProduceRequest> produced = new CopyOnWriteArrayList<>();
        try (ScriptedServer server = ScriptedServer.start(ScriptedServer.routes(() -> ScriptedServer.route(ScriptedServer.segment(0, 0, -1))),
                RpcHandler.of(NodeMethods.PRODUCE, ProduceRequest.parser(), r -> {
                    produced.add(r);
                    if (produced.size() <= REFUSALS) {
                        int known = produced.size() == 1 ? 1 : 0; // the deposed leader knows epoch 1; the new one not yet
                        return CompletableFuture.failedFuture(new RpcException(6, "node 1 is not the leader", "", known, false, false));
                    }
                    return CompletableFuture.completedFuture(ProduceResponse.newBuilder().setBaseOffset(0).setLastOffset(0).build());
                }));
             SegmentStorageAdapter adapter = server.adapter(1_000, 300)) {
            long offset = adapter.write("s", NewRecord.of(1, "x".getBytes(StandardCharsets.UTF_8))).get(30, TimeUnit.SECONDS);
            assertEquals(0, offset);
            assertEquals(REFUSALS + 1, produced.size(), "each refusal retried once: " + produced.size());
            assertTrue(produced.subList(1, produced.size()).stream().allMatch(ProduceRequest::getMayBeDuplicate),
                    "the outcome of a refused attempt that was not marked not_applied stays unknown: retried as a possible duplicate");
        }
    }

    @Test
    void onlyRefusalsFromARollAreRetriedSoonAndOnlyForABoundedNumber() {
        for (int i = 0; i < 100; i++) {
            long rolling = SegmentStorageAdapter.retryPauseMs(false, true, 0, i % SegmentStorageAdapter.MAX_ROLLING_RETRIES);
            assertTrue(rolling >= SegmentStorageAdapter.ROLLING_RETRY_PAUSE_MS && rolling <= 2 * SegmentStorageAdapter.ROLLING_RETRY_PAUSE_MS,
                    "a refusal from a roll: " + rolling + " ms");
        }
        assertTrue(SegmentStorageAdapter.retryPauseMs(false, false, 0, 3) >= 20, "another refusal: the growing pause");
        assertTrue(SegmentStorageAdapter.retryPauseMs(false, false, 3, 0) >= 160, "grows with the retries that were not for a roll");
        assertTrue(SegmentStorageAdapter.retryPauseMs(false, true, 5, SegmentStorageAdapter.MAX_ROLLING_RETRIES) >= 500,
                "after as many rolling retries as allowed, a rolling refusal waits as the others do");
        assertEquals(0, SegmentStorageAdapter.retryPauseMs(true, false, 0, 0), "a shard found deleted: read the route again at once");
    }
}
