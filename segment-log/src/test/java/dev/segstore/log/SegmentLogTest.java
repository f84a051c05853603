package dev.segstore.log;

import dev.segstore.log.epoch.EpochEndOffset;
import dev.segstore.log.format.RecordBatch;
import dev.segstore.log.io.ForwardingLogFiles;
import dev.segstore.log.io.LogFiles;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

import static dev.segstore.log.LogFixtures.append;
import static dev.segstore.log.LogFixtures.await;
import static dev.segstore.log.LogFixtures.readAll;
import static dev.segstore.log.LogFixtures.record;
import static dev.segstore.log.LogFixtures.records;
import static dev.segstore.log.LogFixtures.text;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(60)
class SegmentLogTest {
    private static final LogConfig SMALL = LogConfig.DEFAULT.withSegmentBytes(64 * 1024).withIndexIntervalBytes(256);

    @TempDir
    Path root;
    private final AtomicLong clock = new AtomicLong(1_000_000);
    private LogDirectory directory;

    @BeforeEach
    void open() {
        directory = LogDirectory.open(root, DirectoryConfig.DEFAULT, dev.segstore.log.io.RealLogFiles.INSTANCE, clock::get);
    }

    @AfterEach
    void close() {
        directory.close();
    }

    private void reopenDirectory() {
        directory.close();
        open();
    }

    @Test
    void leaderAppendAssignsOffsetsAndReadsBack() {
        SegmentLog log = directory.openLog("a", SMALL, 0);
        AppendResult first = append(log, records(3, 100, "x"), 0, Durability.FSYNC);
        AppendResult second = append(log, records(2, 200, "y"), 0, Durability.PAGE_CACHE);
        assertEquals(0, first.baseOffset());
        assertEquals(2, first.lastOffset());
        assertEquals(3, second.baseOffset());
        assertEquals(5, log.logEndOffset());
        List<LogRecord> all = readAll(log);
        assertEquals(List.of("x0", "x1", "x2", "y0", "y1"), all.stream().map(LogFixtures::text).toList());
        assertEquals(List.of(0L, 1L, 2L, 3L, 4L), all.stream().map(LogRecord::offset).toList());
        assertEquals(201, all.get(4).timestamp());
    }

    @Test
    void aWritersEncodedBatchIsCheckedStampedAndStoredAsItIs() {
        SegmentLog log = directory.openLog("a", SMALL, 0);
        append(log, records(2, 100, "x"), 3, Durability.FSYNC);
        ByteBuffer batch = RecordBatch.encode(999, 0, -1, -1, records(3, 200, "w"));
        AppendResult r = await(log.appendEncodedAsLeader(batch, 3, 42, 7, Durability.FSYNC));
        assertEquals(2, r.baseOffset(), "the log's next offset, not the writer's");
        assertEquals(4, r.lastOffset());
        assertEquals(List.of("x0", "x1", "w0", "w1", "w2"), readAll(log).stream().map(LogFixtures::text).toList());
        try (FileSlice slice = log.readSlice(2, Integer.MAX_VALUE, Long.MAX_VALUE)) {
            dev.segstore.log.format.BatchView v = dev.segstore.log.format.BatchView.at(slice.read());
            v.verify();
            assertEquals(3, v.leaderEpoch());
            assertEquals(42, v.producerId());
            assertEquals(7, v.baseSequence());
        } catch (java.io.IOException e) {
            throw new AssertionError(e);
        }
        ByteBuffer damaged = RecordBatch.encode(0, 0, -1, -1, records(2, 300, "d"));
        damaged.put(damaged.limit() - 1, (byte) (damaged.get(damaged.limit() - 1) ^ 1));
        LogException e = assertThrows(LogException.class, () -> log.appendEncodedAsLeader(damaged, 3, -1, -1, Durability.FSYNC));
        assertEquals(LogException.Kind.INVALID_ARGUMENT, e.kind());
        assertEquals(5, log.logEndOffset(), "nothing written");
        assertEquals(LogException.Kind.INVALID_ARGUMENT, assertThrows(LogException.class, () -> log.appendEncodedAsLeader(
                RecordBatch.encode(0, 0, -1, -1, records(1, 1, "old")), 2, -1, -1, Durability.FSYNC)).kind(),
                "an epoch older than the log's latest");
    }

