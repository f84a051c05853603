package dev.segstore.bench;

import dev.segstore.log.AppendRecord;
import dev.segstore.log.AppendResult;
import dev.segstore.log.DirectoryConfig;
import dev.segstore.log.Durability;
import dev.segstore.log.LogConfig;
import dev.segstore.log.LogDirectory;
import dev.segstore.log.SegmentLog;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.Collections;
import java.util.Comparator;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.stream.Stream;

/**
 * Appends to one {@link SegmentLog} as its leader ({@code appendAsLeader}), in a data directory of its own under
 * the system temporary directory, in page-cache and fsync durability, for 1 KiB and 100 B records, one record or
 * a 16 KiB producer batch (16 x 1 KiB, 163 x 100 B) per append.
 *
 * <p>Asynchronous, as a storage node serving many producers appends: each benchmark thread keeps up to
 * {@value #IN_FLIGHT} appends outstanding, and an invocation first waits for the oldest when that many are, then
 * issues one append. In the steady state appends are issued as fast as they are acknowledged, so the score
 * (ops/s) is acknowledged appends per second; records/s is the score times the records per append (1, 16 or
 * 163). This is the throughput half of {@code SegmentLogBenchmark} (segment-log tests), which also gives
 * per-append latency, fsyncs per second and read throughput.
 *
 * <p>Each thread has its own data directory (its own I/O thread); each measurement iteration starts with an
 * empty log, deleted after it, so a run never holds more than one iteration's bytes on disk.
 */
@State(Scope.Thread)
public class SegmentLogAppendBenchmark {
    private static final int IN_FLIGHT = 32;
    private static final int BATCH_BYTES = 16 * 1024;

    @Param({"PAGE_CACHE", "FSYNC"})
    Durability durability;

    @Param({"1024", "100"})
    int recordBytes;

    /** false: one record per append; true: a 16 KiB batch of records. */
    @Param({"false", "true"})
    boolean batched;

    private List<AppendRecord> batch;
    private Path root;
    private LogDirectory directory;
    private SegmentLog log;
    private final ArrayDeque<CompletableFuture<AppendResult>> pending = new ArrayDeque<>();

    @Setup(Level.Trial)
    public void makeBatch() {
        byte[] payload = new byte[recordBytes];
        new Random(1).nextBytes(payload);
        batch = Collections.nCopies(batched ? BATCH_BYTES / recordBytes : 1, AppendRecord.of(System.currentTimeMillis(), payload));
    }

    @Setup(Level.Iteration)
    public void openLog() throws IOException {
        root = Files.createTempDirectory("segstore-jmh-log-");
        directory = LogDirectory.open(root, DirectoryConfig.DEFAULT);
        log = directory.openLog("bench", LogConfig.DEFAULT, 0);
    }

    @TearDown(Level.Iteration)
    public void deleteLog() throws IOException {
        while (!pending.isEmpty()) {
            acknowledged(pending.poll());
        }
        directory.close();
        try (Stream<Path> paths = Files.walk(root)) {
            for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }

    @Benchmark
    public AppendResult append() {
        AppendResult oldest = pending.size() == IN_FLIGHT ? acknowledged(pending.poll()) : null;
        pending.add(log.appendAsLeader(batch, 0, durability));
        return oldest;
    }

    private static AppendResult acknowledged(CompletableFuture<AppendResult> append) {
        AppendResult r = append.join();
        if (!r.appended()) {
            throw new IllegalStateException("append refused: " + r);
        }
        return r;
    }
}
