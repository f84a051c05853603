package dev.segstore.client;

import dev.segstore.adapter.ErrorCode;
import dev.segstore.adapter.NewRecord;
import dev.segstore.adapter.StorageException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link WriteCoalescer} against a scripted batch sender: batches it was asked to send are held until the test
 * answers them, so what goes out together, and what each caller gets back, is exact.
 */
@Timeout(30)
class WriteCoalescerTest {
    /** Batches sent, each with the future the test completes. */
    private record Sent(List<NewRecord> records, CompletableFuture<List<Long>> answer) {
        List<String> payloads() {
            return records.stream().map(r -> new String(r.payload(), StandardCharsets.UTF_8)).toList();
        }

        /** Answers with consecutive offsets from {@code base}. */
        void stored(long base) {
            List<Long> offsets = new ArrayList<>();
            for (int i = 0; i < records.size(); i++) {
                offsets.add(base + i);
            }
            answer.complete(offsets);
        }
    }

    private final List<Sent> sent = new CopyOnWriteArrayList<>();

    private WriteCoalescer coalescer(int maxInFlight, int maxRecords, long maxBytes) {
        return new WriteCoalescer(new SegmentStorageAdapter.WriteCoalescing(maxInFlight, maxRecords, maxBytes), records -> {
            Sent s = new Sent(records, new CompletableFuture<>());
            sent.add(s);
            return s.answer();
        });
    }

    private static NewRecord record(String payload) {
        return NewRecord.of(1, payload.getBytes(StandardCharsets.UTF_8));
    }

    private static long await(CompletableFuture<Long> f) throws Exception {
        return f.get(10, TimeUnit.SECONDS);
    }

    @Test
    void aWriteGoesOutAtOnceWhileBatchesAreFreeAndTheRestGoTogetherInOrderEachWithItsOwnOffset() throws Exception {
        WriteCoalescer c = coalescer(2, 1_000, 1 << 20);
        CompletableFuture<Long> a = c.write(record("a"));
        CompletableFuture<Long> b = c.write(record("b"));
        assertEquals(List.of(List.of("a"), List.of("b")), sent.stream().map(Sent::payloads).toList(), "no linger: two free slots, two requests");
        List<CompletableFuture<Long>> queued = new ArrayList<>();
        for (String p : List.of("c", "d", "e")) {
            queued.add(c.write(record(p)));
        }
        assertEquals(2, sent.size(), "both slots busy: c, d and e wait");
        sent.get(0).stored(10);
        assertEquals(10, await(a));
        assertEquals(List.of("c", "d", "e"), sent.get(2).payloads(), "what waited goes out as one batch, in order");
        sent.get(1).stored(11);
        sent.get(2).stored(12);
        assertEquals(11, await(b));
        assertEquals(List.of(12L, 13L, 14L), List.of(await(queued.get(0)), await(queued.get(1)), await(queued.get(2))));
        assertEquals(0, c.inFlight(), "nothing out once everything is answered");
    }

    @Test
    void aBatchIsCutAtItsRecordAndByteLimitsButTakesAtLeastOneRecord() throws Exception {
        WriteCoalescer c = coalescer(1, 2, 5);
        c.write(record("first"));
        c.write(record("x"));
        c.write(record("y"));
        c.write(record("z"));
        c.write(record("toolarge"));
        sent.get(0).stored(0);
        assertEquals(List.of("x", "y"), sent.get(1).payloads(), "two records at most");
        sent.get(1).stored(1);
        assertEquals(List.of("z"), sent.get(2).payloads(), "z and toolarge would pass 5 bytes");
        sent.get(2).stored(3);
        assertEquals(List.of("toolarge"), sent.get(3).payloads(), "alone, though larger than the limit");
    }

    @Test
    void aBatchsErrorIsEveryCallersAndRecordTooLargeIsTriedRecordByRecord() throws Exception {
        WriteCoalescer c = coalescer(1, 1_000, 1 << 20);
        CompletableFuture<Long> first = c.write(record("first"));
        CompletableFuture<Long> x = c.write(record("x"));
        CompletableFuture<Long> y = c.write(record("y"));
        sent.get(0).answer().completeExceptionally(new StorageException(ErrorCode.OUTCOME_UNKNOWN, "answer lost"));
        ExecutionException e = assertThrows(ExecutionException.class, () -> await(first));
        assertEquals(ErrorCode.OUTCOME_UNKNOWN, ((StorageException) e.getCause()).code());
        assertEquals(List.of("x", "y"), sent.get(1).payloads());
        sent.get(1).answer().completeExceptionally(new StorageException(ErrorCode.RECORD_TOO_LARGE, "batch refused"));
        assertFalse(x.isDone() || y.isDone(), "not answered from a refusal that may belong to one of them");
        assertEquals(List.of(List.of("x"), List.of("y")), List.of(sent.get(2).payloads(), sent.get(3).payloads()), "each alone");
        sent.get(2).answer().completeExceptionally(new StorageException(ErrorCode.RECORD_TOO_LARGE, "x is too large"));
        sent.get(3).stored(7);
        ExecutionException tooLarge = assertThrows(ExecutionException.class, () -> await(x));
        assertEquals(ErrorCode.RECORD_TOO_LARGE, ((StorageException) tooLarge.getCause()).code());
        assertEquals(7, await(y), "only the record at fault fails");
    }

    @Test
    void aSenderThatThrowsFailsItsBatchAndTheNextOneStillGoes() throws Exception {
        boolean[] thrown = {false};
        WriteCoalescer c = new WriteCoalescer(new SegmentStorageAdapter.WriteCoalescing(1, 1_000, 1 << 20), records -> {
            if (!thrown[0]) {
                thrown[0] = true;
                throw new StorageException(ErrorCode.CLOSED, "closed");
            }
            return CompletableFuture.completedFuture(List.of(5L));
        });
        ExecutionException e = assertThrows(ExecutionException.class, () -> await(c.write(record("a"))));
        assertEquals(ErrorCode.CLOSED, ((StorageException) e.getCause()).code());
        assertEquals(5, await(c.write(record("b"))));
        assertTrue(c.inFlight() == 0);
    }
}
