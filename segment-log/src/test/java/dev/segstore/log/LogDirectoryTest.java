package dev.segstore.log;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;

import static dev.segstore.log.LogFixtures.append;
import static dev.segstore.log.LogFixtures.await;
import static dev.segstore.log.LogFixtures.records;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(60)
class LogDirectoryTest {
    private static final LogConfig CONFIG = LogConfig.DEFAULT.withSegmentBytes(1 << 20);

    @TempDir
    Path root;

    @Test
    void appendsQueuedDuringAFlushShareTheNextOne() throws Exception {
        GatedLogFiles files = new GatedLogFiles();
        try (LogDirectory directory = LogDirectory.open(root, DirectoryConfig.DEFAULT, files, () -> 0L)) {
            SegmentLog log = directory.openLog("a", CONFIG, 0);
            append(log, records(1, 1, "warm"), 0, Durability.FSYNC);
            int forcesBefore = files.forces.get();
            files.close();
            CompletableFuture<AppendResult> first = log.appendAsLeader(records(1, 1, "first"), 0, Durability.FSYNC);
            files.awaitHeld(); // the I/O thread is inside force() for "first"
            List<CompletableFuture<AppendResult>> group = new ArrayList<>();
            for (int i = 0; i < 100; i++) {
                group.add(log.appendAsLeader(records(1, 1, "g" + i), 0, Durability.FSYNC));
            }
            assertFalse(first.isDone(), "not acknowledged before its fsync returns");
            files.open();
            for (CompletableFuture<AppendResult> f : group) {
                assertTrue(await(f).appended());
            }
            assertEquals(forcesBefore + 2, files.forces.get(), "one fsync for 'first', one for the 100 queued behind it");
            assertTrue(first.isDone());
        }
    }

    @Test
    void futuresCompleteInQueueOrderAcrossDurabilityModes() throws Exception {
        GatedLogFiles files = new GatedLogFiles();
        try (LogDirectory directory = LogDirectory.open(root, DirectoryConfig.DEFAULT, files, () -> 0L)) {
            SegmentLog log = directory.openLog("a", CONFIG, 0);
            files.close();
            // When a future completes, every future queued before it must be complete already. (Checked in a
            // callback: one registered after its future completed runs at once, when the earlier ones are done too
            // if the order is right, so the check has no race of its own.)
            ConcurrentLinkedQueue<String> disorder = new ConcurrentLinkedQueue<>();
            List<CompletableFuture<AppendResult>> all = new ArrayList<>();
            for (int i = 0; i < 50; i++) {
                Durability d = i % 3 == 0 ? Durability.FSYNC : Durability.PAGE_CACHE;
                CompletableFuture<AppendResult> f = log.appendAsLeader(records(1, 1, "r" + i), 0, d);
                List<CompletableFuture<AppendResult>> earlier = List.copyOf(all);
                int index = i;
                f.thenAccept(r -> {
                    for (int k = 0; k < earlier.size(); k++) {
                        if (!earlier.get(k).isDone()) {
                            disorder.add(index + " completed before " + k);
                        }
                    }
                });
                all.add(f);
            }
            files.open();
            for (CompletableFuture<AppendResult> f : all) {
                await(f);
            }
            assertEquals(List.of(), List.copyOf(disorder));
        }
    }

    private static final int THRESHOLD = 64 * 1024;
    /** A policy that starts a background force once 64 KiB are unsynced, and never on time alone. */
    private static final DirectoryConfig FORCE_EVERY_64K =
            DirectoryConfig.DEFAULT.withFlushPolicy(new FlushPolicy(2_000_000L, 8L << 20, Long.MAX_VALUE / 2, THRESHOLD));

    private static List<AppendRecord> big(String name) {
        return List.of(AppendRecord.of(1, (name + "-".repeat(THRESHOLD)).getBytes(StandardCharsets.UTF_8)));
    }

    /** Opens log "a" and appends a threshold's worth ("first"): a force thread is then held in its force(). */
    private static SegmentLog holdABackgroundForce(LogDirectory directory, GatedLogFiles files) throws InterruptedException {
        SegmentLog log = directory.openLog("a", CONFIG, 0);
        files.close();
        assertTrue(await(log.appendAsLeader(big("first"), 0, Durability.PAGE_CACHE)).appended());
        files.awaitHeld();
        return log;
    }

