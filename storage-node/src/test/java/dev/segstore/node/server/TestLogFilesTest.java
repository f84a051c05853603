package dev.segstore.node.server;

import dev.segstore.log.io.LogChannel;
import dev.segstore.log.io.LogFiles;
import dev.segstore.log.io.RealLogFiles;
import dev.segstore.node.replica.ControlledFaultyFiles;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The test-only setting {@code test.log.files.class} and the control file of {@link ControlledFaultyFiles}. */
class TestLogFilesTest {
    @TempDir
    Path dir;

    private Path config(String extra) throws IOException {
        Path file = dir.resolve("node.properties");
        Files.writeString(file, "node.id=1\nhost=127.0.0.1\nport=0\ndata.dir=data\nmeta.addresses=127.0.0.1:1\n" + extra);
        return file;
    }

    @Test
    void withoutTheSettingANodeRunsOnTheRealFileSystem() throws IOException {
        Path file = config("");
        assertSame(RealLogFiles.INSTANCE, TestLogFiles.fromSettings(file, NodeConfig.load(file).dataDir()));
    }

    @Test
    void theSettingNamesTheFileLayerMadeWithTheDataDirectory() throws IOException {
        Path file = config("test.log.files.class=" + ControlledFaultyFiles.class.getName() + "\n");
        NodeConfig c = NodeConfig.load(file); // a known key
        assertInstanceOf(ControlledFaultyFiles.class, TestLogFiles.fromSettings(file, c.dataDir()));
    }

    @Test
    void aMissingClassIsOneClearLine() throws IOException {
        Path file = config("test.log.files.class=dev.segstore.NoSuchFiles\n");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> TestLogFiles.fromSettings(file, dir));
        assertEquals("test.log.files.class = dev.segstore.NoSuchFiles: no such class on the class path (a test-only setting)", e.getMessage());
        Path notFiles = config("test.log.files.class=java.lang.String\n");
        assertTrue(assertThrows(IllegalArgumentException.class, () -> TestLogFiles.fromSettings(notFiles, dir)).getMessage()
                .contains("does not implement"));
    }

    private static void await(String what, java.util.function.BooleanSupplier done) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!done.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting for " + what);
            }
            java.util.concurrent.locks.LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(5));
        }
    }

    private static boolean fails(IoCall call, String message) {
        try {
            call.run();
            return false;
        } catch (IOException e) {
            return e.getMessage().contains(message);
        }
    }

    private interface IoCall {
        void run() throws IOException;
    }

    @Test
    @Timeout(30)
    void theControlFileSetsTheDiskFaultsOfTheNodesLayer() throws IOException {
        Path data = Files.createDirectories(dir.resolve("data"));
        LogFiles files = new ControlledFaultyFiles(data);
        LogChannel ch = files.open(data.resolve("00.log"), true);
        ch.writeFully(ByteBuffer.wrap(new byte[]{1}), 0);
        ch.force();
        ControlledFaultyFiles.set(data, "write-enospc");
        await("writes to fail ENOSPC", () -> fails(() -> ch.writeFully(ByteBuffer.wrap(new byte[]{2}), 1), "No space left on device"));
        ch.force(); // forces still work
        ControlledFaultyFiles.set(data, "fsync-eio");
        await("forces to fail", () -> fails(ch::force, "injected force failure"));
        ch.writeFully(ByteBuffer.wrap(new byte[]{2}), 1); // and writes again
        ControlledFaultyFiles.set(data, "write-eio");
        await("writes to fail EIO", () -> fails(() -> ch.writeFully(ByteBuffer.wrap(new byte[]{3}), 2), "Input/output error"));
        ControlledFaultyFiles.set(data, "open-eio");
        await("opens to fail", () -> fails(() -> files.open(data.resolve("01.log"), true).close(), "injected open failure"));
        ControlledFaultyFiles.set(data, "slow-fsync 200");
        await("forces to take 200 ms more", () -> {
            long t0 = System.nanoTime();
            try {
                ch.force();
            } catch (IOException e) {
                return false;
            }
            return System.nanoTime() - t0 >= TimeUnit.MILLISECONDS.toNanos(200);
        });
        ControlledFaultyFiles.set(data, "none");
        await("forces without the delay", () -> {
            long t0 = System.nanoTime();
            try {
                ch.force();
            } catch (IOException e) {
                return false;
            }
            return System.nanoTime() - t0 < TimeUnit.MILLISECONDS.toNanos(100);
        });
        files.open(data.resolve("02.log"), true).close();
        ch.writeFully(ByteBuffer.wrap(new byte[]{3}), 2);
        ch.close();
    }
}
