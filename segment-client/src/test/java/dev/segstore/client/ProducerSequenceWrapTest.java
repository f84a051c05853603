package dev.segstore.client;

import dev.segstore.adapter.NewRecord;
import dev.segstore.protocol.NodeMethods;
import dev.segstore.protocol.node.ProduceRequest;
import dev.segstore.protocol.node.ProduceResponse;
import dev.segstore.protocol.rpc.RpcHandler;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.IntPredicate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Producer sequences are int32 on the wire and on disk: a shard's sequences must never pass
 * {@link Integer#MAX_VALUE} (the node would refuse a negative one, and the client took a negative one for "not
 * taken yet" and gave a retry a new sequence: a duplicate). The adapter starts each shard's sequences just below
 * the wrap here. A scripted leader keeps batches by (producer id, base sequence) and answers a retry with the
 * original offsets, as ProducerStateTable does.
 */
@Timeout(60)
class ProducerSequenceWrapTest {
    private final List<ProduceRequest> produced = new CopyOnWriteArrayList<>();
    /** (producer id, base sequence) to base offset, of the batches stored. */
    private final Map<List<Long>, Long> stored = new HashMap<>();
    private long logEnd;

    /** Stores the batch unless it is a retry; the answer of the request numbered {@code lost(i)} (0-based) is lost. */
    private CompletableFuture<ProduceResponse> produce(ProduceRequest r, IntPredicate lost) {
        int index = produced.size();
        produced.add(r);
        int count = dev.segstore.log.format.BatchView.at(r.getBatch().asReadOnlyByteBuffer()).recordCount();
        long base;
        synchronized (stored) {
            base = stored.computeIfAbsent(List.of(r.getProducerId(), (long) r.getBaseSequence()), k -> {
                long b = logEnd;
                logEnd += count;
                return b;
            });
        }
        if (lost.test(index)) {
            return new CompletableFuture<>();
        }
        return CompletableFuture.completedFuture(ProduceResponse.newBuilder().setBaseOffset(base).setLastOffset(base + count - 1).build());
    }

    private ScriptedServer server(IntPredicate lost) throws InterruptedException {
        return ScriptedServer.start(
                ScriptedServer.oneOpenSegment(),
                RpcHandler.of(NodeMethods.PRODUCE, ProduceRequest.parser(), r -> produce(r, lost)));
    }

    private static List<NewRecord> batch(int n) {
        List<NewRecord> b = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            b.add(NewRecord.of(1, ("r" + i).getBytes(StandardCharsets.UTF_8)));
        }
        return b;
    }

    private static void assertInRange(ProduceRequest r) {
        int count = dev.segstore.log.format.BatchView.at(r.getBatch().asReadOnlyByteBuffer()).recordCount();
        assertTrue(r.getProducerId() >= 0, "an idempotent producer id: " + r.getProducerId());
        assertTrue(r.getBaseSequence() >= 0 && (long) r.getBaseSequence() + count - 1 <= Integer.MAX_VALUE,
                "sequences " + r.getBaseSequence() + " + " + count + " stay within int32 without wrapping");
    }

    @Test
    void aBatchThatWouldPassTheLargestSequenceGoesOutUnderAFreshProducerIdFromZero() throws Exception {
        try (ScriptedServer server = server(i -> false);
             SegmentStorageAdapter adapter = server.adapter(10_000, 2_000, Integer.MAX_VALUE - 14)) {
            for (int i = 0; i < 4; i++) {
                assertEquals(List.of(i * 10L, i * 10L + 1), adapter.batchWrite("s", batch(10)).get(30, TimeUnit.SECONDS).subList(0, 2),
                        "dense offsets, batch " + i);
            }
        }
        produced.forEach(ProducerSequenceWrapTest::assertInRange);
        assertEquals(Integer.MAX_VALUE - 14, produced.get(0).getBaseSequence());
        assertNotEquals(produced.get(0).getProducerId(), produced.get(1).getProducerId(), "the second batch rolled the producer id");
        assertEquals(List.of(0, 10, 20), produced.subList(1, 4).stream().map(ProduceRequest::getBaseSequence).toList());
        assertTrue(produced.subList(1, 4).stream().allMatch(r -> r.getProducerId() == produced.get(1).getProducerId()),
                "the new id stays: " + produced);
        assertEquals(40, logEnd, "each batch stored once");
    }

    @Test
    void aRetryOfABatchSentBeforeTheRollKeepsItsProducerIdAndSequence() throws Exception {
        try (ScriptedServer server = server(i -> i == 0); // the first batch's first answer is lost
             SegmentStorageAdapter adapter = server.adapter(20_000, 500, Integer.MAX_VALUE - 14)) {
            CompletableFuture<List<Long>> first = adapter.batchWrite("s", batch(10));
            Await.until("the first attempt to reach the leader", 10_000, () -> !produced.isEmpty());
            // Sent while the first one waits for its answer: its sequences would pass the largest, it rolls the id.
            assertEquals(List.of(10L), adapter.batchWrite("s", batch(10)).get(30, TimeUnit.SECONDS).subList(0, 1));
            assertEquals(0L, first.get(30, TimeUnit.SECONDS).get(0), "the retry is answered with the original offsets");
        }
        produced.forEach(ProducerSequenceWrapTest::assertInRange);
        ProduceRequest original = produced.get(0);
        ProduceRequest rolled = produced.get(1);
        ProduceRequest retry = produced.get(2);
        assertNotEquals(original.getProducerId(), rolled.getProducerId(), "the second batch went out under a fresh id");
        assertEquals(0, rolled.getBaseSequence());
        assertEquals(original.getProducerId(), retry.getProducerId(), "the retry keeps the id it was first sent under");
        assertEquals(original.getBaseSequence(), retry.getBaseSequence(), "and its sequence");
        assertEquals(20, logEnd, "each batch stored once");
    }

    @Test
    void aRetryOfABatchSentAfterTheWrapKeepsItsSequenceAndIsNotStoredTwice() throws Exception {
        // The first batch's sequences would pass the largest: before, it took them anyway and the second batch's
        // were negative, which the client took for "no sequence yet": its retry went out as a new batch.
        try (ScriptedServer server = server(i -> i == 1); // the second batch's first answer is lost
             SegmentStorageAdapter adapter = server.adapter(20_000, 500, Integer.MAX_VALUE - 4)) {
            assertEquals(0L, adapter.batchWrite("s", batch(10)).get(30, TimeUnit.SECONDS).get(0));
            assertEquals(10L, adapter.batchWrite("s", batch(10)).get(30, TimeUnit.SECONDS).get(0),
                    "the second batch's offset (20 if its retry was stored again)");
        }
        produced.forEach(ProducerSequenceWrapTest::assertInRange);
        assertEquals(3, produced.size(), "one retry: " + produced);
        assertEquals(produced.get(1).getProducerId(), produced.get(2).getProducerId());
        assertEquals(produced.get(1).getBaseSequence(), produced.get(2).getBaseSequence(), "the retry keeps its sequence");
        assertEquals(20, logEnd, "each batch stored once");
    }
}