    @Test
    void pageCacheAppendsAreAcknowledgedWhileABackgroundForceIsHeld() throws Exception {
        GatedLogFiles files = new GatedLogFiles();
        try (LogDirectory directory = LogDirectory.open(root, FORCE_EVERY_64K, files, () -> 0L)) {
            SegmentLog log = holdABackgroundForce(directory, files);
            List<CompletableFuture<AppendResult>> later = new ArrayList<>();
            for (int i = 0; i < 50; i++) {
                later.add(log.appendAsLeader(records(1, 1, "p" + i), 0, Durability.PAGE_CACHE));
            }
            for (CompletableFuture<AppendResult> f : later) {
                // Before background forces left the I/O thread, these waited behind the held force: a bounded
                // wait tells the two apart.
                assertTrue(f.get(10, TimeUnit.SECONDS).appended());
            }
            assertEquals(51, log.writtenEndOffset());
            assertEquals(0, log.durableEndOffset(), "nothing is durable while the force is held");
            files.open();
            // The force covers what was written when it started; the 50 later appends are below the threshold.
            LogFixtures.waitFor("the held force to make 'first' durable", () -> log.durableEndOffset() == 1);
        }
    }

    @Test
    void whenTheNextBackgroundForceIsDueTheIoThreadWaitsForTheOneInFlight() throws Exception {
        GatedLogFiles files = new GatedLogFiles();
        try (LogDirectory directory = LogDirectory.open(root, FORCE_EVERY_64K, files, () -> 0L)) {
            SegmentLog log = holdABackgroundForce(directory, files);
            // Another threshold's worth is written (and acknowledged: it is in the page cache), then the next
            // force is due: the I/O thread waits for the held one, and appends behind it wait too.
            assertTrue(await(log.appendAsLeader(big("second"), 0, Durability.PAGE_CACHE)).appended());
            CompletableFuture<AppendResult> third = log.appendAsLeader(records(1, 1, "third"), 0, Durability.PAGE_CACHE);
            assertThrows(TimeoutException.class, () -> third.get(300, TimeUnit.MILLISECONDS),
                    "unsynced bytes are bounded: no more writes while two thresholds are unsynced");
            assertEquals(0, log.durableEndOffset());
            files.open();
            assertTrue(await(third).appended());
            LogFixtures.waitFor("the first two appends to be durable", () -> log.durableEndOffset() >= 2);
        }
    }

    @Test
    void aForceOfSeveralSegmentsForcesThemAtOnce() throws Exception {
        GatedLogFiles files = new GatedLogFiles();
        try (LogDirectory directory = LogDirectory.open(root, FORCE_EVERY_64K, files, () -> 0L)) {
            List<SegmentLog> logs = List.of(directory.openLog("a", CONFIG, 0), directory.openLog("b", CONFIG, 0),
                    directory.openLog("c", CONFIG, 0));
            files.close();
            assertTrue(await(logs.get(0).appendAsLeader(records(1, 1, "small"), 0, Durability.PAGE_CACHE)).appended());
            assertTrue(await(logs.get(1).appendAsLeader(records(1, 1, "small"), 0, Durability.PAGE_CACHE)).appended());
            // Past the threshold: one background force covers the three segments, each on its own force thread.
            assertTrue(await(logs.get(2).appendAsLeader(big("big"), 0, Durability.PAGE_CACHE)).appended());
            LogFixtures.waitFor("three forces held at the gate at once", () -> files.held.get() == 3);
            files.open();
            for (SegmentLog log : logs) {
                LogFixtures.waitFor("log " + log.name() + " to be durable", () -> log.durableEndOffset() == 1);
            }
        }
    }