    @Test
    void keysTagsAndHeadersRoundTrip() {
        SegmentLog log = directory.openLog("a", SMALL, 0);
        AppendRecord r = new AppendRecord("k-é", List.of("t1", "t2"), 42, List.of(new LogHeader("h", "v")), new byte[] {1, 2, 3});
        append(log, List.of(r, record(41, "p")), 3, Durability.FSYNC);
        List<LogRecord> back = readAll(log);
        assertEquals("k-é", back.get(0).key());
        assertEquals(List.of("t1", "t2"), back.get(0).tags());
        assertEquals(List.of(new LogHeader("h", "v")), back.get(0).headers());
        assertArrayEquals(new byte[] {1, 2, 3}, back.get(0).payload());
        assertEquals(3, back.get(0).leaderEpoch());
        assertEquals(null, back.get(1).key());
        assertEquals(41, back.get(1).timestamp());
    }

    @Test
    void newLogStartsAtInitialOffset() {
        SegmentLog log = directory.openLog("a", SMALL, 1000);
        assertEquals(1000, log.logStartOffset());
        assertEquals(1000, append(log, records(1, 1, "x"), 0, Durability.FSYNC).baseOffset());
    }

    @Test
    void readHonoursLimitsAndUpperBound() {
        SegmentLog log = directory.openLog("a", SMALL, 0);
        for (int i = 0; i < 10; i++) {
            append(log, records(10, i * 10, "b" + i + "-"), 0, Durability.PAGE_CACHE);
        }
        assertEquals(7, log.read(13, 7, 1 << 20, Long.MAX_VALUE).size());
        assertEquals(13, log.read(13, 7, 1 << 20, Long.MAX_VALUE).get(0).offset());
        assertEquals(List.of(13L, 14L), log.read(13, 100, 1 << 20, 15).stream().map(LogRecord::offset).toList());
        assertEquals(1, log.read(13, 100, 1, Long.MAX_VALUE).size(), "at least one record even above maxBytes");
        assertEquals(0, log.read(100, 10, 100, Long.MAX_VALUE).size());
        LogException e = assertThrows(LogException.class, () -> log.read(101, 10, 100, Long.MAX_VALUE));
        assertEquals(LogException.Kind.OFFSET_OUT_OF_RANGE, e.kind());
        // Keys and tags only (the index's read): the same records, offsets and keys, with no payload or headers.
        List<LogRecord> whole = log.read(5, 100, 1 << 20, 95);
        List<LogRecord> light = log.readKeysAndTags(5, 100, 1 << 20, 95);
        assertEquals(whole.stream().map(r -> r.offset() + " " + r.key() + " " + r.tags()).toList(),
                light.stream().map(r -> r.offset() + " " + r.key() + " " + r.tags()).toList());
        assertTrue(light.stream().allMatch(r -> r.payload().length == 0 && r.headers().isEmpty()), "a payload was read into a record");
        assertTrue(whole.stream().anyMatch(r -> r.payload().length > 0));
        assertEquals(LogException.Kind.OFFSET_OUT_OF_RANGE, assertThrows(LogException.class, () -> log.readKeysAndTags(101, 10, 100, Long.MAX_VALUE)).kind());
    }

    @Test
    void rollsBySizeAndReadsAcrossSegments() {
        SegmentLog log = directory.openLog("a", SMALL, 0);
        byte[] payload = new byte[1000];
        for (int i = 0; i < 300; i++) {
            append(log, List.of(AppendRecord.of(i, payload)), 0, Durability.PAGE_CACHE);
        }
        assertTrue(log.segmentCount() >= 4, "segments: " + log.segmentCount());
        List<LogRecord> all = readAll(log);
        assertEquals(300, all.size());
        for (int i = 0; i < 300; i++) {
            assertEquals(i, all.get(i).offset());
        }
        assertEquals(150, log.read(150, 1, 100, Long.MAX_VALUE).get(0).offset());
    }

    @Test
    void rollsByAge() {
        SegmentLog log = directory.openLog("a", SMALL.withSegmentMs(1000), 0);
        append(log, records(1, 1, "a"), 0, Durability.PAGE_CACHE);
        clock.addAndGet(999);
        append(log, records(1, 2, "b"), 0, Durability.PAGE_CACHE);
        assertEquals(1, log.segmentCount());
        clock.addAndGet(1);
        append(log, records(1, 3, "c"), 0, Durability.PAGE_CACHE);
        assertEquals(2, log.segmentCount());
        assertEquals(3, readAll(log).size());
    }

