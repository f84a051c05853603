package dev.segstore.log.bench;

import dev.segstore.log.AppendRecord;
import dev.segstore.log.AppendResult;
import dev.segstore.log.DirectoryConfig;
import dev.segstore.log.Durability;
import dev.segstore.log.FileSlice;
import dev.segstore.log.LogConfig;
import dev.segstore.log.LogDirectory;
import dev.segstore.log.LogRecord;
import dev.segstore.log.SegmentLog;
import org.HdrHistogram.Histogram;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * Append and read throughput of the segment log on this machine, in both durability modes, for 1 KiB and
 * 100 B records. Each writer thread owns one log (a shard replica) in a shared data directory and keeps up
 * to {@code IN_FLIGHT} appends outstanding, as a storage node serving many producers does; appends carry
 * one record or a 16 KiB producer batch. Latency is per append, from call to acknowledgement.
 * Run with {@code scripts/bench-segment-log.sh [seconds-per-case] [writers]}; see docs/benchmarks.md.
 */
public final class SegmentLogBenchmark {
    private static final int IN_FLIGHT = 32;
    private static final int BATCH_BYTES = 16 * 1024;

    private SegmentLogBenchmark() {
    }

    public static void main(String[] args) throws Exception {
        int seconds = args.length > 0 ? Integer.parseInt(args[0]) : 5;
        int writers = args.length > 1 ? Integer.parseInt(args[1]) : 4;
        Path base = Path.of(args.length > 2 ? args[2] : "target/bench");
        Files.createDirectories(base);
        System.out.printf("segment-log benchmark: %d s per case after 1 s warm-up, %d writers x %d appends in flight, %d cores%n",
                seconds, writers, IN_FLIGHT, Runtime.getRuntime().availableProcessors());
        System.out.printf("%-6s %-10s %-8s %12s %9s %10s %9s %9s %9s %9s%n", "record", "durability", "append",
                "records/s", "MB/s", "fsyncs/s", "p50 us", "p99 us", "p99.9 us", "max us");
        for (int recordBytes : new int[] {1024, 100}) {
            for (Durability d : new Durability[] {Durability.PAGE_CACHE, Durability.FSYNC}) {
                for (boolean batched : new boolean[] {false, true}) {
                    Path dir = Files.createTempDirectory(base, "seglog");
                    try {
                        runCase(dir, recordBytes, d, batched ? BATCH_BYTES / recordBytes : 1, seconds, writers, batched && d == Durability.PAGE_CACHE);
                    } finally {
                        deleteTree(dir);
                    }
                }
            }
        }
    }