    @Test
    void fsyncAppendsAndTruncationsWaitForTheBackgroundForceInFlight() throws Exception {
        GatedLogFiles files = new GatedLogFiles();
        try (LogDirectory directory = LogDirectory.open(root, FORCE_EVERY_64K, files, () -> 0L)) {
            SegmentLog log = directory.openLog("a", CONFIG, 0);
            append(log, records(3, 1, "durable"), 0, Durability.FSYNC);
            files.close();
            assertTrue(await(log.appendAsLeader(big("cached"), 0, Durability.PAGE_CACHE)).appended());
            files.awaitHeld();
            CompletableFuture<AppendResult> synced = log.appendAsLeader(records(1, 1, "synced"), 0, Durability.FSYNC);
            CompletableFuture<Long> truncated = log.truncateTo(3); // to a batch boundary: drops "cached" and "synced"
            assertThrows(TimeoutException.class, () -> synced.get(300, TimeUnit.MILLISECONDS),
                    "an fsync append is not acknowledged while an earlier force is held");
            assertFalse(truncated.isDone(), "a truncation does not race the background force");
            files.open();
            assertTrue(await(synced).appended());
            assertEquals(5, log.durableEndOffset(), "the group commit covers the background force's bytes and its own");
            assertEquals(3L, await(truncated));
            assertEquals(3, log.durableEndOffset());
            assertEquals(3, LogFixtures.readAll(log).size());
        }
    }

    @Test
    void aFailedBackgroundForceTakesTheDirectoryOffline() {
        FaultyLogFiles files = new FaultyLogFiles();
        try (LogDirectory directory = LogDirectory.open(root, FORCE_EVERY_64K, files, () -> 0L)) {
            SegmentLog log = directory.openLog("a", CONFIG, 0);
            files.failForcesAfter(0);
            assertTrue(await(log.appendAsLeader(big("x"), 0, Durability.PAGE_CACHE)).appended(),
                    "a page-cache append does not wait for the force");
            LogFixtures.waitFor("the directory to go offline", () -> !directory.isOnline());
            assertTrue(directory.failure().getMessage().contains("injected force failure"), directory.failure().getMessage());
            assertEquals(0, log.durableEndOffset());
            assertEquals(LogException.Kind.STORAGE_ERROR,
                    assertThrows(LogException.class, () -> log.appendAsLeader(records(1, 1, "y"), 0, Durability.PAGE_CACHE)).kind());
        }
    }

    /**
     * A truncation whose I/O fails after the file was cut leaves a log that opens again. The file was cut below what
     * log-state said was forced, and the next start refused the log ("log ends at offset 0 but had forced every
     * record below 2"), so the replica never came back (FaultScheduleProperties, seed 3049107917491052407). The
     * recovery point now goes down before the cut.
     */
    @Test
    void aLogWhoseTruncationFailedOpensAgain() throws Exception {
        Reopened reopened = reopenWithForcesFailing();
        LogDirectory directory = reopened.directory();
        SegmentLog log = reopened.log();
        try {
            assertThrows(Exception.class, () -> await(log.truncateTo(0)));
            assertFalse(directory.isOnline());
        } finally {
            directory.close();
        }
        try (LogDirectory again = LogDirectory.open(root, DirectoryConfig.DEFAULT, new FaultyLogFiles(), () -> 0L)) {
            SegmentLog opened = again.openLog("a", CONFIG, 0);
            assertTrue(opened.logEndOffset() <= 2, "opens, at the cut or before it: " + opened.logEndOffset());
        }
    }

    /**
     * Writes log "a" with two records in fsync mode and closes the directory cleanly (log-state then says every record
     * below 2 was forced), then opens it and the log again on a file layer whose forces all fail from now on.
     */
    private record Reopened(LogDirectory directory, SegmentLog log) {
    }

    private Reopened reopenWithForcesFailing() {
        try (LogDirectory first = LogDirectory.open(root, DirectoryConfig.DEFAULT, new FaultyLogFiles(), () -> 0L)) {
            append(first.openLog("a", CONFIG, 0), records(2, 1, "ok"), 0, Durability.FSYNC);
        }
        FaultyLogFiles files = new FaultyLogFiles();
        LogDirectory directory = LogDirectory.open(root, DirectoryConfig.DEFAULT, files, () -> 0L);
        SegmentLog log = directory.openLog("a", CONFIG, 0);
        assertEquals(2, log.logEndOffset());
        files.failForcesAfter(0);
        return new Reopened(directory, log);
    }