    @Test
    void cleanReopenKeepsEverything() {
        SegmentLog log = directory.openLog("a", SMALL, 0);
        byte[] payload = new byte[700];
        for (int i = 0; i < 200; i++) {
            append(log, List.of(AppendRecord.of(1000 + i, payload)), i / 50, Durability.PAGE_CACHE);
        }
        long end = log.logEndOffset();
        int segments = log.segmentCount();
        reopenDirectory();
        SegmentLog again = directory.openLog("a", SMALL, 0);
        assertEquals(end, again.logEndOffset());
        assertEquals(segments, again.segmentCount());
        assertEquals(3, again.latestEpoch());
        assertEquals(200, readAll(again).size());
        assertEquals(150, again.offsetForTimestamp(1150, Long.MAX_VALUE).getAsLong());
        assertEquals(200, append(again, records(1, 5000, "z"), 3, Durability.FSYNC).baseOffset());
    }

    @Test
    void offsetForTimestampFindsFirstRecordAtOrAfter() {
        SegmentLog log = directory.openLog("a", SMALL, 0);
        // timestamps are not monotonic: 10, 30, 20, 40, ...
        long[] ts = {10, 30, 20, 40, 35, 50};
        for (long t : ts) {
            append(log, List.of(record(t, "t" + t)), 0, Durability.PAGE_CACHE);
        }
        assertEquals(0, log.offsetForTimestamp(5, Long.MAX_VALUE).getAsLong());
        assertEquals(1, log.offsetForTimestamp(20, Long.MAX_VALUE).getAsLong());
        assertEquals(3, log.offsetForTimestamp(31, Long.MAX_VALUE).getAsLong());
        assertEquals(5, log.offsetForTimestamp(45, Long.MAX_VALUE).getAsLong());
        assertTrue(log.offsetForTimestamp(51, Long.MAX_VALUE).isEmpty());
        assertTrue(log.offsetForTimestamp(45, 5).isEmpty(), "above the upper bound");
    }

    @Test
    void followerAppendKeepsBytesAndRejectsGapsAndOverlaps() throws Exception {
        SegmentLog leader = directory.openLog("leader", SMALL, 0);
        SegmentLog follower = directory.openLog("follower", SMALL, 0);
        append(leader, records(3, 1, "a"), 1, Durability.FSYNC);
        append(leader, records(2, 5, "b"), 2, Durability.FSYNC);
        ByteBuffer fetched;
        try (FileSlice slice = leader.readSlice(0, 1 << 20, Long.MAX_VALUE)) {
            assertEquals(0, slice.baseOffset());
            assertEquals(5, slice.nextOffset());
            fetched = slice.read();
        }
        AppendResult r = await(follower.appendAsFollower(fetched.duplicate(), Durability.FSYNC));
        assertEquals(0, r.baseOffset());
        assertEquals(4, r.lastOffset());
        assertEquals(readAll(leader).stream().map(LogFixtures::text).toList(), readAll(follower).stream().map(LogFixtures::text).toList());
        assertEquals(2, follower.latestEpoch());
        assertEquals(new EpochEndOffset(1, 3), follower.endOffsetForEpoch(1));
        try (FileSlice slice = follower.readSlice(0, 1 << 20, Long.MAX_VALUE)) {
            assertEquals(fetched, slice.read(), "replica bytes identical");
        }
        LogException overlap = assertThrows(LogException.class, () -> follower.appendAsFollower(fetched.duplicate(), Durability.FSYNC));
        assertEquals(LogException.Kind.OFFSET_MISMATCH, overlap.kind());
        ByteBuffer gap = RecordBatch.encode(9, 2, -1, -1, records(1, 1, "g"));
        LogException gapError = assertThrows(LogException.class, () -> follower.appendAsFollower(gap, Durability.FSYNC));
        assertEquals(LogException.Kind.OFFSET_MISMATCH, gapError.kind());
        ByteBuffer bad = RecordBatch.encode(5, 2, -1, -1, records(1, 1, "g"));
        bad.put(bad.limit() - 1, (byte) (bad.get(bad.limit() - 1) ^ 1));
        assertEquals(LogException.Kind.CORRUPT_DATA,
                assertThrows(LogException.class, () -> follower.appendAsFollower(bad, Durability.FSYNC)).kind());
        assertEquals(5, follower.logEndOffset(), "nothing appended by rejected calls");
    }

