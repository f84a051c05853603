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
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Load generator for a running cluster, through the {@code segment} engine as a broker uses it: batch writes
 * to one shard or several in turn, with a window of calls in flight (each acknowledged by the ISR, per the shard's durability;
 * the engine follows the shard across segment rolls), after a warm-up that is not measured (the JIT of
 * every process on the path needs it), then reads everything back. Prints records/s, MB/s and per-call
 * latency percentiles (HdrHistogram). Used by scripts/bench-cluster.sh. With {@code --rate} it sends on a fixed schedule and
 * counts each latency from the call's scheduled time (no coordinated omission); {@code --histogram-log} writes the
 * latencies as HdrHistogram interval logs, one interval a second.
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
    @Option(names = "--rate", defaultValue = "0", description = "target records/s (like Kafka's --throughput): calls are sent on a "
            + "fixed schedule and each latency counts from its scheduled time, so a stall shows in the latencies of every call it "
            + "delayed (no coordinated omission); 0: as fast as the window allows (default: ${DEFAULT-VALUE})")
    double rate;
    @Option(names = "--histogram-log", description = "write the measured latencies, one HdrHistogram interval a second, to this "
            + "file (HistogramLogWriter format: plot with HdrHistogram's HistogramLogAnalyzer or hdr-plot)")
    java.nio.file.Path histogramLog;
    @Option(names = "--coalesce-max-in-flight", defaultValue = "8", description = "with --records-per-request 1 each call is a "
            + "single-record write, which the engine coalesces with concurrent ones while this many batches of the shard are out "
            + "(segment.write.coalesce.max.in.flight; 0: every write is a request of its own)")
    int coalesceMaxInFlight;
    @Option(names = "--report", description = "write a self-contained HTML report to this file: a latency percentile table, "
            + "throughput and latency over time, and the latency percentile distribution (inline SVG)")
    java.nio.file.Path report;
    @Option(names = "--gap-report", description = "print, every second: 'gap <epoch ms> acked <n> failed <n> longest-gap-ms <ms> "
            + "ended-ms <epoch ms>', the longest pause between two acknowledgements that ended in that second (or is still going "
            + "on) and when it ended")
    boolean gapReport;
    @Option(names = "--pause-log-ms", defaultValue = "0", description = "with --gap-report, also print every pause between two "
            + "acknowledgements longer than this many ms, with the second's line: 'pause <end epoch ms> <ms>' (0: none)")
    long pauseLogMs;

    @Override
    public Integer call() throws Exception {
        SegmentStorageAdapter.WriteCoalescing d = SegmentStorageAdapter.WriteCoalescing.DEFAULT;
        try (SegmentStorageAdapter adapter = new SegmentStorageAdapter(new SegmentStorageAdapter.Settings(meta, 30_000, 10_000,
                DurabilityMode.FSYNC, tls.config(), new SegmentStorageAdapter.WriteCoalescing(coalesceMaxInFlight, d.maxRecords(), d.maxBytes())))) {
            byte[] payload = new byte[recordBytes];
            new Random(1).nextBytes(payload);
            List<NewRecord> batch = new ArrayList<>();
            for (int i = 0; i < perRequest; i++) {
                batch.add(NewRecord.of(System.currentTimeMillis(), payload));
            }
            org.HdrHistogram.Recorder recorder = new org.HdrHistogram.Recorder(3);
            Histogram h = new Histogram(3);
            Semaphore window = new Semaphore(inFlight);
            AtomicLong acked = new AtomicLong();
            AtomicLong failed = new AtomicLong();
            AtomicLong firstMeasured = new AtomicLong(-1);
            GapReport gaps = gapReport ? new GapReport(failed, pauseLogMs) : null;
            long started = System.nanoTime();
            long warmupEnd = started + TimeUnit.SECONDS.toNanos(warmupSeconds);
            long end = warmupEnd + TimeUnit.SECONDS.toNanos(seconds);
            // With --rate, call i is due at started + i * interval; it is sent then, or as soon as the window lets it,
            // and its latency counts from when it was due.
            double intervalNanos = rate > 0 ? perRequest * 1e9 / rate : 0;
            IntervalLog intervals = new IntervalLog(recorder, h, histogramLog, warmupEnd, perRequest);
            long now;
            long calls = 0;
            long behind = 0;
            while ((now = System.nanoTime()) < end) {
                long due = now;
                if (rate > 0) {
                    due = started + (long) (calls * intervalNanos);
                    if (due >= end) {
                        break;
                    }
                    while ((now = System.nanoTime()) < due) {
                        java.util.concurrent.locks.LockSupport.parkNanos(due - now);
                    }
                }
                window.acquire();
                long sent = System.nanoTime();
                if (rate > 0 && sent - due > TimeUnit.MILLISECONDS.toNanos(1)) {
                    behind++;
                }
                // With a rate, from when the call was due; without one, from when it goes out: counted from before
                // the wait for a free slot, a call would also count the call it waited for (with one call in
                // flight, each latency was about the previous call's plus its own).
                long start = rate > 0 ? due : sent;
                String shard = shards.get((int) (calls++ % shards.size()));
                CompletableFuture<List<Long>> call = perRequest == 1 ? adapter.write(shard, batch.get(0)).thenApply(List::of)
                        : adapter.batchWrite(shard, batch);
                call.whenComplete((offsets, e) -> {
                    long done = System.nanoTime();
                    if (e == null && gaps != null) {
                        gaps.acked(done);
                    }
                    if (e != null) {
                        failed.incrementAndGet();
                    } else if (start >= warmupEnd) {
                        recorder.recordValue(done - start);
                        firstMeasured.compareAndSet(-1, offsets.get(0));
                        acked.addAndGet(perRequest);
                    }
                    window.release();
                });
            }
            window.acquire(inFlight);
            intervals.close();
            if (gaps != null) {
                gaps.close();
            }
            if (rate > 0) {
                System.out.printf("rate     target %,.0f records/s (%d records a call, one every %.3f ms); %d of %d calls sent over 1 ms "
                        + "late (the window of %d was full: latency counts from the scheduled time)%n", rate, perRequest, intervalNanos / 1e6,
                        behind, calls, inFlight);
            }
            double rps = acked.get() / (double) seconds;
            if (report != null) {
                PerfReport.write(report, "segstore-perf: " + String.join(",", shards), String.format(java.util.Locale.ROOT,
                        "%d shard(s), %d-byte records, %d a call, %d in flight, %s, %d s measured after %d s of warm-up",
                        shards.size(), recordBytes, perRequest, inFlight, rate > 0 ? String.format(java.util.Locale.ROOT, "%,.0f records/s target", rate)
                                : "as fast as acknowledged", seconds, warmupSeconds), intervals.measured(), h, rps);
                System.out.println("report   " + report.toAbsolutePath());
            }
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

    /**
     * Every second, moves what the recorder measured into the run's histogram and, with {@code --histogram-log},
     * writes it as one interval (measured calls only: those scheduled after the warm-up).
     */
    private static final class IntervalLog implements AutoCloseable {
        private final org.HdrHistogram.Recorder recorder;
        private final Histogram total;
        private final org.HdrHistogram.HistogramLogWriter writer;
        private final java.io.PrintStream out;
        private final long warmupEnd;
        private final java.util.concurrent.ScheduledExecutorService timer = java.util.concurrent.Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "histogram-log");
            t.setDaemon(true);
            return t;
        });
        private org.HdrHistogram.Histogram recycled;
        private final int perRequest;
        /** Each measured second, for the {@code --report}. */
        private final List<PerfReport.Interval> measured = new ArrayList<>();

        IntervalLog(org.HdrHistogram.Recorder recorder, Histogram total, java.nio.file.Path file, long warmupEnd, int perRequest)
                throws java.io.IOException {
            this.recorder = recorder;
            this.perRequest = perRequest;
            this.total = total;
            this.warmupEnd = warmupEnd;
            if (file == null) {
                out = null;
                writer = null;
            } else {
                out = new java.io.PrintStream(java.nio.file.Files.newOutputStream(file), false, java.nio.charset.StandardCharsets.US_ASCII);
                writer = new org.HdrHistogram.HistogramLogWriter(out);
                writer.outputComment("segstore-perf latency of each call, nanoseconds");
                writer.outputLogFormatVersion();
                long startMs = System.currentTimeMillis() + TimeUnit.NANOSECONDS.toMillis(warmupEnd - System.nanoTime());
                writer.outputStartTime(startMs);
                writer.setBaseTime(startMs);
                writer.outputLegend();
            }
            timer.scheduleAtFixedRate(this::interval, 1, 1, TimeUnit.SECONDS);
        }

        private synchronized void interval() {
            recycled = recorder.getIntervalHistogram(recycled);
            total.add(recycled);
            long now = System.nanoTime();
            if (now > warmupEnd && (recycled.getTotalCount() > 0 || !measured.isEmpty())) {
                boolean any = recycled.getTotalCount() > 0;
                measured.add(new PerfReport.Interval((now - warmupEnd) / 1e9, recycled.getTotalCount() * perRequest,
                        any ? recycled.getValueAtPercentile(50) / 1e6 : Double.NaN, any ? recycled.getValueAtPercentile(99) / 1e6 : Double.NaN,
                        any ? recycled.getMaxValue() / 1e6 : Double.NaN));
            }
            if (writer != null && now > warmupEnd && recycled.getTotalCount() > 0) {
                writer.outputIntervalHistogram(recycled);
            }
        }

        synchronized List<PerfReport.Interval> measured() {
            return List.copyOf(measured);
        }

        @Override
        public void close() {
            timer.shutdownNow();
            interval(); // what came in since the last tick
            if (out != null) {
                out.close();
            }
        }
    }

    /** The {@code --gap-report} lines: every second, the longest pause between acknowledgements that ended in it. */
    private static final class GapReport implements AutoCloseable {
        private final java.util.concurrent.ScheduledExecutorService timer = java.util.concurrent.Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "gap-report");
            t.setDaemon(true);
            return t;
        });
        private final AtomicLong failed;
        /** Guarded by this: the last acknowledgement, and the longest pause ended since the last line and when it ended. */
        private long lastAckNanos = -1;
        private long longestGapNanos;
        private long longestGapEndNanos;
        private final AtomicLong ackedInSecond = new AtomicLong();
        /** Pauses longer than this are printed one by one (Long.MAX_VALUE: none). */
        private final long pauseLogNanos;
        /** Guarded by this: those pauses since the last line, as pairs of end (System.nanoTime) and length, in nanoseconds. */
        private final java.util.List<long[]> pauses = new java.util.ArrayList<>();

        GapReport(AtomicLong failed, long pauseLogMs) {
            this.failed = failed;
            this.pauseLogNanos = pauseLogMs > 0 ? TimeUnit.MILLISECONDS.toNanos(pauseLogMs) : Long.MAX_VALUE;
            timer.scheduleAtFixedRate(this::print, 1, 1, TimeUnit.SECONDS);
        }

        void acked(long nowNanos) {
            synchronized (this) {
                if (lastAckNanos >= 0 && nowNanos - lastAckNanos > longestGapNanos) {
                    longestGapNanos = nowNanos - lastAckNanos;
                    longestGapEndNanos = nowNanos;
                }
                if (lastAckNanos >= 0 && nowNanos - lastAckNanos > pauseLogNanos) {
                    pauses.add(new long[] {nowNanos, nowNanos - lastAckNanos});
                }
                lastAckNanos = Math.max(lastAckNanos, nowNanos);
            }
            ackedInSecond.incrementAndGet();
        }

        /** One line; the pause's end in wall-clock ms, to find it in the servers' logs. */
        private void print() {
            long nowNanos = System.nanoTime();
            long nowMs = System.currentTimeMillis();
            long gap;
            long endNanos;
            java.util.List<long[]> ended;
            synchronized (this) {
                ended = new java.util.ArrayList<>(pauses);
                pauses.clear();
                gap = longestGapNanos;
                endNanos = longestGapEndNanos;
                longestGapNanos = 0;
                if (lastAckNanos >= 0 && nowNanos - lastAckNanos > gap) {
                    gap = nowNanos - lastAckNanos; // a pause still going on counts too
                    endNanos = nowNanos;
                }
            }
            if (gap == 0) {
                endNanos = nowNanos;
            }
            for (long[] p : ended) {
                System.out.printf("pause %d %.1f%n", nowMs - (nowNanos - p[0]) / 1_000_000, p[1] / 1e6);
            }
            System.out.printf("gap %d acked %d failed %d longest-gap-ms %.0f ended-ms %d%n", nowMs, ackedInSecond.getAndSet(0),
                    failed.get(), gap / 1e6, nowMs - (nowNanos - endNanos) / 1_000_000);
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