    @Test
    void anIoErrorTakesTheDirectoryOffline() {
        Reopened reopened = reopenWithForcesFailing();
        LogDirectory directory = reopened.directory();
        SegmentLog log = reopened.log();
        try {
            LogException e = assertThrows(LogException.class, () -> await(log.appendAsLeader(records(1, 1, "x"), 0, Durability.FSYNC)));
            assertEquals(LogException.Kind.STORAGE_ERROR, e.kind());
            assertFalse(directory.isOnline());
            assertTrue(directory.failure().getMessage().contains("injected force failure"), directory.failure().getMessage());
            LogException later = assertThrows(LogException.class, () -> log.appendAsLeader(records(1, 1, "y"), 0, Durability.PAGE_CACHE));
            assertEquals(LogException.Kind.STORAGE_ERROR, later.kind(), "fails fast afterwards");
            assertEquals(LogException.Kind.STORAGE_ERROR,
                    assertThrows(LogException.class, () -> log.read(0, 1, 100, Long.MAX_VALUE)).kind());
            assertEquals(LogException.Kind.STORAGE_ERROR,
                    assertThrows(LogException.class, () -> directory.openLog("b", CONFIG, 0)).kind());
        } finally {
            directory.close();
        }
    }

    @Test
    void aWriteErrorFailsPendingAppends() {
        FaultyLogFiles files = new FaultyLogFiles();
        try (LogDirectory directory = LogDirectory.open(root, DirectoryConfig.DEFAULT, files, () -> 0L)) {
            SegmentLog log = directory.openLog("a", CONFIG, 0);
            files.failWritesAfter(0);
            LogException e = assertThrows(LogException.class, () -> await(log.appendAsLeader(records(1, 1, "x"), 0, Durability.PAGE_CACHE)));
            assertEquals(LogException.Kind.STORAGE_ERROR, e.kind());
            assertTrue(e.getMessage().contains("injected write failure"), e.getMessage());
        }
    }

    @Test
    void readersRunConcurrentlyWithAppendsAndSeeOnlyWholeBatches() throws Exception {
        try (LogDirectory directory = LogDirectory.open(root, DirectoryConfig.DEFAULT)) {
            SegmentLog log = directory.openLog("a", CONFIG.withSegmentBytes(128 * 1024).withIndexIntervalBytes(512), 0);
            AtomicBoolean done = new AtomicBoolean();
            ConcurrentLinkedQueue<Throwable> errors = new ConcurrentLinkedQueue<>();
            List<Thread> readers = startReaders(2, done, errors, (index, random) -> {
                long end = log.writtenEndOffset();
                if (end == 0) {
                    return;
                }
                long from = random.nextLong(end);
                for (LogRecord r : log.read(from, 50, 1 << 20, Long.MAX_VALUE)) {
                    String expected = "rec-" + r.offset();
                    if (!expected.equals(LogFixtures.text(r))) {
                        throw new AssertionError("offset " + r.offset() + " holds " + LogFixtures.text(r));
                    }
                }
            });
            long next = 0;
            List<CompletableFuture<AppendResult>> inFlight = new ArrayList<>();
            for (int b = 0; b < 2000; b++) {
                List<AppendRecord> batch = new ArrayList<>();
                for (int i = 0; i < 5; i++) {
                    batch.add(LogFixtures.record(b, "rec-" + (next + i)));
                }
                next += 5;
                CompletableFuture<AppendResult> f = log.appendAsLeader(batch, 0, Durability.PAGE_CACHE);
                inFlight.add(f);
                if (inFlight.size() >= 64) {
                    await(inFlight.remove(0));
                }
            }
            for (CompletableFuture<AppendResult> f : inFlight) {
                await(f);
            }
            done.set(true);
            for (Thread r : readers) {
                r.join(30_000);
            }
            assertTrue(errors.isEmpty(), () -> "reader failed: " + errors.peek());
            assertEquals(10_000, log.writtenEndOffset());
            assertTrue(log.segmentCount() > 1);
        }
    }