    @Test
    void sliceRespectsMaxBytesAndUpperBoundAtBatchBoundaries() throws Exception {
        SegmentLog log = directory.openLog("a", SMALL, 0);
        for (int i = 0; i < 20; i++) {
            append(log, records(5, i, "s"), 0, Durability.PAGE_CACHE);
        }
        try (FileSlice s = log.readSlice(7, 1, Long.MAX_VALUE)) {
            assertEquals(5, s.baseOffset(), "starts at the batch holding offset 7");
            assertEquals(10, s.nextOffset(), "one whole batch even above maxBytes");
        }
        try (FileSlice s = log.readSlice(0, 1 << 20, 50)) {
            assertEquals(50, s.nextOffset());
        }
        try (FileSlice s = log.readSlice(100, 1 << 20, Long.MAX_VALUE)) {
            assertTrue(s.isEmpty());
        }
    }

    @Test
    void truncateToRemovesTailAndEpochs() {
        SegmentLog log = directory.openLog("a", SMALL, 0);
        byte[] payload = new byte[900];
        for (int i = 0; i < 150; i++) {
            append(log, List.of(AppendRecord.of(i, payload)), i < 100 ? 4 : 5, Durability.PAGE_CACHE);
        }
        assertTrue(log.segmentCount() > 2);
        assertEquals(new EpochEndOffset(4, 100), log.endOffsetForEpoch(4));
        long end = await(log.truncateTo(70));
        assertEquals(70, end);
        assertEquals(70, log.logEndOffset());
        assertEquals(4, log.latestEpoch());
        assertEquals(70, readAll(log).size());
        assertEquals(70, append(log, records(1, 1, "after"), 6, Durability.FSYNC).baseOffset());
        reopenDirectory();
        SegmentLog again = directory.openLog("a", SMALL, 0);
        assertEquals(71, again.logEndOffset());
        assertEquals("after0", text(readAll(again).get(70)));
        assertEquals(new EpochEndOffset(4, 70), again.endOffsetForEpoch(5));
    }

    @Test
    void truncateInsideABatchDropsTheWholeBatch() {
        SegmentLog log = directory.openLog("a", SMALL, 0);
        append(log, records(5, 1, "a"), 0, Durability.FSYNC);
        append(log, records(5, 1, "b"), 0, Durability.FSYNC);
        assertEquals(5, await(log.truncateTo(7)));
    }

    @Test
    void retentionDeletesOldSegmentsByTimeAndSize() {
        SegmentLog log = directory.openLog("a", SMALL.withRetention(10_000, -1), 0);
        byte[] payload = new byte[1000];
        for (int i = 0; i < 200; i++) {
            append(log, List.of(AppendRecord.of(i < 100 ? 1_000 : 50_000, payload)), 0, Durability.PAGE_CACHE);
        }
        int before = log.segmentCount();
        int deleted = log.deleteRetainedSegments(30_000);
        assertTrue(deleted >= 1, "deleted " + deleted);
        assertEquals(before - deleted, log.segmentCount());
        assertTrue(log.logStartOffset() > 0 && log.logStartOffset() <= 100, "start " + log.logStartOffset());
        assertEquals(LogException.Kind.OFFSET_OUT_OF_RANGE,
                assertThrows(LogException.class, () -> log.read(0, 1, 100, Long.MAX_VALUE)).kind());
        assertEquals(200 - log.logStartOffset(), readAll(log).size());

        SegmentLog sized = directory.openLog("b", SMALL.withRetention(-1, 100_000), 0);
        for (int i = 0; i < 400; i++) {
            append(sized, List.of(AppendRecord.of(i, payload)), 0, Durability.PAGE_CACHE);
        }
        sized.deleteRetainedSegments(0);
        assertTrue(sized.sizeInBytes() < 100_000 + 64 * 1024, "size " + sized.sizeInBytes());
        assertTrue(sized.sizeInBytes() >= 100_000 - 64 * 1024);
    }

