package dev.segstore.client;

import dev.segstore.adapter.ErrorCode;
import dev.segstore.adapter.StorageException;
import dev.segstore.log.AppendRecord;
import dev.segstore.log.LogRecord;
import dev.segstore.log.format.RecordBatch;
import dev.segstore.protocol.node.FetchResponse;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class ConsumerFetchTest {

    /** Batches of 4 records each from offset 10, as a node sends them: v10 .. v(10 + 4n - 1). */
    private static ByteBuffer batches(int n) {
        ByteBuffer all = ByteBuffer.allocate(n * 512);
        for (int b = 0; b < n; b++) {
            List<AppendRecord> records = new ArrayList<>();
            for (int i = 0; i < 4; i++) {
                records.add(new AppendRecord(null, List.of(), 1_000, List.of(), ("v" + (10 + 4 * b + i)).getBytes(StandardCharsets.UTF_8)));
            }
            all.put(RecordBatch.encode(10 + 4L * b, 1, -1, -1, records));
        }
        return all.flip();
    }

    private static List<String> payloads(ConsumerFetch f) {
        return f.records().stream().map(LogRecord::payload).map(p -> new String(p, StandardCharsets.UTF_8)).toList();
    }

    @Test
    void recordsFromTheOffsetBelowNextOffsetWithoutTheDeletedOnes() {
        FetchResponse r = FetchResponse.newBuilder().setNextOffset(18).setHighWatermark(18).addDeleted(13).addDeleted(15).build();
        ConsumerFetch f = ConsumerFetch.decode(r, batches(2), 12, 100);
        assertEquals(List.of("v12", "v14", "v16", "v17"), payloads(f), "the first batch starts below 12; 13 and 15 are deleted");
        assertEquals(18, f.nextOffset());
        assertEquals(18, f.highWatermark());
    }

    @Test
    void aFullPageReadsOnAfterItsLastRecordAndAnEmptyAnswerIsTheEnd() {
        FetchResponse r = FetchResponse.newBuilder().setNextOffset(22).setHighWatermark(22).addDeleted(11).build();
        ConsumerFetch f = ConsumerFetch.decode(r, batches(3), 10, 3);
        assertEquals(List.of("v10", "v12", "v13"), payloads(f));
        assertEquals(14, f.nextOffset(), "the rest of the batch is read next time");
        ConsumerFetch end = ConsumerFetch.decode(FetchResponse.newBuilder().setNextOffset(22).setHighWatermark(22).build(),
                ByteBuffer.allocate(0), 22, 3);
        assertEquals(List.of(), end.records());
        assertEquals(22, end.nextOffset(), "nothing further: next offset is where the read started");
    }

    @Test
    void aDamagedBatchIsCorruptDataNotRecords() {
        ByteBuffer damaged = batches(2);
        damaged.put(damaged.limit() - 2, (byte) (damaged.get(damaged.limit() - 2) ^ 1));
        StorageException e = assertThrows(StorageException.class, () -> ConsumerFetch.decode(
                FetchResponse.newBuilder().setNextOffset(18).setHighWatermark(18).build(), damaged, 10, 100));
        assertEquals(ErrorCode.CORRUPT_DATA, e.code());
    }
}
