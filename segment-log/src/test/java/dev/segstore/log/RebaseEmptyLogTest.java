package dev.segstore.log;

import dev.segstore.log.epoch.EpochEntry;
import dev.segstore.log.format.FileHeader;
import dev.segstore.log.io.ForwardingLogFiles;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.OptionalLong;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;

import static dev.segstore.log.LogFixtures.append;
import static dev.segstore.log.LogFixtures.readAll;
import static dev.segstore.log.LogFixtures.records;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link SegmentLog#rebaseEmpty}: a log made now and left empty moves to start elsewhere (a storage node makes a
 * close ahead's next segment before the offset it starts at is known; issue 14 item 7), and a crash part way leaves an
 * empty log at one start or the other.
 */
@Timeout(60)
class RebaseEmptyLogTest {
    private static final LogConfig SMALL = LogConfig.DEFAULT.withSegmentBytes(64 * 1024).withIndexIntervalBytes(256);

    @TempDir
    Path root;
    private final AtomicLong clock = new AtomicLong(1_000_000);

    private LogDirectory open(dev.segstore.log.io.LogFiles files) {
        return LogDirectory.open(root, DirectoryConfig.DEFAULT, files, clock::get);
    }

    private List<String> filesOf(String log) throws IOException {
        try (Stream<Path> s = Files.list(root.resolve(log))) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    private static List<String> segmentFiles(long base) {
        return List.of(Segment.fileName(base, ".log"), Segment.fileName(base, ".oix"), Segment.fileName(base, ".tix"));
    }

    /** The batches of {@code leader} from {@code from}, as a fetch answer carries them. */
    private static ByteBuffer fetch(SegmentLog leader, long from) throws IOException {
        try (FileSlice slice = leader.readSlice(from, 1 << 20, Long.MAX_VALUE)) {
            return slice.read();
        }
    }

    @Test
    void aLogMadeNowMovesAndThenTakesRecordsReadsAndReopensFromItsNewStart() throws Exception {
        LogDirectory directory = open(dev.segstore.log.io.RealLogFiles.INSTANCE);
        SegmentLog log = directory.openLog("n", SMALL, 100);
        log.rebaseEmpty(100); // where it starts already: nothing to do
        assertEquals(100, log.logStartOffset());
        log.rebaseEmpty(2_500);
        assertEquals(2_500, log.logStartOffset());
        assertEquals(2_500, log.logEndOffset());
        assertEquals(2_500, log.writtenEndOffset());
        assertEquals(2_500, log.durableEndOffset());
        assertEquals(segmentFiles(2_500), filesOf("n"), "the files carry the new start; nothing is left of the old one");
        log.assignEpochAtEnd(4);
        // Enough batches for several index entries (interval 256 bytes): relative offsets count from the new start.
        for (int i = 0; i < 40; i++) {
            AppendResult r = append(log, records(3, 10_000 + i * 10L, "r" + i + "-"), 4, i % 2 == 0 ? Durability.FSYNC : Durability.PAGE_CACHE);
            assertEquals(2_500 + i * 3L, r.baseOffset());
        }
        List<LogRecord> all = readAll(log);
        assertEquals(120, all.size());
        assertEquals(2_500, all.get(0).offset());
        assertEquals("r0-0", LogFixtures.text(all.get(0)));
        assertEquals("r33-1", LogFixtures.text(log.read(2_600, 1, Integer.MAX_VALUE, Long.MAX_VALUE).get(0)),
                "a read found through the offset index");
        assertEquals(OptionalLong.of(2_500 + 20 * 3), log.offsetForTimestamp(10_200, Long.MAX_VALUE), "through the time index");
        directory.close();

        LogDirectory again = open(dev.segstore.log.io.RealLogFiles.INSTANCE);
        try {
            SegmentLog reopened = again.openLog("n", SMALL, 0);
            assertEquals(2_500, reopened.logStartOffset());
            assertEquals(2_620, reopened.logEndOffset());
            assertEquals("r33-1", LogFixtures.text(reopened.read(2_600, 1, Integer.MAX_VALUE, Long.MAX_VALUE).get(0)));
            assertEquals(4, reopened.latestEpoch());
        } finally {
            again.close();
        }
    }

    @Test
    void onlyALogMadeNowAndLeftUntouchedMoves() {
        LogDirectory directory = open(dev.segstore.log.io.RealLogFiles.INSTANCE);
        try {
            SegmentLog withRecords = directory.openLog("r", SMALL, 10);
            append(withRecords, records(1, 1, "x"), 0, Durability.FSYNC);
            assertEquals(LogException.Kind.ILLEGAL_STATE, assertThrows(LogException.class, () -> withRecords.rebaseEmpty(20)).kind());
            SegmentLog reopened = directory.openLog("o", SMALL, 10);
            reopened.close();
            SegmentLog openedAgain = directory.openLog("o", SMALL, 10);
            assertEquals(LogException.Kind.ILLEGAL_STATE, assertThrows(LogException.class, () -> openedAgain.rebaseEmpty(20)).kind(),
                    "a log opened from disk is not one made now (its state is written)");
            SegmentLog sealed = directory.openLog("s", SMALL, 10);
            LogFixtures.await(sealed.seal());
            assertEquals(LogException.Kind.ILLEGAL_STATE, assertThrows(LogException.class, () -> sealed.rebaseEmpty(20)).kind());
            SegmentLog fine = directory.openLog("f", SMALL, 10);
            assertEquals(LogException.Kind.INVALID_ARGUMENT, assertThrows(LogException.class, () -> fine.rebaseEmpty(-1)).kind());
            fine.rebaseEmpty(5); // to an earlier start too
            assertEquals(5, fine.logStartOffset());
            fine.rebaseEmpty(7); // and again, while still untouched
            assertEquals(7, fine.logStartOffset());
            fine.close();
            assertEquals(LogException.Kind.CLOSED, assertThrows(LogException.class, () -> fine.rebaseEmpty(9)).kind());
        } finally {
            directory.close();
        }
    }

    /** Counts atomic replaces (the leader-epoch checkpoint and the log state: each a forced write). */
    private static final class CountingAtomicWrites extends ForwardingLogFiles {
        final java.util.concurrent.atomic.AtomicInteger writes = new java.util.concurrent.atomic.AtomicInteger();

        @Override
        public void writeAtomically(Path file, byte[] content) throws IOException {
            writes.incrementAndGet();
            super.writeAtomically(file, content);
        }
    }

    @Test
    void anEpochWrittenAtTheStartMovesWithTheLogAndItsRecordsWriteNoCheckpoint() throws Exception {
        CountingAtomicWrites files = new CountingAtomicWrites();
        LogDirectory directory = open(files);
        SegmentLog log = directory.openLog("n", SMALL, 100);
        log.assignEpochAtEnd(7); // written ahead, off the writes' path
        int written = files.writes.get();
        log.rebaseEmpty(400);
        assertEquals(List.of(new EpochEntry(7, 400)), log.epochHistory(), "the epoch starts where the log now does");
        log.assignEpochAtEnd(7); // the leader taking the segment in that epoch
        assertEquals(400, append(log, records(3, 1, "x"), 7, Durability.FSYNC).baseOffset());
        assertEquals(written, files.writes.get(), "moved forward in memory: neither the move, the lead nor the records wrote a checkpoint");
        directory.halt(); // a crash: the checkpoint on disk still names the old start, before the log's
        LogDirectory again = open(dev.segstore.log.io.RealLogFiles.INSTANCE);
        try {
            SegmentLog recovered = again.openLog("n", SMALL, 0);
            assertEquals(400, recovered.logStartOffset());
            assertEquals(403, recovered.logEndOffset());
            assertEquals(List.of(new EpochEntry(7, 400)), recovered.epochHistory(),
                    "an entry before the log's start reads as one at its start");
            assertEquals(403, recovered.endOffsetForEpoch(7).endOffset());

            // Moved back, below the entry: the checkpoint is written again (an entry past the start would not read the same).
            SegmentLog earlier = again.openLog("e", SMALL, 500);
            earlier.assignEpochAtEnd(3);
            earlier.rebaseEmpty(200);
            assertEquals(List.of(new EpochEntry(3, 200)), earlier.epochHistory());
            assertEquals(200, append(earlier, records(2, 1, "y"), 3, Durability.FSYNC).baseOffset());
        } finally {
            again.close();
        }
        LogDirectory third = open(dev.segstore.log.io.RealLogFiles.INSTANCE);
        try {
            SegmentLog earlier = third.openLog("e", SMALL, 0);
            assertEquals(List.of(new EpochEntry(3, 200)), earlier.epochHistory());
            assertEquals(202, earlier.logEndOffset());
        } finally {
            third.close();
        }
    }

    @Test
    void aFollowerKeepsAnEpochWrittenAheadForTheLeaderItFollowsAndItsFirstBatchWritesNoCheckpoint() throws Exception {
        CountingAtomicWrites files = new CountingAtomicWrites();
        LogDirectory directory = open(files);
        try {
            SegmentLog leader = directory.openLog("leader", SMALL, 400);
            append(leader, records(3, 1, "x"), 7, Durability.FSYNC);
            ByteBuffer fetched = fetch(leader, 400);
            SegmentLog follower = directory.openLog("follower", SMALL, 100);
            follower.assignEpochAtEnd(7); // written ahead, while the segment before closed
            follower.rebaseEmpty(400);
            int written = files.writes.get();
            follower.dropEmptyEpochsBut(7); // taking the segment as a follower of epoch 7
            assertEquals(List.of(new EpochEntry(7, 400)), follower.epochHistory(),
                    "the epoch of the leader it follows is kept: that leader starts it there");
            assertEquals(400, LogFixtures.await(follower.appendAsFollower(fetched.duplicate(), Durability.FSYNC)).baseOffset());
            assertEquals(written, files.writes.get(), "neither taking the segment nor its first batch wrote a checkpoint");
            assertEquals(List.of(new EpochEntry(7, 400)), follower.epochHistory());

            SegmentLog other = directory.openLog("other", SMALL, 100);
            other.assignEpochAtEnd(7);
            other.dropEmptyEpochsBut(8); // the leadership moved before anything was written: epoch 7 is dropped
            assertEquals(List.of(), other.epochHistory());
            other.assignEpochAtEnd(9);
            append(other, records(1, 1, "y"), 9, Durability.FSYNC);
            other.dropEmptyEpochsBut(10); // an epoch with records stays
            assertEquals(List.of(new EpochEntry(9, 100)), other.epochHistory());
        } finally {
            directory.close();
        }
    }

    /**
     * An epoch written ahead can be early: when a segment's leadership moves after an earlier hand-over, its later
     * epochs start past its start, and the leader's first batches there are of an older epoch. A follower takes them
     * and records their epochs instead, forced before the batches are written.
     */
    @Test
    void batchesOlderThanAnEpochWrittenAheadReplaceItInTheHistory() throws Exception {
        LogDirectory directory = open(dev.segstore.log.io.RealLogFiles.INSTANCE);
        ByteBuffer fetched;
        try {
            SegmentLog leader = directory.openLog("leader", SMALL, 400);
            append(leader, records(3, 1, "a"), 0, Durability.FSYNC);
            append(leader, records(2, 2, "b"), 1, Durability.FSYNC);
            fetched = fetch(leader, 400);
            SegmentLog follower = directory.openLog("follower", SMALL, 100);
            follower.assignEpochAtEnd(1); // the epoch the follower will follow, written while the segment before closed
            follower.rebaseEmpty(400);
            follower.dropEmptyEpochsBut(1);
            assertEquals(400, LogFixtures.await(follower.appendAsFollower(fetched.duplicate(), Durability.FSYNC)).baseOffset());
            assertEquals(List.of(new EpochEntry(0, 400), new EpochEntry(1, 403)),
                    follower.epochHistory());

            // The entry before the early one already names the batch's epoch: nothing is assigned, the drop is forced.
            SegmentLog other = directory.openLog("other", SMALL, 100);
            append(other, records(2, 1, "c"), 0, Durability.FSYNC);
            other.assignEpochAtEnd(1);
            other.dropEmptyEpochsBut(1);
            SegmentLog source = directory.openLog("source", SMALL, 100);
            append(source, records(2, 1, "c"), 0, Durability.FSYNC);
            append(source, records(1, 2, "d"), 0, Durability.FSYNC);
            assertEquals(102, LogFixtures.await(other.appendAsFollower(fetch(source, 102), Durability.FSYNC)).baseOffset());
            assertEquals(List.of(new EpochEntry(0, 100)), other.epochHistory());
        } finally {
            directory.halt(); // a crash: what was forced is what comes back
        }
        LogDirectory again = open(dev.segstore.log.io.RealLogFiles.INSTANCE);
        try {
            assertEquals(List.of(new EpochEntry(0, 400), new EpochEntry(1, 403)),
                    again.openLog("follower", SMALL, 0).epochHistory());
            assertEquals(List.of(new EpochEntry(0, 100)), again.openLog("other", SMALL, 0).epochHistory(),
                    "the early entry's drop was forced, though no epoch was assigned after it");
        } finally {
            again.close();
        }
    }

    /** A fetch refused for a full queue changes nothing: the early entry stays, and no checkpoint is written. */
    @Test
    void aFetchRefusedForAFullQueueLeavesAnEpochWrittenAheadAsItWas() throws Exception {
        LogDirectory source = open(dev.segstore.log.io.RealLogFiles.INSTANCE);
        ByteBuffer fetched;
        try {
            SegmentLog leader = source.openLog("leader", SMALL, 400);
            append(leader, List.of(AppendRecord.of(1, new byte[1000]), AppendRecord.of(2, new byte[1000])), 0, Durability.FSYNC);
            fetched = fetch(leader, 400);
        } finally {
            source.close();
        }
        // The flush policy waits a minute with a non-empty queue, and once the queue is filled every force waits at a
        // closed gate: fsync appends that wait keep the queue full. (Without the gate, the I/O thread could drain the
        // queue after the filling, force at once as the queue was empty, and free it before the follower's append: the
        // test failed so once in a run of the module, "expected: <...QUEUE_FULL...> but was: <null>".)
        GatedLogFiles files = new GatedLogFiles();
        LogDirectory directory = LogDirectory.open(root.resolve("queued"), DirectoryConfig.DEFAULT.withQueueLimits(4096, 1000)
                .withFlushPolicy(new FlushPolicy(60_000_000_000L, Long.MAX_VALUE, 60_000_000_000L, Long.MAX_VALUE)),
                files, clock::get);
        try {
            SegmentLog filler = directory.openLog("filler", SMALL, 0);
            SegmentLog follower = directory.openLog("follower", SMALL, 400);
            follower.assignEpochAtEnd(1);
            follower.dropEmptyEpochsBut(1);
            int written = follower.epochCheckpointWrites();
            files.close();
            boolean full = false;
            for (int i = 0; i < 100 && !full; i++) {
                AppendResult f = filler.appendAsLeader(List.of(AppendRecord.of(1, new byte[500])), 0, Durability.FSYNC).getNow(null);
                full = f != null && f.status() == AppendResult.Status.QUEUE_FULL;
            }
            assertTrue(full, "the queue filled");
            AppendResult r = follower.appendAsFollower(fetched.duplicate(), Durability.FSYNC).getNow(null);
            assertEquals(AppendResult.QUEUE_FULL, r);
            assertEquals(List.of(new EpochEntry(1, 400)), follower.epochHistory(), "the early entry stays");
            assertEquals(written, follower.epochCheckpointWrites(), "and no checkpoint was written");
        } finally {
            files.open();
            directory.halt();
        }
    }

    @Test
    void aLogWithARecordOrTwoEpochsDoesNotMove() {
        LogDirectory directory = open(dev.segstore.log.io.RealLogFiles.INSTANCE);
        try {
            SegmentLog log = directory.openLog("t", SMALL, 10);
            log.assignEpochAtEnd(1);
            append(log, records(1, 1, "x"), 1, Durability.PAGE_CACHE);
            log.assignEpochAtEnd(2);
            assertEquals(LogException.Kind.ILLEGAL_STATE, assertThrows(LogException.class, () -> log.rebaseEmpty(50)).kind());
            assertEquals(10, log.logStartOffset());
        } finally {
            directory.close();
        }
    }

    /** A file layer whose rename of a segment file fails: the move stops after the header and the indexes. */
    private static final class FailingRename extends ForwardingLogFiles {
        @Override
        public void rename(Path from, Path to) throws IOException {
            if (from.getFileName().toString().endsWith(".log")) {
                throw new IOException("injected rename failure");
            }
            super.rename(from, to);
        }
    }

    @Test
    void aMoveStoppedBeforeTheSegmentFilesRenameLeavesAnEmptyLogAtTheOldStart() throws Exception {
        LogDirectory directory = open(new FailingRename());
        SegmentLog log = directory.openLog("n", SMALL, 100);
        LogException e = assertThrows(LogException.class, () -> log.rebaseEmpty(300));
        assertEquals(LogException.Kind.STORAGE_ERROR, e.kind());
        assertFalse(directory.isOnline(), "an I/O error takes the data directory offline, as any other does");
        assertEquals(List.of(Segment.fileName(100, ".log"), Segment.fileName(300, ".oix"), Segment.fileName(300, ".tix")), filesOf("n"),
                "the indexes moved, the segment file not");
        // Its file holds the new header under the old name now: the crash's view, as the process stops here.
        directory.halt();
        LogDirectory again = open(dev.segstore.log.io.RealLogFiles.INSTANCE);
        try {
            SegmentLog recovered = again.openLog("n", SMALL, 0);
            assertEquals(100, recovered.logStartOffset(), "made again where its file's name says");
            assertEquals(100, recovered.logEndOffset());
            recovered.assignEpochAtEnd(0);
            assertEquals(100, append(recovered, records(2, 1, "x"), 0, Durability.FSYNC).baseOffset());
            assertTrue(filesOf("n").containsAll(segmentFiles(100)), "its indexes made again; those left under the other name are ignored");
        } finally {
            again.close();
        }
    }

    @Test
    void aMoveWhoseHeaderWasLostInACrashLeavesAnEmptyLogAtTheNewStart() throws Exception {
        LogDirectory directory = open(dev.segstore.log.io.RealLogFiles.INSTANCE);
        SegmentLog log = directory.openLog("n", SMALL, 100);
        log.rebaseEmpty(300);
        // The renames reached the disk, the header's rewrite (not forced yet) did not.
        try (FileChannel ch = FileChannel.open(root.resolve("n").resolve(Segment.fileName(300, ".log")), StandardOpenOption.WRITE)) {
            ch.write(new FileHeader(FileHeader.SEGMENT_MAGIC, FileHeader.VERSION, 100).encode(), 0);
        }
        directory.halt();
        LogDirectory again = open(dev.segstore.log.io.RealLogFiles.INSTANCE);
        try {
            SegmentLog recovered = again.openLog("n", SMALL, 0);
            assertEquals(300, recovered.logStartOffset());
            assertEquals(300, recovered.logEndOffset());
            recovered.assignEpochAtEnd(0);
            assertEquals(300, append(recovered, records(2, 1, "x"), 0, Durability.FSYNC).baseOffset());
            assertFalse(filesOf("n").contains(Segment.fileName(100, ".log")));
        } finally {
            again.close();
        }
    }
}