    @Test
    void queueFullIsAResultNotABlockedThread() {
        directory.close();
        directory = LogDirectory.open(root, DirectoryConfig.DEFAULT.withQueueLimits(4096, 1000)
                        .withFlushPolicy(new FlushPolicy(60_000_000_000L, Long.MAX_VALUE, 60_000_000_000L, Long.MAX_VALUE)),
                dev.segstore.log.io.RealLogFiles.INSTANCE, clock::get);
        SegmentLog log = directory.openLog("a", SMALL, 0);
        // The flush policy waits a minute with a non-empty queue; fill it with fsync appends that wait.
        int refused = 0;
        for (int i = 0; i < 100 && refused == 0; i++) {
            AppendResult r = log.appendAsLeader(List.of(AppendRecord.of(1, new byte[500])), 0, Durability.FSYNC)
                    .getNow(null);
            if (r != null && r.status() == AppendResult.Status.QUEUE_FULL) {
                refused++;
            }
        }
        assertEquals(1, refused, "back-pressure reported once the in-flight bytes exceed 4 KiB");
    }

    @Test
    void rejectsBadArguments() {
        SegmentLog log = directory.openLog("a", SMALL, 0);
        assertEquals(LogException.Kind.INVALID_ARGUMENT, assertThrows(LogException.class,
                () -> log.appendAsLeader(List.of(), 0, Durability.FSYNC)).kind());
        append(log, records(1, 1, "x"), 5, Durability.FSYNC);
        assertEquals(LogException.Kind.INVALID_ARGUMENT, assertThrows(LogException.class,
                () -> log.appendAsLeader(records(1, 1, "x"), 4, Durability.FSYNC)).kind());
        assertEquals(LogException.Kind.RECORD_TOO_LARGE, assertThrows(LogException.class,
                () -> log.appendAsLeader(List.of(AppendRecord.of(1, new byte[33 << 20])), 5, Durability.FSYNC)).kind());
        assertEquals(LogException.Kind.INVALID_ARGUMENT, assertThrows(LogException.class,
                () -> directory.openLog("../x", SMALL, 0)).kind());
        assertEquals(LogException.Kind.ILLEGAL_STATE, assertThrows(LogException.class,
                () -> directory.openLog("a", SMALL, 0)).kind());
    }

    @Test
    void unexpectedFilesAndGarbageSegmentsAreClearErrors() throws Exception {
        SegmentLog log = directory.openLog("a", SMALL, 0);
        append(log, records(3, 1, "x"), 0, Durability.FSYNC);
        reopenDirectory();
        Files.writeString(root.resolve("a").resolve("notes.txt"), "hello");
        LogException stray = assertThrows(LogException.class, () -> directory.openLog("a", SMALL, 0));
        assertEquals(LogException.Kind.CORRUPT_DATA, stray.kind());
        assertTrue(stray.getMessage().contains("notes.txt"), stray.getMessage());
        Files.delete(root.resolve("a").resolve("notes.txt"));
        Files.write(root.resolve("a").resolve("00000000000000000000.log"), new byte[] {1, 2, 3, 4, 5});
        LogException garbage = assertThrows(LogException.class, () -> directory.openLog("a", SMALL, 0));
        assertEquals(LogException.Kind.CORRUPT_DATA, garbage.kind());
        assertTrue(garbage.getMessage().contains("00000000000000000000.log"), garbage.getMessage());
        Files.write(root.resolve("a").resolve("log-state"), new byte[] {9, 9});
        assertEquals(LogException.Kind.CORRUPT_DATA,
                assertThrows(LogException.class, () -> directory.openLog("a", SMALL, 0)).kind());
    }

    @Test
    void missingIndexesAreRebuilt() throws Exception {
        SegmentLog log = directory.openLog("a", SMALL, 0);
        for (int i = 0; i < 100; i++) {
            append(log, List.of(AppendRecord.of(i, new byte[900])), 0, Durability.PAGE_CACHE);
        }
        reopenDirectory();
        try (var files = Files.list(root.resolve("a"))) {
            for (Path p : files.filter(p -> p.toString().endsWith(".oix") || p.toString().endsWith(".tix")).toList()) {
                Files.delete(p);
            }
        }
        SegmentLog again = directory.openLog("a", SMALL, 0);
        assertEquals(100, readAll(again).size());
        assertEquals(60, again.offsetForTimestamp(60, Long.MAX_VALUE).getAsLong());
        assertEquals(77, again.read(77, 1, 10, Long.MAX_VALUE).get(0).offset());
    }

