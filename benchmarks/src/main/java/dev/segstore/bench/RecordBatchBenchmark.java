package dev.segstore.bench;

import dev.segstore.log.AppendRecord;
import dev.segstore.log.LogRecord;
import dev.segstore.log.format.BatchView;
import dev.segstore.log.format.RecordBatch;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

import java.nio.ByteBuffer;
import java.util.Collections;
import java.util.List;
import java.util.Random;

/**
 * The record batch format ({@link RecordBatch}) on a 16 KiB producer batch: 16 records of 1 KiB or 163 of 100 B,
 * payload only (no key, tags or headers). A score (ops/s) is batches per second; records/s is the score times
 * the records per batch. Each step is one the write or read path takes once per batch:
 * <ul>
 *   <li>{@code encode}: the producer's encode ({@code BatchWriter.write} in segment-client), which is also the
 *       leader's in {@code SegmentLog.appendAsLeader};</li>
 *   <li>{@code validateAndRestamp}: the leader's check of a batch its writer encoded and its stamp of offsets,
 *       epoch and producer fields, with the new checksum ({@code SegmentLog.appendEncodedAsLeader});</li>
 *   <li>{@code decode}: a consumer's checksum check and decode of fetched batches ({@code ConsumerFetch});</li>
 *   <li>{@code decodeKeysAndTags}: the same check and decode without headers and payload, as each replica's key and
 *       tag index reads back what it stored ({@code ReplicaIndex.catchUp}).</li>
 * </ul>
 */
@State(Scope.Thread)
public class RecordBatchBenchmark {
    @Param({"16x1024", "163x100"})
    String shape;

    private List<AppendRecord> records;
    private ByteBuffer encoded;

    @Setup
    public void encodeOnce() {
        String[] countAndBytes = shape.split("x");
        byte[] payload = new byte[Integer.parseInt(countAndBytes[1])];
        new Random(1).nextBytes(payload);
        records = Collections.nCopies(Integer.parseInt(countAndBytes[0]), AppendRecord.of(System.currentTimeMillis(), payload));
        encoded = RecordBatch.encode(0, 0, RecordBatch.NO_PRODUCER_ID, RecordBatch.NO_SEQUENCE, records);
    }

    @Benchmark
    public ByteBuffer encode() {
        return RecordBatch.encode(0, 0, RecordBatch.NO_PRODUCER_ID, RecordBatch.NO_SEQUENCE, records);
    }

    @Benchmark
    public ByteBuffer validateAndRestamp() {
        RecordBatch.validate(encoded);
        RecordBatch.restamp(encoded, 1_000_000, 3, 42, 0);
        return encoded;
    }

    @Benchmark
    public List<LogRecord> decode() {
        return RecordBatch.decodeBatches(encoded, 0, Long.MAX_VALUE, offset -> false, Integer.MAX_VALUE);
    }

    /** The key and tag index's read ({@code SegmentLog.readKeysAndTags}): the same checks, no payload copied. */
    @Benchmark
    public List<LogRecord> decodeKeysAndTags() {
        BatchView v = BatchView.at(encoded);
        v.verify();
        return RecordBatch.decode(v, 0, Long.MAX_VALUE, Integer.MAX_VALUE, false);
    }
}
