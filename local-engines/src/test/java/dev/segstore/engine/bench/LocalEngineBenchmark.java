package dev.segstore.engine.bench;

import dev.segstore.adapter.NewRecord;
import dev.segstore.adapter.ShardConfig;
import dev.segstore.adapter.StorageAdapter;
import dev.segstore.engine.memory.MemoryStorageAdapter;
import dev.segstore.engine.rocksdb.RocksDbSettings;
import dev.segstore.engine.rocksdb.RocksDbStorageAdapter;
import org.HdrHistogram.Histogram;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import java.util.stream.Stream;

/**
 * Write throughput of the local engines with 1 KiB records: single writes (each writer waits for its
 * write before the next) and batches of 100, with HdrHistogram latency percentiles per call.
 * Run with {@code scripts/bench-local-engines.sh [seconds-per-case] [writers]}; see docs/benchmarks.md.
 */
public final class LocalEngineBenchmark {
    private static final int RECORD_BYTES = 1024;
    private static final int BATCH = 100;

    private LocalEngineBenchmark() {
    }

    public static void main(String[] args) throws Exception {
        int seconds = args.length > 0 ? Integer.parseInt(args[0]) : 5;
        int writers = args.length > 1 ? Integer.parseInt(args[1]) : 2;
        Path base = Path.of(args.length > 2 ? args[2] : "target/bench");
        Files.createDirectories(base);
        System.out.printf("local engine write benchmark: %d B records, %d s per case, %d writer threads, %d cores%n",
                RECORD_BYTES, seconds, writers, Runtime.getRuntime().availableProcessors());
        System.out.printf("%-26s %-7s %12s %9s %9s %9s %9s %9s%n", "engine", "mode", "records/s", "MB/s",
                "p50 us", "p99 us", "p99.9 us", "max us");
        List<Case> cases = List.of(
                new Case("memory", MemoryStorageAdapter::new),
                new Case("rocksdb sync-writes=true", () -> rocks(base, true)),
                new Case("rocksdb sync-writes=false", () -> rocks(base, false)));
        for (Case c : cases) {
            for (int batch : new int[]{1, BATCH}) {
                try (StorageAdapter adapter = c.open.get()) {
                    run(c.name, adapter, batch, seconds, writers);
                }
            }
        }
        deleteTree(base);
    }

    private record Case(String name, Supplier<StorageAdapter> open) {
    }

    private static StorageAdapter rocks(Path base, boolean sync) {
        try {
            return RocksDbStorageAdapter.open(RocksDbSettings.defaults(Files.createTempDirectory(base, "rocks"))
                    .withSyncWrites(sync));
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    private static void run(String engine, StorageAdapter adapter, int batch, int seconds, int writers)
            throws Exception {
        List<Thread> threads = new ArrayList<>();
        List<Histogram> histograms = new ArrayList<>();
        long[] counts = new long[writers];
        // Warm up for one second, then measure; each writer has its own shard, as brokers' partitions do.
        for (int w = 0; w < writers; w++) {
            String shard = "bench-" + w;
            adapter.createShard(ShardConfig.of(shard, "bench")).get(10, TimeUnit.SECONDS);
        }
        long warmupEnd = System.nanoTime() + TimeUnit.SECONDS.toNanos(1);
        long end = warmupEnd + TimeUnit.SECONDS.toNanos(seconds);
        for (int w = 0; w < writers; w++) {
            int writer = w;
            Histogram h = new Histogram(TimeUnit.SECONDS.toNanos(10), 3);
            histograms.add(h);
            Thread t = new Thread(() -> {
                byte[] payload = new byte[RECORD_BYTES];
                new Random(writer).nextBytes(payload);
                List<NewRecord> records = new ArrayList<>(batch);
                for (int i = 0; i < batch; i++) {
                    records.add(NewRecord.of(System.currentTimeMillis(), payload));
                }
                String shard = "bench-" + writer;
                try {
                    long now;
                    while ((now = System.nanoTime()) < end) {
                        if (batch == 1) {
                            adapter.write(shard, records.get(0)).get(10, TimeUnit.SECONDS);
                        } else {
                            adapter.batchWrite(shard, records).get(10, TimeUnit.SECONDS);
                        }
                        long done = System.nanoTime();
                        if (now >= warmupEnd) {
                            h.recordValue(done - now);
                            counts[writer] += batch;
                        }
                    }
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            }, "bench-writer-" + w);
            threads.add(t);
            t.start();
        }
        for (Thread t : threads) {
            t.join();
        }
        Histogram all = new Histogram(TimeUnit.SECONDS.toNanos(10), 3);
        histograms.forEach(all::add);
        long records = 0;
        for (long c : counts) {
            records += c;
        }
        double perSecond = records / (double) seconds;
        System.out.printf("%-26s %-7s %12.0f %9.1f %9.1f %9.1f %9.1f %9.1f%n", engine,
                batch == 1 ? "single" : "batch" + batch, perSecond, perSecond * RECORD_BYTES / 1e6,
                all.getValueAtPercentile(50) / 1e3, all.getValueAtPercentile(99) / 1e3,
                all.getValueAtPercentile(99.9) / 1e3, all.getMaxValue() / 1e3);
    }

    private static void deleteTree(Path root) throws IOException {
        try (Stream<Path> paths = Files.walk(root)) {
            for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }
}