    @Test
    void deleteLogRemovesItsFiles() {
        SegmentLog log = directory.openLog("gone", SMALL, 0);
        append(log, records(3, 1, "x"), 0, Durability.FSYNC);
        assertEquals(List.of("gone"), directory.logNames());
        await(directory.deleteLog("gone"));
        assertEquals(List.of(), directory.logNames());
        assertEquals(0, directory.openLog("gone", SMALL, 0).logEndOffset());
    }

    /**
     * A seal forces its log on a force thread, not the I/O thread: a roll seals the old segment on the replicas that
     * take the next one's first writes, which must not wait behind the force. A truncation of the sealed log (a Run)
     * still waits for it. With the seal's force held, another log's append completes; the old code's seal held the
     * directory's I/O thread (and its forces) until then.
     */
    @Test
    void aSealsForceHoldsNoOtherLogsWritesAndALaterRunWaitsForIt() throws Exception {
        java.util.concurrent.CountDownLatch forceMayEnd = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.atomic.AtomicBoolean holdForces = new java.util.concurrent.atomic.AtomicBoolean();
        LogFiles holding = new ForwardingLogFiles() {
            @Override
            public dev.segstore.log.io.LogChannel open(Path file, boolean create) throws IOException {
                return new dev.segstore.log.io.ForwardingLogChannel(super.open(file, create)) {
                    @Override
                    public void force() throws IOException {
                        // Held: the sealed log's forces on a force thread (the seal's), not the I/O thread's flushes.
                        if (holdForces.get() && file.getParent().getFileName().toString().equals("sealed")
                                && !Thread.currentThread().getName().startsWith("segstore-io-")) {
                            try {
                                forceMayEnd.await();
                            } catch (InterruptedException e) {
                                throw new java.io.InterruptedIOException();
                            }
                        }
                        super.force();
                    }
                };
            }
        };
        directory.close();
        // No background force (a force thread too) in this test: only the seal's force is held.
        directory = LogDirectory.open(root, DirectoryConfig.DEFAULT.withFlushPolicy(
                new FlushPolicy(2_000_000L, 8L << 20, Long.MAX_VALUE / 4, Long.MAX_VALUE / 4)), holding, clock::get);
        SegmentLog sealedLog = directory.openLog("sealed", SMALL, 0);
        SegmentLog other = directory.openLog("other", SMALL, 0);
        append(sealedLog, records(2, 1, "x"), 2, Durability.PAGE_CACHE);
        append(sealedLog, records(2, 1, "z"), 2, Durability.PAGE_CACHE);
        holdForces.set(true);
        java.util.concurrent.CompletableFuture<Long> sealing = sealedLog.seal();
        List<String> order = java.util.Collections.synchronizedList(new java.util.ArrayList<>());
        sealing.whenComplete((end, e) -> order.add("seal " + (e == null ? "durable" : "refused")));
        java.util.concurrent.CompletableFuture<Long> repair;
        try {
            // Page-cache appends of another log are written and acknowledged meanwhile.
            AppendResult meanwhile = other.appendAsLeader(records(2, 1, "y"), 2, Durability.PAGE_CACHE)
                    .get(10, java.util.concurrent.TimeUnit.SECONDS);
            assertEquals(0, meanwhile.baseOffset());
            assertFalse(sealing.isDone(), "the seal's force is still held");
            repair = sealedLog.unsealAndTruncateTo(2);
            repair.whenComplete((end, e) -> order.add("truncated"));
            // The I/O thread reaches the truncation and waits there for the seal (without that wait it would run it).
            long deadline = System.nanoTime() + java.util.concurrent.TimeUnit.SECONDS.toNanos(10);
            while (!repair.isDone() && !ioThreadWaitsForAnOffloadedTask() && System.nanoTime() < deadline) {
                Thread.onSpinWait();
            }
            assertFalse(repair.isDone(), "the truncation ran while the seal's force was held");
            assertTrue(ioThreadWaitsForAnOffloadedTask(), "the I/O thread waits for the seal before the truncation");
        } finally {
            forceMayEnd.countDown();
        }
        assertEquals(2, await(repair));
        // The seal was overtaken by the repair's unseal: it says so rather than that the log is sealed durably.
        assertEquals(LogException.Kind.ILLEGAL_STATE, assertThrows(LogException.class, () -> await(sealing)).kind());
        assertEquals(List.of("seal refused", "truncated"), order, "the truncation, queued behind the seal, ran after it");
        assertEquals(2, sealedLog.logEndOffset());
    }

