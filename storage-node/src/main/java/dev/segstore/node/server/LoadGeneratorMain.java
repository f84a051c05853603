package dev.segstore.node.server;

import dev.segstore.protocol.NodeMethods;
import com.google.protobuf.ByteString;
import dev.segstore.client.MetaClient;
import dev.segstore.protocol.node.FetchRequest;
import dev.segstore.protocol.node.FetchResponse;
import dev.segstore.protocol.node.ProduceRequest;
import dev.segstore.protocol.node.ProduceResponse;
import dev.segstore.protocol.node.Record;
import dev.segstore.protocol.rpc.RpcClient;
import org.HdrHistogram.Histogram;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.util.List;
import java.util.Random;
import java.util.concurrent.Callable;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Load generator for a running cluster: produces to a shard's leader with a window of requests in flight
 * (each acknowledged by the ISR, per the shard's durability), then consumes everything back. Prints
 * records/s, MB/s and per-request latency percentiles (HdrHistogram). Used by scripts/bench-cluster.sh.
 */
@Command(name = "segstore-load", mixinStandardHelpOptions = true, description = "Produces and consumes against a cluster.")
public final class LoadGeneratorMain implements Callable<Integer> {
    @Option(names = "--meta", required = true, split = ",")
    List<String> meta;
    @Option(names = "--shard", required = true)
    String shard;
    @Option(names = "--seconds", defaultValue = "10")
    int seconds;
    @Option(names = "--record-bytes", defaultValue = "1024")
    int recordBytes;
    @Option(names = "--records-per-request", defaultValue = "16")
    int perRequest;
    @Option(names = "--in-flight", defaultValue = "32")
    int inFlight;

    @Override
    public Integer call() throws Exception {
        DataClientMain helper = new DataClientMain();
        helper.meta = meta;
        try (MetaClient c = new MetaClient(meta, 3_000, 20_000); RpcClient rpc = new RpcClient(2, 64 << 20)) {
            DataClientMain.Target t = helper.target(c, shard);
            byte[] payload = new byte[recordBytes];
            new Random(1).nextBytes(payload);
            ProduceRequest.Builder b = ProduceRequest.newBuilder().setSegment(t.ref()).setProducerId(-1).setBaseSequence(-1);
            for (int i = 0; i < perRequest; i++) {
                b.addRecords(Record.newBuilder().setTimestamp(System.currentTimeMillis()).setPayload(ByteString.copyFrom(payload)));
            }
            ProduceRequest request = b.build();
            Histogram h = new Histogram(TimeUnit.SECONDS.toNanos(60), 3);
            Semaphore window = new Semaphore(inFlight);
            AtomicLong acked = new AtomicLong();
            AtomicLong failed = new AtomicLong();
            long warmupEnd = System.nanoTime() + TimeUnit.SECONDS.toNanos(1);
            long end = warmupEnd + TimeUnit.SECONDS.toNanos(seconds);
            long now;
            while ((now = System.nanoTime()) < end) {
                window.acquire();
                long start = now;
                rpc.call(t.leader(), NodeMethods.PRODUCE, request, ProduceResponse.parser(), 30_000).whenComplete((r, e) -> {
                    long done = System.nanoTime();
                    if (e != null) {
                        failed.incrementAndGet();
                    } else if (start >= warmupEnd) {
                        synchronized (h) {
                            h.recordValue(done - start);
                        }
                        acked.addAndGet(perRequest);
                    }
                    window.release();
                });
            }
            window.acquire(inFlight);
            double rps = acked.get() / (double) seconds;
            System.out.printf("produce  %,12.0f records/s %8.1f MB/s   p50 %7.2f ms  p99 %7.2f ms  p99.9 %7.2f ms  max %7.2f ms  failed %d%n",
                    rps, rps * recordBytes / 1e6, h.getValueAtPercentile(50) / 1e6, h.getValueAtPercentile(99) / 1e6,
                    h.getValueAtPercentile(99.9) / 1e6, h.getMaxValue() / 1e6, failed.get());
            long offset = t.segment().getStartOffset();
            long records = 0;
            long cStart = System.nanoTime();
            while (true) {
                FetchResponse r = rpc.call(t.leader(), NodeMethods.FETCH, FetchRequest.newBuilder().setSegment(t.ref()).setReplicaId(-1)
                        .setOffset(offset).setMaxRecords(2_000).setMaxBytes(8 << 20).build(), FetchResponse.parser(), 30_000).get(60, TimeUnit.SECONDS);
                if (r.getRecordsCount() == 0) {
                    break;
                }
                records += r.getRecordsCount();
                offset = r.getRecords(r.getRecordsCount() - 1).getOffset() + 1;
            }
            double secs = (System.nanoTime() - cStart) / 1e9;
            System.out.printf("consume  %,12.0f records/s %8.1f MB/s   (%,d records up to the high watermark)%n",
                    records / secs, records * (double) recordBytes / secs / 1e6, records);
        }
        return 0;
    }

    public static void main(String[] args) {
        System.exit(new CommandLine(new LoadGeneratorMain()).execute(args));
    }
}
