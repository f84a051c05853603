package dev.segstore.log;

import dev.segstore.log.io.RealLogFiles;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

/**
 * Golden files for on-disk format version 1 (src/test/resources/golden/v1): a small log written by a fixed
 * script. The test checks both ways: this build writes exactly those bytes, and reads the stored files back
 * to the same records. A format change must add a new version directory, never edit this one.
 * Regenerate (only when adding a version) with {@code -Dsegstore.golden.write=<dir>}.
 */
class GoldenFormatTest {
    private static final String[] FILES = {
            "00000000000000000000.log", "00000000000000000000.oix", "00000000000000000000.tix",
            "00000000000000000006.log", "00000000000000000006.oix", "00000000000000000006.tix",
            SegmentLog.EPOCH_FILE, LogState.FILE};
    private static final LogConfig CONFIG = LogConfig.DEFAULT.withSegmentBytes(64 * 1024).withIndexIntervalBytes(64)
            .withSegmentMs(1000);

    @TempDir
    Path root;

    /** The fixed script: two segments (rolled by age), two epochs, keys, tags, headers, a producer id. */
    private static void writeScript(Path root) {
        long[] clock = {1_700_000_000_000L};
        try (LogDirectory directory = LogDirectory.open(root, DirectoryConfig.DEFAULT, RealLogFiles.INSTANCE, () -> clock[0])) {
            SegmentLog log = directory.openLog("golden", CONFIG, 0);
            LogFixtures.append(log, List.of(
                    new AppendRecord("user-1", List.of("blue"), 1_700_000_000_000L, List.of(new LogHeader("trace", "abc")), "hello".getBytes()),
                    new AppendRecord(null, List.of(), 1_700_000_000_005L, List.of(), new byte[0])), 1, Durability.FSYNC);
            LogFixtures.await(log.appendAsLeader(List.of(
                    new AppendRecord("user-2", List.of("red", "green"), 1_700_000_000_010L, List.of(), new byte[100])), 1, 7L, 0, Durability.FSYNC));
            LogFixtures.append(log, LogFixtures.records(3, 1_700_000_000_020L, "epoch-two-"), 2, Durability.FSYNC);
            clock[0] += 5000;
            LogFixtures.append(log, LogFixtures.records(2, 1_700_000_005_000L, "second-segment-"), 2, Durability.FSYNC);
        }
    }

    @Test
    void thisBuildWritesTheGoldenBytes() throws IOException {
        writeScript(root);
        Path dir = root.resolve("golden");
        String regenerate = System.getProperty("segstore.golden.write");
        if (regenerate != null) {
            Files.createDirectories(Paths.get(regenerate));
            for (String f : FILES) {
                Files.copy(dir.resolve(f), Paths.get(regenerate).resolve(f));
            }
        }
        assertEquals(List.of(FILES).stream().sorted().toList(), RealLogFiles.INSTANCE.list(dir));
        for (String f : FILES) {
            assertArrayEquals(golden(f), Files.readAllBytes(dir.resolve(f)), f);
        }
    }

    @Test
    void theGoldenFilesReadBack() throws IOException {
        Path dir = Files.createDirectories(root.resolve("golden"));
        for (String f : FILES) {
            Files.write(dir.resolve(f), golden(f));
        }
        try (LogDirectory directory = LogDirectory.open(root, DirectoryConfig.DEFAULT)) {
            SegmentLog log = directory.openLog("golden", CONFIG, 0);
            assertEquals(2, log.segmentCount());
            assertEquals(8, log.logEndOffset());
            assertEquals(2, log.latestEpoch());
            List<LogRecord> records = LogFixtures.readAll(log);
            assertEquals(8, records.size());
            assertEquals("user-1", records.get(0).key());
            assertEquals(List.of("blue"), records.get(0).tags());
            assertEquals(List.of(new LogHeader("trace", "abc")), records.get(0).headers());
            assertEquals("hello", LogFixtures.text(records.get(0)));
            assertEquals(List.of("red", "green"), records.get(2).tags());
            assertEquals(100, records.get(2).payload().length);
            assertEquals("epoch-two-2", LogFixtures.text(records.get(5)));
            assertEquals(2, records.get(5).leaderEpoch());
            assertEquals("second-segment-1", LogFixtures.text(records.get(7)));
            assertEquals(6, log.offsetForTimestamp(1_700_000_004_000L, Long.MAX_VALUE).getAsLong());
        }
    }

    private static byte[] golden(String name) throws IOException {
        try (InputStream in = GoldenFormatTest.class.getResourceAsStream("/golden/v1/" + name)) {
            assertNotNull(in, "golden file " + name + " missing");
            return in.readAllBytes();
        }
    }
}