    private boolean ioThreadWaitsForAnOffloadedTask() {
        for (var e : Thread.getAllStackTraces().entrySet()) {
            if (e.getKey().getName().equals("segstore-io-" + root.getFileName())
                    && java.util.Arrays.stream(e.getValue()).anyMatch(f -> f.getMethodName().equals("awaitOffloaded"))) {
                return true;
            }
        }
        return false;
    }

    @Test
    void sealMakesTheLogImmutableAcrossRestarts() {
        SegmentLog log = directory.openLog("a", SMALL, 0);
        append(log, records(4, 1, "x"), 2, Durability.PAGE_CACHE);
        assertEquals(4, await(log.seal()));
        assertTrue(log.isSealed());
        assertEquals(LogException.Kind.ILLEGAL_STATE, assertThrows(LogException.class,
                () -> log.appendAsLeader(records(1, 1, "y"), 2, Durability.FSYNC)).kind());
        assertEquals(LogException.Kind.ILLEGAL_STATE, assertThrows(LogException.class, () -> log.truncateTo(1)).kind());
        assertEquals(4, readAll(log).size());
        reopenDirectory();
        SegmentLog again = directory.openLog("a", SMALL, 0);
        assertTrue(again.isSealed());
        assertEquals(4, again.logEndOffset());
        assertEquals(LogException.Kind.ILLEGAL_STATE, assertThrows(LogException.class,
                () -> again.appendAsLeader(records(1, 1, "y"), 2, Durability.FSYNC)).kind());
    }

    @Test
    void aSealedLogIsRepairedByUnsealingAndTruncatingAndCanBeSealedAgain() {
        SegmentLog log = directory.openLog("a", SMALL, 0);
        for (int i = 0; i < 4; i++) {
            append(log, records(1, 1, "x" + i), 2, Durability.FSYNC); // one batch each: truncation cuts at batch ends
        }
        await(log.seal());
        assertEquals(4, await(log.unsealAndTruncateTo(4)), "nothing past the point: no repair needed");
        assertTrue(log.isSealed(), "and the log stays sealed");
        assertEquals(2, await(log.unsealAndTruncateTo(2)));
        assertFalse(log.isSealed());
        append(log, records(3, 1, "z"), 3, Durability.FSYNC);
        assertEquals(5, log.logEndOffset());
        reopenDirectory();
        SegmentLog again = directory.openLog("a", SMALL, 0);
        assertFalse(again.isSealed(), "the repair survives a restart");
        assertEquals(5, again.logEndOffset());
        assertEquals(5, await(again.seal()));
        assertTrue(again.isSealed());
    }

    @Test
    void rollStartsANewSegmentOnlyWhenTheActiveOneHoldsData() {
        SegmentLog log = directory.openLog("a", SMALL, 0);
        assertEquals(0, log.roll());
        assertEquals(1, log.segmentCount());
        append(log, records(3, 1, "x"), 0, Durability.PAGE_CACHE);
        assertEquals(3, log.roll());
        assertEquals(2, log.segmentCount());
        append(log, records(2, 1, "y"), 0, Durability.FSYNC);
        assertEquals(5, readAll(log).size());
        assertEquals(3, log.read(3, 1, 10, Long.MAX_VALUE).get(0).offset());
    }

