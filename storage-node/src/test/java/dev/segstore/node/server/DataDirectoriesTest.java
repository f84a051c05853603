package dev.segstore.node.server;

import dev.segstore.log.DirectoryConfig;
import dev.segstore.log.LogConfig;
import dev.segstore.log.LogException;
import dev.segstore.log.io.RealLogFiles;
import dev.segstore.node.replica.FaultyFiles;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DataDirectoriesTest {
    @TempDir
    Path tmp;

    private DataDirectories open(dev.segstore.log.io.LogFiles files, Path... roots) {
        return DataDirectories.open(List.of(roots), DirectoryConfig.DEFAULT, files, System::currentTimeMillis);
    }

    private static dev.segstore.log.AppendRecord record() {
        return new dev.segstore.log.AppendRecord(null, List.of(), 1, List.of(), new byte[] {1});
    }

    @Test
    void newLogsGoToTheDirectoryHoldingFewestAndAreFoundThereAfterARestart() {
        Path a = tmp.resolve("a");
        Path b = tmp.resolve("b");
        try (DataDirectories d = open(RealLogFiles.INSTANCE, a, b)) {
            d.openLog("1-0", LogConfig.DEFAULT, 0);
            d.openLog("2-0", LogConfig.DEFAULT, 0);
            d.openLog("3-0", LogConfig.DEFAULT, 0);
            assertTrue(Files.isDirectory(a.resolve("logs/1-0")) && Files.isDirectory(b.resolve("logs/2-0")) && Files.isDirectory(a.resolve("logs/3-0")));
        }
        try (DataDirectories d = open(RealLogFiles.INSTANCE, a, b)) {
            assertEquals(List.of("1-0", "2-0", "3-0"), d.logNames());
            d.openLog("2-0", LogConfig.DEFAULT, 0);
            assertFalse(Files.exists(a.resolve("logs/2-0")), "an existing log opens where it is");
            d.openLog("4-0", LogConfig.DEFAULT, 0);
            assertTrue(Files.isDirectory(b.resolve("logs/4-0")));
        }
    }

    /**
     * A log deleted (a log made ahead of a roll that nothing claimed, an unassigned one at registration) and made again
     * under the same name before the delete ran: the new one must not open the old files, which the delete then
     * unlinks under it. Here the delete is held before it unlinks anything; the old code opened the old log, records
     * and all.
     */
    @Test
    void aLogMadeAgainWhileItsDeleteIsUnderWayOpensOnlyOnceTheOldFilesAreGone() throws Exception {
        java.util.concurrent.CountDownLatch deletesMayRun = new java.util.concurrent.CountDownLatch(1);
        dev.segstore.log.io.LogFiles holdingDeletes = new dev.segstore.log.io.ForwardingLogFiles() {
            @Override
            public void delete(Path file) throws java.io.IOException {
                try {
                    deletesMayRun.await();
                } catch (InterruptedException e) {
                    throw new java.io.InterruptedIOException();
                }
                super.delete(file);
            }
        };
        try (DataDirectories d = open(holdingDeletes, tmp.resolve("a"))) {
            dev.segstore.log.SegmentLog old = d.openLog("5-1", LogConfig.DEFAULT, 100);
            old.appendAsLeader(List.of(record(), record()), 0, dev.segstore.log.Durability.FSYNC).get(10, TimeUnit.SECONDS);
            CompletableFuture<Void> deleting = d.deleteLog("5-1");
            CompletableFuture<dev.segstore.log.SegmentLog> again = CompletableFuture.supplyAsync(() -> d.openLog("5-1", LogConfig.DEFAULT, 300));
            try {
                // Whatever the new open did meanwhile, it must not have been handed the old files.
                if (again.isDone() && !again.isCompletedExceptionally()) {
                    assertEquals(300, again.get().logStartOffset(), "opened the log being deleted");
                }
            } finally {
                deletesMayRun.countDown();
            }
            deleting.get(10, TimeUnit.SECONDS);
            dev.segstore.log.SegmentLog made = again.get(10, TimeUnit.SECONDS);
            assertEquals(300, made.logStartOffset(), "made again at its new start, not the old log reopened");
            assertEquals(300, made.logEndOffset());
            made.appendAsLeader(List.of(record()), 0, dev.segstore.log.Durability.FSYNC).get(10, TimeUnit.SECONDS);
            assertTrue(Files.isDirectory(tmp.resolve("a/logs/5-1")), "its files are not the ones the delete unlinked");
        }
    }

    /**
     * Opening a log holds the directories' monitor while it forces files and directories (tens of ms each; hundreds
     * of them when 1,000 shards are created at once): every fetch loop asks {@link DataDirectories#onOfflineDirectory}
     * each round and must not wait behind that (it did: the node's two fetcher threads stalled replication).
     */
    @Test
    void lookUpsDoNotWaitForALogBeingOpened() throws Exception {
        try (DataDirectories d = open(RealLogFiles.INSTANCE, tmp.resolve("a"))) {
            d.openLog("1-0", LogConfig.DEFAULT, 0);
            java.util.concurrent.CountDownLatch held = new java.util.concurrent.CountDownLatch(1);
            java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
            Thread opener = new Thread(() -> {
                synchronized (d) { // as openLog holds it while it forces the new log's files
                    held.countDown();
                    try {
                        release.await();
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                }
            });
            opener.start();
            try {
                assertTrue(held.await(10, TimeUnit.SECONDS));
                java.util.concurrent.CompletableFuture<Boolean> lookUp = java.util.concurrent.CompletableFuture.supplyAsync(
                        () -> !d.onOfflineDirectory("1-0") && d.holds("1-0") && !d.onOfflineDirectory("2-0"));
                assertTrue(lookUp.get(10, TimeUnit.SECONDS), "look-ups answered while a log is being opened");
            } finally {
                release.countDown();
                opener.join();
            }
        }
    }

    @Test
    void aFailedDirectoryTakesOnlyItsLogsOffline() throws Exception {
        FaultyFiles files = new FaultyFiles();
        Path a = tmp.resolve("a");
        Path b = tmp.resolve("b");
        try (DataDirectories d = open(files, a, b)) {
            var onA = d.openLog("1-0", LogConfig.DEFAULT, 0);
            var onB = d.openLog("2-0", LogConfig.DEFAULT, 0);
            files.failWritesUnder(b);
            var failed = onB.appendAsLeader(List.of(record()), 0, dev.segstore.log.Durability.FSYNC);
            assertThrows(Exception.class, () -> failed.get(10, TimeUnit.SECONDS));
            assertFalse(d.allOnline());
            assertTrue(d.anyOnline() && d.indexDirectoryOnline());
            assertEquals(List.of("2-0"), d.offlineLogs());
            assertEquals(List.of("1-0"), d.logNames());
            assertTrue(d.holds("1-0") && !d.holds("2-0") && d.onOfflineDirectory("2-0"));
            onA.appendAsLeader(List.of(record()), 0, dev.segstore.log.Durability.FSYNC).get(10, TimeUnit.SECONDS);
            // A log of the failed directory is not created anew elsewhere; new logs go to the one online.
            assertThrows(LogException.class, () -> d.openLog("2-0", LogConfig.DEFAULT, 0));
            d.openLog("3-0", LogConfig.DEFAULT, 0);
            assertTrue(Files.isDirectory(a.resolve("logs/3-0")));
        }
    }

    @Test
    void aLogInTwoDirectoriesIsRefusedAndADirectoryThatCannotOpenIsOfflineFromTheStartUnlessItIsTheFirst() throws Exception {
        Path a = tmp.resolve("a");
        Path b = tmp.resolve("b");
        Files.createDirectories(a.resolve("logs/5-1"));
        Files.createDirectories(b.resolve("logs/5-1"));
        IllegalStateException twice = assertThrows(IllegalStateException.class, () -> open(RealLogFiles.INSTANCE, a, b));
        assertTrue(twice.getMessage().contains("5-1") && twice.getMessage().contains("two data directories"), twice.getMessage());

        Files.delete(b.resolve("logs/5-1"));
        Path file = Files.writeString(tmp.resolve("not-a-dir"), "x"); // its logs/ cannot be created
        try (DataDirectories d = open(RealLogFiles.INSTANCE, a, file)) {
            assertTrue(d.anyOnline() && !d.allOnline() && d.indexDirectoryOnline());
            assertEquals(List.of("5-1"), d.logNames());
            d.openLog("6-0", LogConfig.DEFAULT, 0);
            assertTrue(Files.isDirectory(a.resolve("logs/6-0")), "new logs go to the directory that is online");
        }
        assertThrows(LogException.class, () -> open(RealLogFiles.INSTANCE, file, a), "the first (index) directory offline: the node cannot start");
    }
}
