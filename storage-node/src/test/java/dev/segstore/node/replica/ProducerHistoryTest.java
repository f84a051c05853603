package dev.segstore.node.replica;

import dev.segstore.log.DirectoryConfig;
import dev.segstore.log.Durability;
import dev.segstore.log.LogConfig;
import dev.segstore.log.LogDirectory;
import dev.segstore.log.SegmentLog;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What a restarted replica knows of the producers' batches in its log ({@link ProducerHistory}), on a real log: the
 * tail read back at first, the rest read for a retry off the partition's thread (held here until the test runs it),
 * and truncations meanwhile. Producer 66's batch (offsets 0-2) lies before the tail window; producer 77's follow.
 */
@Timeout(30)
class ProducerHistoryTest {
    @TempDir
    Path root;
    private LogDirectory dir;
    private SegmentLog log;
    /** Stands for the partition's monitor. */
    private final Object lock = new Object();
    private final List<Runnable> readBacks = new ArrayList<>();

    @BeforeEach
    void aLogWithAnOldBatchBeforeItsTail() throws Exception {
        dir = LogDirectory.open(root.resolve("node"), DirectoryConfig.DEFAULT);
        log = dir.openLog("p-0", LogConfig.DEFAULT, 0);
        append(66, 0, 3);
        for (int i = 0; i < 8; i++) {
            append(77, i * 2, 2);
        }
    }

    @AfterEach
    void close() {
        dir.close();
    }

    private void append(long producerId, int baseSequence, int count) throws Exception {
        log.appendAsLeader(PartitionFixture.records("p" + producerId + "-" + baseSequence + "-", count), 0, producerId, baseSequence,
                Durability.PAGE_CACHE).get(10, TimeUnit.SECONDS);
    }

    /** A replica restarted over the log, that read back only about its last quarter. */
    private ProducerHistory restartedWithATailWindow() {
        ProducerHistory h = new ProducerHistory("p/0@1", log, lock, log.sizeInBytes() / 4);
        h.readBackOn(readBacks::add);
        synchronized (lock) {
            h.load();
            assertTrue(h.olderUnread(), "the tail window misses the first batches");
            assertInstanceOf(ProducerStateTable.New.class, h.check(66, 0, 3), "producer 66's batch is not known yet");
        }
        return h;
    }

    @Test
    void aRetryReadsTheRestOfTheLogBackAndThenTheReplicaKnowsEveryBatch() throws Exception {
        ProducerHistory h = restartedWithATailWindow();
        CompletableFuture<Void> read;
        synchronized (lock) {
            assertNull(h.snapshot(), "a replica that read only its log's tail back has no complete state to save");
            read = h.readOlder();
            assertTrue(read == h.readOlder(), "one read-back for every retry waiting");
        }
        assertEquals(1, readBacks.size());
        readBacks.remove(0).run();
        read.get(10, TimeUnit.SECONDS);
        synchronized (lock) {
            assertFalse(h.olderUnread());
            ProducerStateTable.Duplicate d = assertInstanceOf(ProducerStateTable.Duplicate.class, h.check(66, 0, 3));
            assertEquals(0, d.original().baseOffset());
            assertNotNull(h.snapshot(), "it knows every batch now");
        }
    }

    @Test
    void aReadBackBegunBeforeATruncationMergesNothing() throws Exception {
        ProducerHistory h = restartedWithATailWindow();
        CompletableFuture<Void> read;
        synchronized (lock) {
            read = h.readOlder();
            h.truncateTo(1); // the log was cut meanwhile: what the read finds below the old mark may be gone
        }
        readBacks.remove(0).run();
        read.get(10, TimeUnit.SECONDS); // dropped, not failed: the retries waiting are taken again
        synchronized (lock) {
            assertInstanceOf(ProducerStateTable.New.class, h.check(66, 0, 3), "a batch read before the cut is not taken as known");
            assertTrue(h.olderUnread(), "the part below the cut is still unread");
        }
    }

    @Test
    void aCutToTheLogStartLeavesNothingUnread() throws Exception {
        ProducerHistory h = restartedWithATailWindow();
        log.truncateTo(0).get(10, TimeUnit.SECONDS);
        synchronized (lock) {
            h.truncateTo(0);
            assertFalse(h.olderUnread(), "an empty log holds no batch this replica does not know");
            assertNotNull(h.snapshot(), "so its state is complete");
        }
    }
}
