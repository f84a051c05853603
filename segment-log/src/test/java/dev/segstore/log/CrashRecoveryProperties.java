package dev.segstore.log;

import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.lifecycle.AfterTry;
import net.jqwik.api.lifecycle.BeforeTry;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Crash recovery, under a file layer that loses unsynced writes and tears the last one
 * ({@link FaultyLogFiles}). Each try is one scenario drawn from a seed (printed by jqwik, and in every
 * failure message): random appends in both durability modes, some awaited and some in flight, segment
 * rolls and truncations, then a crash at a random point and a recovery. The property: the recovered log is
 * exactly a prefix of what was appended (same offsets, payloads, timestamps) and holds every record whose
 * fsync-mode append was acknowledged; and the recovered log takes new appends.
 */
class CrashRecoveryProperties {
    private Path root;

    @BeforeTry
    void createRoot() throws IOException {
        root = Files.createTempDirectory("crash-");
    }

    @AfterTry
    void deleteRoot() throws IOException {
        try (Stream<Path> s = Files.walk(root)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }

    @Provide
    Arbitrary<Long> seeds() {
        return Arbitraries.longs();
    }

    private record Appended(long offset, long timestamp, byte[] payload) {
    }

    private record Pending(CompletableFuture<AppendResult> future, Durability durability, List<Appended> records) {
    }

    @Property(tries = 1500)
    void recoveryKeepsAPrefixWithEveryAcknowledgedRecord(@ForAll("seeds") long seed) throws Exception {
        Random random = new Random(seed);
        String context = "seed " + seed;
        FaultyLogFiles files = new FaultyLogFiles();
        AtomicLong clock = new AtomicLong(1_000);
        FlushPolicy policy = random.nextBoolean() ? FlushPolicy.DEFAULT
                : new FlushPolicy(random.nextInt(200_000), 1 + random.nextInt(64 * 1024), random.nextInt(2_000_000), 1 + random.nextInt(1 << 20));
        LogConfig config = LogConfig.DEFAULT.withSegmentBytes(64 * 1024).withIndexIntervalBytes(64 + random.nextInt(2048));
        LogDirectory directory = LogDirectory.open(root, DirectoryConfig.DEFAULT.withFlushPolicy(policy), files, clock::get);
        SegmentLog log = directory.openLog("p", config, 0);
        // A quarter of the runs move the log, made now, to start elsewhere first (SegmentLog.rebaseEmpty, as a storage
        // node does with a close ahead's next segment). Drawn from a stream of its own: other runs are as before.
        Random moves = new Random(seed ^ 0x5EBA5EL);
        long start = 0;
        if (moves.nextInt(4) == 0) {
            start = 1 + moves.nextInt(5_000);
            boolean epochAhead = moves.nextBoolean();
            if (epochAhead) {
                log.assignEpochAtEnd(0); // the first epoch's checkpoint written ahead, at the old start
            }
            log.rebaseEmpty(start);
            context += ", log moved to start at " + start + (epochAhead ? " with its first epoch" : "");
        }

        List<Appended> written = new ArrayList<>(); // everything that ever got an offset, by offset
        List<Pending> pending = new ArrayList<>();
        int steps = 1 + random.nextInt(60);
        int epoch = 0;
        for (int step = 0; step < steps; step++) {
            int action = random.nextInt(20);
            if (action == 0 && log.logEndOffset() > start) {
                // A truncation, as when this replica follows a new leader: wait for it, it is synchronous for the owner.
                long to = random.nextLong(log.logEndOffset() + 1);
                long end = LogFixtures.await(log.truncateTo(Math.max(to, log.logStartOffset())));
                written.subList((int) (end - start), written.size()).clear();
                epoch++;
                continue;
            }
            if (action == 1) {
                epoch++;
            }
            int n = 1 + random.nextInt(5);
            List<AppendRecord> batch = new ArrayList<>();
            List<Appended> expected = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                byte[] payload = new byte[random.nextInt(random.nextInt(10) == 0 ? 8000 : 300)];
                random.nextBytes(payload);
                long ts = clock.get() + random.nextInt(1000);
                batch.add(AppendRecord.of(ts, payload));
                expected.add(new Appended(log.logEndOffset() + i, ts, payload));
            }
            Durability d = random.nextBoolean() ? Durability.FSYNC : Durability.PAGE_CACHE;
            CompletableFuture<AppendResult> f = log.appendAsLeader(batch, epoch, d);
            written.addAll(expected);
            pending.add(new Pending(f, d, expected));
            if (random.nextInt(4) == 0) {
                LogFixtures.await(f);
            }
            clock.addAndGet(random.nextInt(3));
        }
        // Crash: the I/O thread stops where it is; what was not forced is left to the fault layer.
        directory.halt();
        long acknowledgedEnd = 0;
        for (Pending p : pending) {
            boolean acked = p.future().isDone() && !p.future().isCompletedExceptionally() && p.future().join().appended();
            if (acked && p.durability() == Durability.FSYNC) {
                for (Appended a : p.records()) {
                    // Still in the log, unless a later truncation removed it (identity: a re-append reuses the offset).
                    if (a.offset() - start < written.size() && written.get((int) (a.offset() - start)) == a) {
                        acknowledgedEnd = Math.max(acknowledgedEnd, a.offset() + 1);
                    }
                }
            }
        }
        files.crash(random);

        LogDirectory reopened = LogDirectory.open(root, DirectoryConfig.DEFAULT, new FaultyLogFiles(), clock::get);
        try {
            SegmentLog recovered = reopened.openLog("p", config, 0);
            List<LogRecord> back = LogFixtures.readAll(recovered);
            // A moved log comes back where it was moved, or, if the move's renames never reached the disk (its directory
            // not forced: then nothing of it was), empty where it was made.
            long recoveredStart = recovered.logStartOffset();
            assertTrue(recoveredStart == start || recoveredStart == 0 && acknowledgedEnd == 0 && back.isEmpty(),
                    context + ": the log starts at " + recoveredStart + ", moved to " + start + ", acknowledged up to " + acknowledgedEnd);
            assertTrue(back.size() <= written.size(), context + ": recovered " + back.size() + " records, only " + written.size() + " written");
            assertTrue(recoveredStart + back.size() >= acknowledgedEnd, context + ": lost acknowledged records: recovered "
                    + back.size() + ", acknowledged up to " + acknowledgedEnd);
            for (int i = 0; i < back.size(); i++) {
                Appended w = written.get(i);
                LogRecord r = back.get(i);
                assertEquals(w.offset(), r.offset(), context);
                assertEquals(w.timestamp(), r.timestamp(), context + " offset " + i);
                assertArrayEquals(w.payload(), r.payload(), context + " offset " + i);
            }
            assertEquals(recoveredStart + back.size(), recovered.logEndOffset(), context);
            // The epoch history is within the log: an entry the checkpoint holds below the log's start (an epoch written
            // ahead of a move) reads as at its start; epochs and their starts grow.
            List<dev.segstore.log.epoch.EpochEntry> history = recovered.epochHistory();
            for (int i = 0; i < history.size(); i++) {
                dev.segstore.log.epoch.EpochEntry e = history.get(i);
                assertTrue(e.startOffset() >= recoveredStart && e.startOffset() <= recovered.logEndOffset(), context + ": epoch history " + history);
                assertTrue(i == 0 || e.epoch() > history.get(i - 1).epoch() && e.startOffset() > history.get(i - 1).startOffset(),
                        context + ": epoch history " + history);
            }
            assertTrue(back.isEmpty() || !history.isEmpty() && history.get(0).startOffset() == recoveredStart,
                    context + ": records from " + recoveredStart + " but epoch history " + history);
            AppendResult after = LogFixtures.append(recovered, LogFixtures.records(2, clock.get(), "after"), recovered.latestEpoch() + 1 + epoch, Durability.FSYNC);
            assertEquals(recoveredStart + back.size(), after.baseOffset(), context);
            assertEquals(back.size() + 2, LogFixtures.readAll(recovered).size(), context);
        } finally {
            reopened.close();
        }
    }

    static String hex(byte[] b) {
        return Arrays.toString(b);
    }
}
