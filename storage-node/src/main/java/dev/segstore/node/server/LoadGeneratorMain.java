package dev.segstore.node.server;

import dev.segstore.adapter.NewRecord;
import dev.segstore.adapter.StoredRecord;
import dev.segstore.client.SegmentStorageAdapter;
import dev.segstore.protocol.meta.DurabilityMode;
import org.HdrHistogram.Histogram;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.Callable;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Load generator for a running cluster, through the {@code segment} engine as a broker uses it: batch writes
 * to one shard or several in turn, with a window of calls in flight (each acknowledged by the ISR, per the shard's durability;
 * the engine follows the shard across segment rolls), after a warm-up that is not measured (the JIT of
 * every process on the path needs it), then reads everything back. Prints records/s, MB/s and per-call
 * latency percentiles (HdrHistogram). Used by scripts/bench-cluster.sh.
 *
 * <p>With {@code --gap-report} it also prints, every second, the longest pause between two acknowledgements that
 * ended in that second, with the wall-clock time: how long writes stalled while a process restarted
 * (scripts/rolling-restart.sh reads these lines).
 */
@Command(name = "segstore-perf", mixinStandardHelpOptions = true, description = "Produces and consumes against a cluster.")
public final class LoadGeneratorMain implements Callable<Integer> {
    @Option(names = "--meta", required = true, split = ",")
    List<String> meta;
    @picocli.CommandLine.Mixin
    dev.segstore.meta.server.TlsOptions tls = new dev.segstore.meta.server.TlsOptions();

    @Option(names = "--shard", required = true, split = ",",
            description = "shard(s) to write; with several, calls go to each in turn and share the window")
    List<String> shards;
    @Option(names = "--seconds", defaultValue = "10", description = "measured seconds")
    int seconds;
    @Option(names = "--warmup-seconds", defaultValue = "10", description = "seconds of load before measuring")
    int warmupSeconds;
    @Option(names = "--record-bytes", defaultValue = "1024")
    int recordBytes;
    @Option(names = "--records-per-request", defaultValue = "16")
    int perRequest;
    @Option(names = "--in-flight", defaultValue = "32")
    int inFlight;
    @Option(names = "--gap-report", description = "print, every second: 'gap <epoch ms> acked <n> failed <n> longest-gap-ms <ms>', "
            + "the longest pause between two acknowledgements that ended in that second")
    boolean gapReport;

    @Override
    public Integer call() throws Exception {
        try (SegmentStorageAdapter adapter = new SegmentStorageAdapter(new SegmentStorageAdapter.Settings(meta, 30_000, 10_000,
                DurabilityMode.FSYNC, tls.config()))) {
            byte[] payload = new byte[recordBytes];
            new Random(1).nextBytes(payload);
            List<NewRecord> batch = new ArrayList<>();
            for (int i = 0; i < perRequest; i++) {
                batch.add(NewRecord.of(System.currentTimeMillis(), payload));
            }
            Histogram h = new Histogram(TimeUnit.SECONDS.toNanos(60), 3);
            Semaphore window = new Semaphore(inFlight);
            AtomicLong acked = new AtomicLong();
            AtomicLong failed = new AtomicLong();
            AtomicLong firstMeasured = new AtomicLong(-1);
            GapReport gaps = gapReport ? new GapReport(failed) : null;
            long warmupEnd = System.nanoTime() + TimeUnit.SECONDS.toNanos(warmupSeconds);
            long end = warmupEnd + TimeUnit.SECONDS.toNanos(seconds);
            long now;
            long calls = 0;
            while ((now = System.nanoTime()) < end) {
                window.acquire();
                long start = now;
                String shard = shards.get((int) (calls++ % shards.size()));
                adapter.batchWrite(shard, batch).whenComplete((offsets, e) -> {
                    long done = System.nanoTime();
                    if (e == null && gaps != null) {
                        gaps.acked(done);
                    }
                    if (e != null) {
                        failed.incrementAndGet();
                    } else if (start >= warmupEnd) {
                        synchronized (h) {
                            h.recordValue(done - start);
                        }
                        firstMeasured.compareAndSet(-1, offsets.get(0));
                        acked.addAndGet(perRequest);
                    }
                    window.release();
                });
            }
            window.acquire(inFlight);
            if (gaps != null) {
                gaps.close();
            }
            double rps = acked.get() / (double) seconds;
            System.out.printf("produce  %,12.0f records/s %8.1f MB/s   p50 %7.2f ms  p99 %7.2f ms  p99.9 %7.2f ms  max %7.2f ms  failed %d%n",
                    rps, rps * recordBytes / 1e6, h.getValueAtPercentile(50) / 1e6, h.getValueAtPercentile(99) / 1e6,
                    h.getValueAtPercentile(99.9) / 1e6, h.getMaxValue() / 1e6, failed.get());
            long records = 0;
            long cStart = System.nanoTime();
            for (String shard : shards) {
                long offset = 0;
                while (true) {
                    List<StoredRecord> page = adapter.readByOffset(shard, offset, 5_000).get(60, TimeUnit.SECONDS);
                    if (page.isEmpty()) {
                        break;
                    }
                    records += page.size();
                    offset = page.get(page.size() - 1).offset() + 1;
                }
            }
            double secs = (System.nanoTime() - cStart) / 1e9;
            System.out.printf("consume  %,12.0f records/s %8.1f MB/s   (%,d records: the whole shard%s, one after another)%n",
                    records / secs, records * (double) recordBytes / secs / 1e6, records, shards.size() == 1 ? "" : "s");
        }
        return 0;
    }

    /** The {@code --gap-report} lines: every second, the longest pause between acknowledgements that ended in it. */
    private static final class GapReport implements AutoCloseable {
        private final java.util.concurrent.ScheduledExecutorService timer = java.util.concurrent.Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "gap-report");
            t.setDaemon(true);
            return t;
        });
        private final AtomicLong failed;
        private final AtomicLong lastAckNanos = new AtomicLong(-1);
        private final AtomicLong longestGapNanos = new AtomicLong();
        private final AtomicLong ackedInSecond = new AtomicLong();

        GapReport(AtomicLong failed) {
            this.failed = failed;
            timer.scheduleAtFixedRate(this::print, 1, 1, TimeUnit.SECONDS);
        }

        void acked(long nowNanos) {
            long before = lastAckNanos.getAndSet(nowNanos);
            if (before >= 0) {
                longestGapNanos.accumulateAndGet(nowNanos - before, Math::max);
            }
            ackedInSecond.incrementAndGet();
        }

        private void print() {
            long gap = longestGapNanos.getAndSet(0);
            long last = lastAckNanos.get();
            if (last >= 0) {
                gap = Math.max(gap, System.nanoTime() - last); // a pause still going on counts too
            }
            System.out.printf("gap %d acked %d failed %d longest-gap-ms %.0f%n", System.currentTimeMillis(), ackedInSecond.getAndSet(0),
                    failed.get(), gap / 1e6);
        }

        @Override
        public void close() {
            timer.shutdownNow();
        }
    }

    public static void main(String[] args) {
        System.exit(new CommandLine(new LoadGeneratorMain()).execute(args));
    }
}
