package dev.segstore.log;

import dev.segstore.log.epoch.EpochEntry;
import dev.segstore.log.epoch.LeaderEpochCache;
import dev.segstore.log.format.FileHeader;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static dev.segstore.log.LogFixtures.append;
import static dev.segstore.log.LogFixtures.records;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The log inspector (the dump and verify tool) reads a log without changing it, returns every batch and record,
 * finds nothing wrong in a log in good order, and names each kind of damage: a flipped bit in a sealed segment,
 * an index entry pointing at no batch, a batch whose leader epoch the checkpoint contradicts, a missing segment;
 * a torn tail of the newest segment is a note after an unclean stop and a problem after a clean one.
 */
@Timeout(60)
class LogInspectorTest {
    private static final LogConfig SMALL = LogConfig.DEFAULT.withSegmentBytes(64 * 1024).withIndexIntervalBytes(256);

    @TempDir
    Path root;

    /** A closed log "a" of 600 records in batches of 10 over several 64 KiB segments, epochs 0, 1 and 3. */
    private Path writeLog() {
        LogDirectory directory = LogDirectory.open(root, DirectoryConfig.DEFAULT, dev.segstore.log.io.RealLogFiles.INSTANCE, () -> 1_000_000L);
        try {
            SegmentLog log = directory.openLog("a", SMALL, 0);
            for (int i = 0; i < 60; i++) {
                int epoch = i < 20 ? 0 : i < 40 ? 1 : 3;
                append(log, records(10, 1_000 + i * 10L, "record-" + i + "-" + "x".repeat(900) + "-"), epoch, Durability.FSYNC);
            }
        } finally {
            directory.close();
        }
        return root.resolve("a");
    }

    private static LogInspector.Report inspect(Path dir, List<LogInspector.Batch> into) throws IOException {
        return LogInspector.inspect(dir, true, into::add);
    }

    private static List<Path> segments(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(p -> p.toString().endsWith(".log")).sorted().toList();
        }
    }

    @Test
    void aLogInGoodOrderHasNoProblemAndEveryRecord() throws IOException {
        Path dir = writeLog();
        byte[] before = Files.readAllBytes(segments(dir).get(0));
        List<LogInspector.Batch> batches = new ArrayList<>();
        LogInspector.Report r = inspect(dir, batches);
        assertTrue(r.ok(), "problems: " + r.problems());
        assertTrue(r.segments() > 3, "several segments: " + r.segments());
        assertEquals(60, r.batches());
        assertEquals(600, r.records());
        assertEquals(0, r.startOffset());
        assertEquals(600, r.endOffset());
        long next = 0;
        for (LogInspector.Batch b : batches) {
            assertEquals(next, b.baseOffset());
            assertEquals(b.baseOffset() < 200 ? 0 : b.baseOffset() < 400 ? 1 : 3, b.leaderEpoch(), "epoch of batch " + b.baseOffset());
            assertEquals(10, b.records().size());
            assertTrue(new String(b.records().get(0).payload()).startsWith("record-" + next / 10 + "-"));
            next = b.lastOffset() + 1;
        }
        assertTrue(java.util.Arrays.equals(before, Files.readAllBytes(segments(dir).get(0))), "the inspector changes nothing");
    }

    @Test
    void theGoldenFilesOfFormatVersion1AreInGoodOrder() throws IOException, URISyntaxException {
        Path golden = Path.of(getClass().getResource("/golden/v1/log-state").toURI()).getParent();
        LogInspector.Report r = inspect(golden, new ArrayList<>());
        assertTrue(r.ok(), "problems: " + r.problems());
        assertTrue(r.records() > 0);
    }

    @Test
    void aFlippedBitInASealedSegmentIsFound() throws IOException {
        Path dir = writeLog();
        Path first = segments(dir).get(0);
        flip(first, FileHeader.SIZE + 300);
        LogInspector.Report r = inspect(dir, new ArrayList<>());
        assertTrue(r.problems().stream().anyMatch(p -> p.startsWith(first.getFileName().toString()) && p.contains("checksum")), "" + r.problems());
    }

    @Test
    void anIndexEntryThatPointsAtNoBatchIsFound() throws IOException {
        Path dir = writeLog();
        Path oix = dir.resolve(segments(dir).get(0).getFileName().toString().replace(".log", ".oix"));
        try (FileChannel ch = FileChannel.open(oix, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.allocate(4).putInt(0, 4242), FileHeader.SIZE + 8 + 4); // second entry's position
        }
        LogInspector.Report r = inspect(dir, new ArrayList<>());
        assertTrue(r.problems().stream().anyMatch(p -> p.contains(".oix") && p.contains("position 4242")), "" + r.problems());
    }

    @Test
    void aBatchWhoseEpochTheCheckpointContradictsIsFound() throws IOException {
        Path dir = writeLog();
        LeaderEpochCache cache = new LeaderEpochCache();
        cache.assign(0, 0);
        cache.assign(1, 250); // the batches say epoch 1 starts at 200
        cache.assign(3, 400);
        Files.write(dir.resolve(SegmentLog.EPOCH_FILE), cache.encode());
        LogInspector.Report r = inspect(dir, new ArrayList<>());
        assertTrue(r.problems().stream().anyMatch(p -> p.contains("offset 200 has leader epoch 1, the checkpoint gives epoch 0")), "" + r.problems());
        assertEquals(List.of(new EpochEntry(0, 0), new EpochEntry(1, 250), new EpochEntry(3, 400)),
                LeaderEpochCache.decode(Files.readAllBytes(dir.resolve(SegmentLog.EPOCH_FILE))).entries());
    }

    @Test
    void aMissingSegmentIsFound() throws IOException {
        Path dir = writeLog();
        Path second = segments(dir).get(1);
        for (String suffix : new String[]{".log", ".oix", ".tix"}) {
            Files.delete(dir.resolve(second.getFileName().toString().replace(".log", suffix)));
        }
        LogInspector.Report r = inspect(dir, new ArrayList<>());
        assertTrue(r.problems().stream().anyMatch(p -> p.contains("the segment before ended at")), "" + r.problems());
    }

    @Test
    void aTornTailIsANoteAfterAnUncleanStopAndAProblemAfterACleanOne() throws IOException {
        Path dir = writeLog();
        Path newest = segments(dir).get(segments(dir).size() - 1);
        try (FileChannel ch = FileChannel.open(newest, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(new byte[]{0, 0, 1, 0, 9, 9, 9}), ch.size()); // a batch cut off after 7 bytes
        }
        LogInspector.Report clean = inspect(dir, new ArrayList<>());
        assertTrue(clean.problems().stream().anyMatch(p -> p.startsWith(newest.getFileName().toString()) && p.contains("bad batch")),
                "after a clean shutdown nothing may follow the last batch: " + clean.problems());
        Files.write(dir.resolve(LogState.FILE), new LogState(false, false, 0).encode());
        LogInspector.Report unclean = inspect(dir, new ArrayList<>());
        assertTrue(unclean.ok(), "problems: " + unclean.problems());
        assertTrue(unclean.notes().stream().anyMatch(n -> n.contains("torn tail")), "" + unclean.notes());
        assertEquals(600, unclean.records());
    }

    private static void flip(Path file, long position) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            ByteBuffer b = ByteBuffer.allocate(1);
            ch.read(b, position);
            b.put(0, (byte) (b.get(0) ^ 0x10));
            ch.write(b.rewind(), position);
        }
    }
}