    @Test
    void readersRacingTruncationsSeeWholeRecordsOrAMissingOffsetNeverCorruption() throws Exception {
        long seed = t0();
        java.util.Random random = new java.util.Random(seed);
        try (LogDirectory directory = LogDirectory.open(root, DirectoryConfig.DEFAULT)) {
            SegmentLog log = directory.openLog("a", CONFIG.withSegmentBytes(64 * 1024).withIndexIntervalBytes(256), 0);
            AtomicBoolean done = new AtomicBoolean();
            ConcurrentLinkedQueue<Throwable> errors = new ConcurrentLinkedQueue<>();
            java.util.concurrent.atomic.AtomicLong reads = new java.util.concurrent.atomic.AtomicLong();
            List<Thread> readers = startReaders(2, done, errors, (index, r) -> {
                long end = log.writtenEndOffset();
                if (end == 0) {
                    return;
                }
                // Near the end, where the truncations cut.
                long from = Math.max(0, end - 1 - r.nextInt(120));
                try {
                    if (index == 1) {
                        log.readSlice(from, 4096, Long.MAX_VALUE).close();
                    } else {
                        for (LogRecord rec : log.read(from, 50, 1 << 20, Long.MAX_VALUE)) {
                            String text = LogFixtures.text(rec);
                            if (!text.endsWith("-" + rec.offset())) {
                                throw new AssertionError("offset " + rec.offset() + " holds " + text);
                            }
                        }
                    }
                    reads.incrementAndGet();
                } catch (LogException e) {
                    if (e.kind() != LogException.Kind.OFFSET_OUT_OF_RANGE) {
                        throw e;
                    }
                }
            });
            long next = 0;
            for (int round = 0; round < 300 && errors.isEmpty(); round++) {
                List<CompletableFuture<AppendResult>> inFlight = new ArrayList<>();
                for (int b = 0; b < 10; b++) {
                    List<AppendRecord> batch = new ArrayList<>();
                    for (int i = 0; i < 5; i++) {
                        batch.add(LogFixtures.record(round, "r" + round + "-" + "x".repeat(random.nextInt(200)) + "-" + (next + i)));
                    }
                    next += 5;
                    inFlight.add(log.appendAsLeader(batch, round, Durability.PAGE_CACHE));
                }
                for (CompletableFuture<AppendResult> f : inFlight) {
                    assertTrue(await(f).appended());
                }
                next = await(log.truncateTo(Math.max(0, next - 1 - random.nextInt(60))));
            }
            done.set(true);
            for (Thread r : readers) {
                r.join(30_000);
            }
            assertTrue(errors.isEmpty(), () -> "seed " + seed + ": a reader failed: " + errors.peek());
            assertTrue(reads.get() > 100, "the readers read: " + reads.get());
        }
    }

    @FunctionalInterface
    private interface ReaderStep {
        void run(int index, java.util.Random random) throws Exception;
    }

    /** Starts {@code count} threads that repeat {@code step} (each with its own printed seed) until {@code done}; the first error stops a thread. */
    private static List<Thread> startReaders(int count, AtomicBoolean done, ConcurrentLinkedQueue<Throwable> errors, ReaderStep step) {
        List<Thread> readers = new ArrayList<>();
        for (int t = 0; t < count; t++) {
            int index = t;
            java.util.Random random = new java.util.Random(t0());
            Thread reader = new Thread(() -> {
                while (!done.get()) {
                    try {
                        step.run(index, random);
                    } catch (Throwable e) {
                        errors.add(e);
                        return;
                    }
                }
            });
            reader.start();
            readers.add(reader);
        }
        return readers;
    }

    private static long t0() {
        long seed = System.nanoTime();
        System.out.println("reader seed " + seed);
        return seed;
    }

    @Test
    void followerAppendOfManyBatchesCompletesOnceAllAreDurable() throws Exception {
        try (LogDirectory directory = LogDirectory.open(root, DirectoryConfig.DEFAULT)) {
            SegmentLog leader = directory.openLog("l", CONFIG.withSegmentBytes(64 * 1024), 0);
            SegmentLog follower = directory.openLog("f", CONFIG.withSegmentBytes(64 * 1024), 0);
            for (int i = 0; i < 100; i++) {
                append(leader, List.of(AppendRecord.of(i, new byte[1500])), i / 30, Durability.PAGE_CACHE);
            }
            long offset = 0;
            while (offset < leader.logEndOffset()) {
                ByteBuffer bytes;
                try (FileSlice slice = leader.readSlice(offset, 20_000, Long.MAX_VALUE)) {
                    bytes = slice.read();
                    offset = slice.nextOffset();
                }
                AppendResult r = await(follower.appendAsFollower(bytes, Durability.FSYNC));
                assertEquals(offset - 1, r.lastOffset());
                assertEquals(offset, follower.durableEndOffset());
            }
            assertEquals(leader.epochHistory(), follower.epochHistory());
            assertEquals(LogFixtures.readAll(leader).stream().map(LogRecord::offset).toList(),
                    LogFixtures.readAll(follower).stream().map(LogRecord::offset).toList());
        }
    }

