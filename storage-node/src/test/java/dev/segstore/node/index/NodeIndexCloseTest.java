package dev.segstore.node.index;

import dev.segstore.adapter.ErrorCode;
import dev.segstore.node.replica.ReplicaException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The node's index after it is closed: a call fails with CLOSED. Before, a call from a thread of a closing node still
 * at work (a replica fetcher that outlived the node's close) went into the freed RocksDB and crashed the JVM (CI: the
 * storage-node test fork ended with exit code 134 in SilentLeaderClusterTest).
 */
@Timeout(60)
class NodeIndexCloseTest {
    @TempDir
    Path dir;

    @Test
    void everyCallAfterCloseFailsClosedInsteadOfReachingTheFreedDatabase() throws Exception {
        NodeIndex index = new NodeIndex(dir);
        index.index(7, 0, List.of(new NodeIndex.Entry(0, "k", List.of("t"))), 1);
        index.close();
        index.close(); // twice is harmless
        Map<String, Executable> calls = new java.util.LinkedHashMap<>();
        calls.put("index", () -> index.index(7, 0, List.of(), 2));
        calls.put("indexedUpTo", () -> index.indexedUpTo(7, 0));
        calls.put("offsetsByKey", () -> index.offsetsByKey(7, 0, "k", 0, 10));
        calls.put("offsetsByTag", () -> index.offsetsByTag(7, 0, "t", 0, 10));
        calls.put("saveProducerState", () -> index.saveProducerState(7, 0, new byte[] {1}));
        calls.put("takeProducerState", () -> index.takeProducerState(7, 0));
        calls.put("dropSegment", () -> index.dropSegment(7, 0));
        calls.put("tombstones save", () -> index.tombstoneStore(7, 0, true).save(0, List.of(3L), 1));
        calls.put("tombstones load", () -> index.tombstoneStore(7, 0, true).load());
        for (Map.Entry<String, Executable> c : calls.entrySet()) {
            ReplicaException e = assertThrows(ReplicaException.class, c.getValue(), c.getKey() + " after close");
            assertEquals(ErrorCode.CLOSED, e.code(), c.getKey());
        }
    }

    @Test
    void closeWaitsForACallUnderWayAndTheCallsAfterItFail() throws Exception {
        NodeIndex index = new NodeIndex(dir);
        CountDownLatch reading = new CountDownLatch(1);
        CountDownLatch closed = new CountDownLatch(1);
        java.util.concurrent.atomic.AtomicReference<Throwable> readerFailure = new java.util.concurrent.atomic.AtomicReference<>();
        java.util.concurrent.atomic.AtomicLong reads = new java.util.concurrent.atomic.AtomicLong();
        Thread reader = new Thread(() -> {
            try {
                while (true) {
                    index.indexedUpTo(7, reads.getAndIncrement());
                    reading.countDown();
                }
            } catch (ReplicaException e) {
                if (e.code() != ErrorCode.CLOSED) {
                    readerFailure.set(e);
                }
            } catch (Throwable t) {
                readerFailure.set(t);
            } finally {
                closed.countDown();
            }
        });
        reader.start();
        assertTrue(reading.await(30, TimeUnit.SECONDS), "the reader runs");
        index.close(); // with reads racing it: before, the JVM could crash here
        assertTrue(closed.await(30, TimeUnit.SECONDS), "the reader's next call fails");
        reader.join(TimeUnit.SECONDS.toMillis(30));
        assertEquals(null, readerFailure.get(), "the reader only ever sees CLOSED");
        assertTrue(reads.get() > 0);
    }
}