    private static void runCase(Path dir, int recordBytes, Durability durability, int perAppend, int seconds,
                                int writers, boolean measureReads) throws Exception {
        CountingFiles files = new CountingFiles();
        try (LogDirectory directory = LogDirectory.open(dir, DirectoryConfig.DEFAULT, files, System::currentTimeMillis)) {
            List<SegmentLog> logs = new ArrayList<>();
            for (int w = 0; w < writers; w++) {
                logs.add(directory.openLog("bench-" + w, LogConfig.DEFAULT, 0));
            }
            long warmupEnd = System.nanoTime() + TimeUnit.SECONDS.toNanos(1);
            long end = warmupEnd + TimeUnit.SECONDS.toNanos(seconds);
            long[] counts = new long[writers];
            long[] forcesAtStart = new long[1];
            List<Histogram> histograms = new ArrayList<>();
            List<Thread> threads = new ArrayList<>();
            for (int w = 0; w < writers; w++) {
                int writer = w;
                Histogram h = new Histogram(TimeUnit.SECONDS.toNanos(30), 3);
                histograms.add(h);
                Thread t = new Thread(() -> {
                    byte[] payload = new byte[recordBytes];
                    new Random(writer).nextBytes(payload);
                    List<AppendRecord> batch = new ArrayList<>();
                    for (int i = 0; i < perAppend; i++) {
                        batch.add(AppendRecord.of(System.currentTimeMillis(), payload));
                    }
                    SegmentLog log = logs.get(writer);
                    ArrayDeque<long[]> starts = new ArrayDeque<>();
                    ArrayDeque<CompletableFuture<AppendResult>> pending = new ArrayDeque<>();
                    long now;
                    while ((now = System.nanoTime()) < end || !pending.isEmpty()) {
                        if (now < end && pending.size() < IN_FLIGHT) {
                            CompletableFuture<AppendResult> f = log.appendAsLeader(batch, 0, durability);
                            pending.add(f);
                            starts.add(new long[] {now});
                            continue;
                        }
                        CompletableFuture<AppendResult> f = pending.poll();
                        long start = starts.poll()[0];
                        AppendResult r = f.join();
                        long done = System.nanoTime();
                        if (start >= warmupEnd && start < end && r.appended()) {
                            h.recordValue(done - start);
                            counts[writer] += perAppend;
                        }
                    }
                }, "bench-writer-" + w);
                threads.add(t);
                t.start();
            }
            while (System.nanoTime() < warmupEnd) {
                Thread.onSpinWait();
            }
            forcesAtStart[0] = files.forces.get();
            for (Thread t : threads) {
                t.join();
            }
            long forces = files.forces.get() - forcesAtStart[0];
            Histogram all = new Histogram(TimeUnit.SECONDS.toNanos(30), 3);
            histograms.forEach(all::add);
            long records = 0;
            for (long c : counts) {
                records += c;
            }
            double perSecond = records / (double) seconds;
            System.out.printf("%-6s %-10s %-8s %12.0f %9.1f %10.0f %9.1f %9.1f %9.1f %9.1f%n",
                    recordBytes + "B", durability == Durability.FSYNC ? "fsync" : "page-cache",
                    perAppend == 1 ? "single" : "x" + perAppend, perSecond, perSecond * recordBytes / 1e6,
                    forces / (double) seconds, all.getValueAtPercentile(50) / 1e3, all.getValueAtPercentile(99) / 1e3,
                    all.getValueAtPercentile(99.9) / 1e3, all.getMaxValue() / 1e3);
            if (measureReads) {
                readBack(logs, recordBytes);
            }
        }
    }

    /** Reads every log from the start: decoded records (checksummed), then zero-copy slices to /dev/null. */
    private static void readBack(List<SegmentLog> logs, int recordBytes) throws IOException {
        long records = 0;
        long start = System.nanoTime();
        for (SegmentLog log : logs) {
            long offset = log.logStartOffset();
            while (offset < log.writtenEndOffset()) {
                List<LogRecord> chunk = log.read(offset, 10_000, 1 << 20, Long.MAX_VALUE);
                records += chunk.size();
                offset = chunk.get(chunk.size() - 1).offset() + 1;
            }
        }
        double secs = (System.nanoTime() - start) / 1e9;
        System.out.printf("%-6s %-10s %-8s %12.0f %9.1f   (read: decoded, checksummed, %d records)%n", recordBytes + "B",
                "read", "records", records / secs, records * recordBytes / secs / 1e6, records);
        long bytes = 0;
        start = System.nanoTime();
        try (FileChannel devNull = FileChannel.open(Path.of("/dev/null"), StandardOpenOption.WRITE)) {
            for (SegmentLog log : logs) {
                long offset = log.logStartOffset();
                while (offset < log.writtenEndOffset()) {
                    try (FileSlice slice = log.readSlice(offset, 1 << 20, Long.MAX_VALUE)) {
                        long sent = 0;
                        while (sent < slice.length()) {
                            sent += slice.transferTo(sent, slice.length() - sent, devNull);
                        }
                        bytes += sent;
                        offset = slice.nextOffset();
                    }
                }
            }
        }
        secs = (System.nanoTime() - start) / 1e9;
        System.out.printf("%-6s %-10s %-8s %12s %9.1f   (read: 1 MiB file slices sent with transferTo)%n", recordBytes + "B",
                "read", "slices", "", bytes / secs / 1e6);
    }

    private static void deleteTree(Path root) throws IOException {
        try (Stream<Path> paths = Files.walk(root)) {
            for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }
}
