package dev.segstore.node.replica;

import dev.segstore.log.io.LogChannel;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The crash of {@link FaultyFiles}: forced bytes stay, later writes survive as a prefix, the last maybe torn. */
class FaultyFilesTest {
    @TempDir
    Path dir;

    private static ByteBuffer bytes(String s) {
        return ByteBuffer.wrap(s.getBytes(StandardCharsets.US_ASCII));
    }

    @Test
    void aCrashKeepsTheForcedBytesAndAPrefixOfTheLaterWrites() throws IOException {
        for (long seed = 0; seed < 50; seed++) {
            Path file = dir.resolve("s" + seed + ".log");
            FaultyFiles files = new FaultyFiles();
            LogChannel ch = files.open(file, true);
            ch.writeFully(bytes("aaaa"), 0);
            ch.writeFully(bytes("bbbb"), 4);
            ch.force();
            ch.writeFully(bytes("cccc"), 8);
            ch.writeFully(bytes("dddd"), 12);
            FaultyFiles.CrashReport report = files.crash(new Random(seed));
            assertThrows(IOException.class, () -> ch.writeFully(bytes("eeee"), 16), "nothing reaches the disk after the crash");
            assertThrows(IOException.class, ch::force);
            ch.close();
            files.writeCrashImages();
            String after = Files.readString(file, StandardCharsets.US_ASCII);
            assertTrue(after.startsWith("aaaabbbb"), "forced bytes stay: " + after);
            assertTrue("aaaabbbbccccdddd".startsWith(after), "a prefix of the later writes: " + after);
            assertEquals(2, report.writesUnforced());
            assertEquals(16 - after.length(), report.bytesLost(), after);
            // The layer works again: what is on disk now counts as durable.
            LogChannel again = files.open(file, false);
            again.writeFully(bytes("ffff"), after.length());
            files.crash(new Random(seed));
            again.close();
            files.writeCrashImages();
            String second = Files.readString(file, StandardCharsets.US_ASCII);
            assertTrue(second.startsWith(after) && (after + "ffff").startsWith(second), second);
        }
    }

    @Test
    void aForceCountsOnlyTheWritesBeforeIt() throws IOException {
        Path file = dir.resolve("t.log");
        FaultyFiles files = new FaultyFiles();
        LogChannel ch = files.open(file, true);
        ch.writeFully(bytes("aaaa"), 0);
        ch.truncate(2);
        ch.writeFully(bytes("bb"), 2);
        ch.force();
        FaultyFiles.CrashReport report = files.crash(new Random(1));
        ch.close();
        files.writeCrashImages();
        assertArrayEquals("aabb".getBytes(StandardCharsets.US_ASCII), Files.readAllBytes(file));
        assertEquals(0, report.writesUnforced());
    }
}