    /** Real files with a page cache id of the test's choosing, recording forced paths, and failing forces on request. */
    private static final class BootFiles extends dev.segstore.log.io.ForwardingLogFiles {
        final String id;
        final List<String> forced = new java.util.concurrent.CopyOnWriteArrayList<>();
        volatile boolean failForces;

        BootFiles(String id) {
            this.id = id;
        }

        @Override
        public String pageCacheId() {
            return id;
        }

        @Override
        public dev.segstore.log.io.LogChannel open(Path file, boolean create) throws java.io.IOException {
            return new dev.segstore.log.io.ForwardingLogChannel(super.open(file, create)) {
                @Override
                public void force() throws java.io.IOException {
                    if (failForces) {
                        throw new java.io.IOException("injected force failure");
                    }
                    forced.add(file.getParent().getFileName() + "/" + file.getFileName());
                    super.force();
                }
            };
        }
    }

    @Test
    void thePageCacheIdIsGivenOnceTheNewestSegmentOfEachLogIsForced() throws Exception {
        try (LogDirectory directory = LogDirectory.open(root, DirectoryConfig.DEFAULT, new BootFiles("boot-1"), () -> 0L)) {
            SegmentLog a = directory.openLog("a", CONFIG.withSegmentBytes(64 * 1024), 0);
            for (int i = 0; i < 120; i++) { // ~120 KiB: at least one roll
                append(a, List.of(AppendRecord.of(i, new byte[1000])), 0, Durability.PAGE_CACHE);
            }
            append(directory.openLog("b", CONFIG, 0), records(3, 1, "b"), 0, Durability.PAGE_CACHE);
        }
        List<String> newestA;
        try (var files = java.nio.file.Files.list(root.resolve("a"))) {
            newestA = files.map(f -> f.getFileName().toString()).filter(n -> n.endsWith(".log")).sorted().toList();
        }
        assertTrue(newestA.size() >= 2, "log a rolled: " + newestA);

        BootFiles files = new BootFiles("boot-1");
        try (LogDirectory directory = LogDirectory.open(root, DirectoryConfig.DEFAULT, files, () -> 0L)) {
            assertEquals("boot-1", directory.pageCacheIdAfterForcing());
            assertEquals(List.of("a/" + newestA.get(newestA.size() - 1), "b/00000000000000000000.log"), files.forced,
                    "the newest segment of each log, and nothing else");
        }
        BootFiles failing = new BootFiles("boot-1");
        failing.failForces = true;
        try (LogDirectory directory = LogDirectory.open(root, DirectoryConfig.DEFAULT, failing, () -> 0L)) {
            assertEquals("", directory.pageCacheIdAfterForcing(), "a failed force may have lost bytes: no id");
        }
        BootFiles unknown = new BootFiles("");
        try (LogDirectory directory = LogDirectory.open(root, DirectoryConfig.DEFAULT, unknown, () -> 0L)) {
            assertEquals("", directory.pageCacheIdAfterForcing());
            assertEquals(List.of(), unknown.forced, "no id to give: nothing forced");
        }
    }

    @Test
    void realFilesNameTheKernelsBootWhereThereIsOne() throws Exception {
        Path bootId = Path.of("/proc/sys/kernel/random/boot_id");
        String id = dev.segstore.log.io.RealLogFiles.INSTANCE.pageCacheId();
        if (java.nio.file.Files.isReadable(bootId)) {
            assertEquals(java.nio.file.Files.readString(bootId).trim(), id);
            assertFalse(id.isEmpty());
        } else {
            assertEquals("", id);
        }
    }
}
