package dev.segstore.client;

import dev.segstore.adapter.NewRecord;
import dev.segstore.adapter.StoredRecord;
import dev.segstore.adapter.ShardConfig;
import dev.segstore.node.server.InJvmCluster;
import dev.segstore.protocol.meta.DurabilityMode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.LongStream;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Producer sequences across the int32 wrap, on a real in-JVM cluster (3 meta nodes, 3 storage nodes): the
 * adapter starts the shard's sequences 45 below {@link Integer#MAX_VALUE} and sends ten batches of ten at once,
 * so the sixth would pass the largest sequence. Every batch must be stored once, at dense offsets. Before, the
 * seventh went out with a negative sequence, which the leader refused (INVALID_ARGUMENT: at or below a forgotten
 * sequence). In package {@code dev.segstore.client} for the adapter's test-only constructor (the sequence seed).
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class ProducerSequenceWrapClusterTest {
    private static final int BATCHES = 10;
    private static final int PER_BATCH = 10;

    @Test
    void batchesAcrossTheSequenceWrapAreStoredOnceAtDenseOffsets() throws Exception {
        try (InJvmCluster cluster = new InJvmCluster();
             SegmentStorageAdapter adapter = new SegmentStorageAdapter(new SegmentStorageAdapter.Settings(cluster.metaAddresses,
                     30_000, 5_000, DurabilityMode.FSYNC), Integer.MAX_VALUE - 45)) {
            adapter.createShard(ShardConfig.of("wrap", SegmentStorageAdapter.STORAGE_TYPE).withReplication(3, 2))
                    .get(60, TimeUnit.SECONDS);
            List<CompletableFuture<List<Long>>> writes = new ArrayList<>();
            for (int b = 0; b < BATCHES; b++) {
                List<NewRecord> batch = new ArrayList<>();
                for (int i = 0; i < PER_BATCH; i++) {
                    batch.add(NewRecord.of(1_000 + b, ("b" + b + "r" + i).getBytes(StandardCharsets.UTF_8)));
                }
                writes.add(adapter.batchWrite("wrap", batch)); // all in flight at once, sequences taken in order
            }
            List<Long> offsets = new ArrayList<>();
            for (int b = 0; b < BATCHES; b++) {
                List<Long> got = writes.get(b).get(60, TimeUnit.SECONDS);
                assertEquals(PER_BATCH, got.size(), "batch " + b);
                offsets.addAll(got);
            }
            int total = BATCHES * PER_BATCH;
            assertEquals(LongStream.range(0, total).boxed().toList(), offsets.stream().sorted().toList(), "unique, dense offsets");
            List<StoredRecord> stored = adapter.readByOffset("wrap", 0, 1_000).get(60, TimeUnit.SECONDS);
            assertEquals(total, stored.size(), "each batch stored once");
            for (StoredRecord r : stored) {
                int b = (int) (r.timestamp() - 1_000);
                long first = writes.get(b).join().get(0);
                assertEquals("b" + b + "r" + (r.offset() - first), new String(r.payload(), StandardCharsets.UTF_8),
                        "offset " + r.offset() + " holds the record its write was answered with");
            }
        }
    }
}
