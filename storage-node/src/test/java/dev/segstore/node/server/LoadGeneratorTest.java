package dev.segstore.node.server;

import dev.segstore.adapter.ShardConfig;
import dev.segstore.client.SegmentStorageAdapter;
import org.HdrHistogram.Histogram;
import org.HdrHistogram.HistogramLogReader;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code segstore-perf --rate}: calls go out on a fixed schedule, so the produce rate never passes the target,
 * and the latencies land in an HdrHistogram interval log that HdrHistogram's own reader reads back. Not a
 * benchmark: it checks what the tool does, not how fast the cluster is.
 */
@Timeout(120)
class LoadGeneratorTest {
    @TempDir
    Path dir;

    @Test
    void aFixedRateRunStaysAtOrBelowItsTargetAndLogsItsLatencies() throws Exception {
        try (InJvmCluster cluster = new InJvmCluster();
             SegmentStorageAdapter a = new SegmentStorageAdapter(SegmentStorageAdapter.Settings.of(cluster.metaAddresses.toArray(String[]::new)))) {
            a.createShard(ShardConfig.of("perf", SegmentStorageAdapter.STORAGE_TYPE)).get(60, TimeUnit.SECONDS);
            Path log = dir.resolve("latency.hlog");
            String text = run(cluster, "--shard", "perf", "--rate", "1000", "--records-per-request", "10", "--record-bytes", "100",
                    "--seconds", "3", "--warmup-seconds", "1", "--histogram-log", log.toString(), "--report", dir.resolve("report.html").toString());
            assertTrue(text.contains("rate     target 1,000 records/s (10 records a call, one every 10.000 ms)"), text);
            Matcher m = Pattern.compile("produce\\s+([\\d,]+) records/s").matcher(text);
            assertTrue(m.find(), text);
            double rps = Double.parseDouble(m.group(1).replace(",", ""));
            assertTrue(rps > 0 && rps <= 1_000 * 1.05, "the schedule caps the rate at the target: " + rps + "\n" + text);
            HistogramLogReader reader = new HistogramLogReader(log.toFile());
            long calls = 0;
            int intervals = 0;
            Histogram interval;
            while ((interval = (Histogram) reader.nextIntervalHistogram()) != null) {
                calls += interval.getTotalCount();
                intervals++;
            }
            assertTrue(intervals >= 2, "one interval a second over 3 measured seconds: " + intervals);
            assertEquals(Math.round(rps * 3 / 10), calls, 2.0, "every measured call is in the log once");
            String html = java.nio.file.Files.readString(dir.resolve("report.html"));
            assertTrue(text.contains("report   " + dir.resolve("report.html").toAbsolutePath()), text);
            assertTrue(html.startsWith("<!DOCTYPE html>") && html.contains("1,000 records/s target"), html);
            assertEquals(3, html.split("<svg ", -1).length - 1, "throughput, latency over time and by percentile: " + html);
            assertTrue(html.contains("<td>p99</td>") && html.contains("<td>max</td>"), "the percentile table: " + html);
            assertTrue(html.contains(">p99.9</text>"), "the distribution's x axis is in percentiles: " + html);
        }
    }
    /**
     * Without a rate, a call's latency counts from when it is sent. With one call in flight the calls never
     * overlap, so their latencies cannot add up to more than the measured seconds (plus the last call, which may
     * end after them). Counted from before the wait for a free slot, each latency held the previous call's too,
     * and the sum came to about twice the run.
     */
    @Test
    void oneCallInFlightCountsEachCallFromWhenItIsSent() throws Exception {
        try (InJvmCluster cluster = new InJvmCluster();
             SegmentStorageAdapter a = new SegmentStorageAdapter(SegmentStorageAdapter.Settings.of(cluster.metaAddresses.toArray(String[]::new)))) {
            a.createShard(ShardConfig.of("serial", SegmentStorageAdapter.STORAGE_TYPE)).get(60, TimeUnit.SECONDS);
            Path log = dir.resolve("serial.hlog");
            String text = run(cluster, "--shard", "serial", "--in-flight", "1", "--records-per-request", "1", "--record-bytes", "100",
                    "--seconds", "2", "--warmup-seconds", "1", "--histogram-log", log.toString());
            HistogramLogReader reader = new HistogramLogReader(log.toFile());
            long calls = 0;
            double sumNanos = 0;
            long maxNanos = 0;
            Histogram interval;
            while ((interval = (Histogram) reader.nextIntervalHistogram()) != null) {
                calls += interval.getTotalCount();
                sumNanos += interval.getMean() * interval.getTotalCount();
                maxNanos = Math.max(maxNanos, interval.getMaxValue());
            }
            assertTrue(calls > 10, "calls measured: " + calls + "\n" + text);
            double bound = TimeUnit.SECONDS.toNanos(2) + maxNanos;
            assertTrue(sumNanos <= bound, String.format("%d calls one at a time: their latencies add up to %.0f ms, more than the %.0f ms "
                    + "they can have taken%n%s", calls, sumNanos / 1e6, bound / 1e6, text));
        }
    }
    /** Runs segstore-perf against {@code cluster} with {@code args}; its output, once it exited 0. */
    private static String run(InJvmCluster cluster, String... args) {
        PrintStream out = System.out;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        int exit;
        try {
            System.setOut(new PrintStream(captured, true, StandardCharsets.UTF_8));
            String[] all = java.util.stream.Stream.concat(java.util.stream.Stream.of("--meta", String.join(",", cluster.metaAddresses)),
                    java.util.Arrays.stream(args)).toArray(String[]::new);
            exit = new CommandLine(new LoadGeneratorMain()).execute(all);
        } finally {
            System.setOut(out);
        }
        String text = captured.toString(StandardCharsets.UTF_8);
        assertEquals(0, exit, text);
        return text;
    }
}
