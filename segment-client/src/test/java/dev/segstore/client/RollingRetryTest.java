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
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
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

    /**
     * Many writes in flight when their segment rolls retry through one probe: the others wait until the probe's
     * retry is taken, instead of each retrying every 5-10 ms on its own. With 64 calls in flight the old pacing drew
     * 64 refused requests every 5-10 ms for as long as the roll lasted, and on the shared cores that storm slowed the
     * roll itself (docs/benchmarks.md, "Rolls without a stall").
     */
    @Test
    void writesInFlightWhenARollComesRetryThroughOneProbe() throws Exception {
        int writers = 64;
        long rollMs = 80;
        AtomicLong rollEndsAt = new AtomicLong();
        AtomicInteger refused = new AtomicInteger();
        AtomicInteger taken = new AtomicInteger();
        try (ScriptedServer server = ScriptedServer.start(ScriptedServer.routes(() -> ScriptedServer.route(ScriptedServer.segment(0, 0, -1))),
                RpcHandler.of(NodeMethods.PRODUCE, ProduceRequest.parser(), r -> {
                    long now = System.nanoTime();
                    rollEndsAt.compareAndSet(0, now + TimeUnit.MILLISECONDS.toNanos(rollMs)); // the roll starts at the first write
                    if (now < rollEndsAt.get()) {
                        refused.incrementAndGet();
                        return CompletableFuture.failedFuture(new RpcException(6, "segment 0 is full and being sealed", "", 0, true, true));
                    }
                    int n = taken.getAndIncrement();
                    return CompletableFuture.completedFuture(ProduceResponse.newBuilder().setBaseOffset(n).setLastOffset(n).build());
                }));
             SegmentStorageAdapter adapter = server.adapter(5_000, 1_000)) {
            List<CompletableFuture<List<Long>>> writes = new ArrayList<>();
            for (int i = 0; i < writers; i++) { // one request each, as a broker's batches (single writes are coalesced)
                writes.add(adapter.batchWrite("s", List.of(NewRecord.of(1, ("x" + i).getBytes(StandardCharsets.UTF_8)))));
            }
            CompletableFuture.allOf(writes.toArray(CompletableFuture[]::new)).get(30, TimeUnit.SECONDS);
            assertEquals(writers, taken.get(), "every write taken once");
            // Each write's first attempt, plus the probe's retries (one every 5-10 ms during the roll): each write
            // retrying on its own would be refused about 8-16 times.
            long bound = writers + 2 * rollMs / ShardRetries.ROLLING_RETRY_PAUSE_MS;
            assertTrue(refused.get() <= bound, refused.get() + " refused requests for " + writers + " writes over a roll of "
                    + rollMs + " ms; at most " + bound + " expected");
        }
    }

    @Test
    void onlyRefusalsFromARollAreRetriedSoonAndOnlyForABoundedNumber() {
        for (int i = 0; i < 100; i++) {
            long rolling = ShardRetries.retryPauseMs(false, true, 0, i % ShardRetries.MAX_ROLLING_RETRIES);
            assertTrue(rolling >= ShardRetries.ROLLING_RETRY_PAUSE_MS && rolling <= 2 * ShardRetries.ROLLING_RETRY_PAUSE_MS,
                    "a refusal from a roll: " + rolling + " ms");
        }
        assertTrue(ShardRetries.retryPauseMs(false, false, 0, 3) >= 20, "another refusal: the growing pause");
        assertTrue(ShardRetries.retryPauseMs(false, false, 3, 0) >= 160, "grows with the retries that were not for a roll");
        assertTrue(ShardRetries.retryPauseMs(false, true, 5, ShardRetries.MAX_ROLLING_RETRIES) >= 500,
                "after as many rolling retries as allowed, a rolling refusal waits as the others do");
        assertEquals(0, ShardRetries.retryPauseMs(true, false, 0, 0), "a shard found deleted: read the route again at once");
    }
}