    /**
     * A roll opens the next segment's log on every replica at once, on the path of the writes waiting for it: creating
     * a log must cost its caller no force (it cost six, then two directory forces, 10 ms and more each while the
     * three replicas of a roll sealed the old segment on one disk). The directory entries are forced before any byte
     * of the new file is (a file lost in a crash can hold nothing counted durable), on a force thread meanwhile. A
     * segment file a log rolls to is the same. What it leaves out must still hold after a crash: right after the
     * creation, and after a first batch.
     */
    @Test
    void creatingALogForcesNoDirectoryOnItsCallersPathButBeforeItsFirstBytesAndWritesStateFilesOnlyWhenTheyHoldSomething()
            throws Exception {
        List<String> events = java.util.Collections.synchronizedList(new java.util.ArrayList<>());
        java.util.concurrent.CountDownLatch forcesMayRun = new java.util.concurrent.CountDownLatch(1);
        AtomicInteger replaces = new AtomicInteger();
        LogFiles recording = new ForwardingLogFiles() {
            @Override
            public void forceDirectory(Path dir) throws IOException {
                try {
                    forcesMayRun.await(); // held until the log is created: a force on the creator's path never returns
                } catch (InterruptedException e) {
                    throw new java.io.InterruptedIOException();
                }
                events.add("directory " + (dir.equals(root) ? "root" : dir.getFileName()));
                super.forceDirectory(dir);
            }

            @Override
            public dev.segstore.log.io.LogChannel open(Path file, boolean create) throws IOException {
                return new dev.segstore.log.io.ForwardingLogChannel(super.open(file, create)) {
                    @Override
                    public void force() throws IOException {
                        events.add("file " + file.getFileName());
                        super.force();
                    }
                };
            }

            @Override
            public void writeAtomically(Path file, byte[] content) throws IOException {
                replaces.incrementAndGet();
                super.writeAtomically(file, content);
            }
        };
        directory.close();
        directory = LogDirectory.open(root, DirectoryConfig.DEFAULT, recording, clock::get);
        java.util.concurrent.CompletableFuture<SegmentLog> creating =
                java.util.concurrent.CompletableFuture.supplyAsync(() -> directory.openLog("a", SMALL, 500));
        SegmentLog created = creating.get(10, java.util.concurrent.TimeUnit.SECONDS); // waits for no directory force
        assertEquals(List.of(), events, "forces while the directory forces were held");
        assertEquals(0, replaces.get(), "files replaced to create a log (log-state, the epoch checkpoint)");
        assertFalse(Files.exists(root.resolve("a").resolve(LogState.FILE)));
        assertFalse(Files.exists(root.resolve("a").resolve(SegmentLog.EPOCH_FILE)));
        forcesMayRun.countDown();
        append(created, records(1, 100, "w"), 1, Durability.FSYNC);
        int firstBytes = events.indexOf("file " + Segment.fileName(500, ".log"));
        assertTrue(firstBytes > 0 && events.subList(0, firstBytes).containsAll(List.of("directory a", "directory root")),
                "the log's entry and its file's forced before the file's bytes: " + events);
        // A segment file the log rolls to: its entry is forced before its bytes as well.
        int beforeRoll = events.size();
        assertEquals(501, created.roll());
        append(created, records(1, 100, "v"), 1, Durability.FSYNC);
        int rolledBytes = events.indexOf("file " + Segment.fileName(501, ".log"));
        assertTrue(rolledBytes > beforeRoll && events.subList(beforeRoll, rolledBytes).contains("directory a"),
                "the rolled-to file's entry forced before its bytes: " + events);
        directory.openLog("b", SMALL, 500);

        // A crash right after the creation: the log opens again, empty, where it was created.
        directory.halt();
        directory = LogDirectory.open(root, DirectoryConfig.DEFAULT, recording, clock::get);
        SegmentLog log = directory.openLog("b", SMALL, 0);
        assertEquals(500, log.logStartOffset());
        assertEquals(500, log.logEndOffset());

        // The first batch of an epoch writes the checkpoint before it; a crash then recovers the log as written.
        append(log, records(3, 100, "x"), 2, Durability.FSYNC);
        assertTrue(Files.exists(root.resolve("b").resolve(SegmentLog.EPOCH_FILE)));
        directory.halt();
        open();
        SegmentLog again = directory.openLog("b", SMALL, 0);
        assertEquals(500, again.logStartOffset());
        assertEquals(503, again.logEndOffset());
        assertEquals(List.of("x0", "x1", "x2"), readAll(again).stream().map(LogFixtures::text).toList());
        assertEquals(2, again.latestEpoch());
        // Opened again, it is an existing log: log-state is written, so a crash from here looks unclean.
        assertTrue(Files.exists(root.resolve("b").resolve(LogState.FILE)));
    }
}
