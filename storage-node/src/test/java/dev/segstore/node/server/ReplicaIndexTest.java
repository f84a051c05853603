package dev.segstore.node.server;

import dev.segstore.log.AppendRecord;
import dev.segstore.log.DirectoryConfig;
import dev.segstore.log.Durability;
import dev.segstore.log.LogConfig;
import dev.segstore.log.LogDirectory;
import dev.segstore.log.SegmentLog;
import dev.segstore.node.index.NodeIndex;
import dev.segstore.node.replica.Partition;
import dev.segstore.node.replica.ReplicaConfig;
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
import java.util.function.ToLongFunction;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A replica's key and tag index in the background: a few records wait for the delay, many are indexed at the next
 * tick, and a catch-up (as every indexed read makes first) indexes everything at once whatever the background did;
 * after a cut the records written again are indexed, whether the cut was reported or not; a deleted replica's index
 * writes nothing.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ReplicaIndexTest {
    private static final long SECOND = TimeUnit.SECONDS.toNanos(1);

    @TempDir
    Path root;
    private LogDirectory dir;
    private NodeIndex nodeIndex;
    private SegmentLog log;
    private ReplicaIndex index;

    @BeforeEach
    void open() throws Exception {
        dir = LogDirectory.open(root.resolve("data"), DirectoryConfig.DEFAULT);
        log = dir.openLog("s-0", LogConfig.DEFAULT, 0);
        nodeIndex = new NodeIndex(root.resolve("index"));
        Partition p = new Partition("s/0@1", log, 1, new ReplicaConfig(1, 1_000, Durability.FSYNC), System::currentTimeMillis,
                (epoch, version, isr) -> CompletableFuture.failedFuture(new IllegalStateException("no ISR change here")));
        index = new ReplicaIndex(nodeIndex, 7, 0, p, new AppendedKeys.Budget(NodeConfig.DEFAULT_INDEX_QUEUE_MAX_BYTES)); // not observing: reads back
    }

    @AfterEach
    void close() {
        nodeIndex.close();
        dir.close();
    }

    private void write(int records, String key) {
        List<AppendRecord> batch = new ArrayList<>();
        for (int i = 0; i < records; i++) {
            batch.add(new AppendRecord(key, List.of("t"), 1, List.of(), new byte[8]));
        }
        log.appendAsLeader(batch, 0, Durability.FSYNC).join();
    }

    @Test
    void aFewRecordsWaitForTheDelayThenAreIndexed() throws Exception {
        write(3, "k");
        long t0 = 5 * SECOND;
        assertFalse(index.catchUpIfDue(t0), "3 records, just seen: not due");
        assertFalse(index.catchUpIfDue(t0 + SECOND / 2), "3 records seen half a second ago: not due");
        assertEquals(List.of(), nodeIndex.offsetsByKey(7, 0, "k", 0, 10), "nothing indexed before the delay");
        write(2, "k"); // newer records do not restart the wait of the oldest
        assertTrue(index.catchUpIfDue(t0 + ReplicaIndex.BACKGROUND_DELAY_NANOS), "records waited the delay: due");
        assertEquals(List.of(0L, 1L, 2L, 3L, 4L), nodeIndex.offsetsByKey(7, 0, "k", 0, 10));
        assertEquals(5, nodeIndex.indexedUpTo(7, 0));
        assertFalse(index.catchUpIfDue(t0 + 10 * SECOND), "nothing new: nothing to do");
        write(1, "k");
        assertFalse(index.catchUpIfDue(t0 + 11 * SECOND), "the wait starts again when the tick first sees the record");
    }

    @Test
    void manyRecordsAreIndexedAtOnce() throws Exception {
        write((int) ReplicaIndex.BACKGROUND_RECORDS, "many");
        assertTrue(index.catchUpIfDue(SECOND), ReplicaIndex.BACKGROUND_RECORDS + " records waiting: due at the first tick");
        assertEquals(ReplicaIndex.BACKGROUND_RECORDS, nodeIndex.indexedUpTo(7, 0));
    }

    @Test
    void aCatchUpIndexesWhatTheBackgroundLeft() throws Exception {
        write(3, "a");
        assertFalse(index.catchUpIfDue(SECOND));
        assertEquals(-1, nodeIndex.indexedUpTo(7, 0), "the tick indexed nothing");
        index.catchUp(); // what an indexed read does first
        assertEquals(List.of(0L, 1L, 2L), nodeIndex.offsetsByKey(7, 0, "a", 0, 10), "a read sees every record written");
        assertFalse(index.catchUpIfDue(SECOND + 2 * ReplicaIndex.BACKGROUND_DELAY_NANOS), "the catch-up left nothing waiting");
        assertEquals(3, nodeIndex.indexedUpTo(7, 0));
    }

    /** Three batches of one record each (a cut falls on batch boundaries). */
    private void writeThreeBatches(String key) {
        for (int i = 0; i < 3; i++) {
            write(1, key);
        }
    }

    @Test
    void theRecordsWrittenAfterACutAreIndexed() throws Exception {
        writeThreeBatches("a");
        index.catchUp();
        assertEquals(1, log.truncateTo(1).join());
        index.resetTo(1); // as a follower's truncation does
        write(2, "c"); // offsets 1 and 2 again, before any tick
        index.catchUp();
        assertEquals(List.of(1L, 2L), nodeIndex.offsetsByKey(7, 0, "c", 0, 10),
                "indexed again from the cut, not from the mark this replica's index held before");
    }

    @Test
    void aCutThatWasNotReportedPullsTheMarkBackOnceSeen() throws Exception {
        writeThreeBatches("a");
        index.catchUp();
        assertEquals(1, log.truncateTo(1).join()); // no resetTo: a truncation that failed half-way, or the leader's cut at a seal
        assertFalse(index.catchUpIfDue(SECOND), "nothing waits beyond the cut");
        assertEquals(1, nodeIndex.indexedUpTo(7, 0), "the mark follows the written end back");
        write(2, "c");
        index.catchUp();
        assertEquals(List.of(1L, 2L), nodeIndex.offsetsByKey(7, 0, "c", 0, 10));
    }

    /** An index that observes the log's appends, as a storage node's does, its queue holding about {@code maxBytes}. */
    private ReplicaIndex observing(long maxBytes) {
        return observing(maxBytes, SegmentLog::truncations);
    }

    /** As above, reading the log's truncation count through {@code truncations}. */
    private ReplicaIndex observing(long maxBytes, ToLongFunction<SegmentLog> truncations) {
        Partition p = new Partition("s/0@1", log, 1, new ReplicaConfig(1, 1_000, Durability.FSYNC), System::currentTimeMillis,
                (epoch, version, isr) -> CompletableFuture.failedFuture(new IllegalStateException("no ISR change here")));
        ReplicaIndex observer = new ReplicaIndex(nodeIndex, 7, 0, p,
                new AppendedKeys(maxBytes, new AppendedKeys.Budget(NodeConfig.DEFAULT_INDEX_QUEUE_MAX_BYTES)), truncations);
        log.observeAppends(observer);
        return observer;
    }

    private void writeUntagged(int records) {
        List<AppendRecord> batch = new ArrayList<>();
        for (int i = 0; i < records; i++) {
            batch.add(new AppendRecord(null, List.of(), 1, List.of(), new byte[8]));
        }
        log.appendAsLeader(batch, 0, Durability.FSYNC).join();
    }

    @Test
    void appendedBatchesAreIndexedAsAppendedNotReadBack() throws Exception {
        ReplicaIndex observed = observing(ReplicaIndex.MAX_QUEUED_BYTES);
        write(3, "a");
        writeUntagged(2);
        write(1, "b");
        observed.catchUp();
        assertEquals(List.of(0L, 1L, 2L), nodeIndex.offsetsByKey(7, 0, "a", 0, 10));
        assertEquals(List.of(5L), nodeIndex.offsetsByKey(7, 0, "b", 0, 10));
        assertEquals(List.of(0L, 1L, 2L, 5L), nodeIndex.offsetsByTag(7, 0, "t", 0, 10));
        assertEquals(6, nodeIndex.indexedUpTo(7, 0));
        assertEquals(0, observed.recordsReadBack(), "every record was taken as appended: none read back from the log");
        assertEquals(6, observed.recordsTaken());
    }

    @Test
    void batchesAppendedBeforeACutAreReadBackNotTakenAsAppended() throws Exception {
        ReplicaIndex observed = observing(ReplicaIndex.MAX_QUEUED_BYTES);
        writeThreeBatches("a"); // queued, not indexed yet
        assertEquals(1, log.truncateTo(1).join());
        observed.resetTo(1); // as a follower's truncation does
        write(1, "c"); // offsets 1 and 2 again, queued after the cut
        write(1, "c");
        observed.catchUp();
        assertEquals(List.of(0L), nodeIndex.offsetsByKey(7, 0, "a", 0, 10), "the cut records' keys, queued before the cut, are not indexed");
        assertEquals(List.of(1L, 2L), nodeIndex.offsetsByKey(7, 0, "c", 0, 10), "the records written again are");
        assertEquals(1, observed.recordsReadBack(), "the record below the cut, queued before it, read back");
        assertEquals(2, observed.recordsTaken(), "those appended after the cut taken as appended");
    }

    @Test
    void aCutNotReportedWhileBatchesWaitIsSeenByTheirTruncationCount() throws Exception {
        ReplicaIndex observed = observing(ReplicaIndex.MAX_QUEUED_BYTES);
        writeThreeBatches("a");
        observed.catchUp(); // mark 3, queue empty
        write(1, "a"); // offset 3, queued
        assertEquals(3, log.truncateTo(3).join()); // cuts offset 3, not reported (no resetTo): the mark (3) stays
        write(1, "d"); // offset 3 again
        observed.catchUp();
        assertEquals(List.of(0L, 1L, 2L), nodeIndex.offsetsByKey(7, 0, "a", 0, 10));
        assertEquals(List.of(3L), nodeIndex.offsetsByKey(7, 0, "d", 0, 10));
    }

    @Test
    void aCutBetweenACatchUpsTwoLooksAtTheCountTakesNothingQueued() throws Exception {
        int[] looks = {0};
        ReplicaIndex observed = observing(ReplicaIndex.MAX_QUEUED_BYTES, l -> {
                    long count = l.truncations();
                    if (looks[0]++ == 0) { // the first look: a cut and new appends run right after it, before the second
                        assertEquals(1, l.truncateTo(1).join());
                        write(1, "c"); // offsets 1 and 2 again, queued with the count after the cut
                        write(1, "c");
                    }
                    return count;
                });
        writeThreeBatches("a"); // offsets 0-2, queued with the count before the cut
        observed.catchUp();
        assertEquals(2, looks[0], "the count was looked at twice");
        assertEquals(List.of(0L), nodeIndex.offsetsByKey(7, 0, "a", 0, 10),
                "the records the cut between the looks replaced are not indexed from the queue");
        assertEquals(List.of(1L, 2L), nodeIndex.offsetsByKey(7, 0, "c", 0, 10), "the records written again are");
        assertEquals(3, observed.recordsReadBack(), "all read back: the queue holds batches from either side of the cut");
        assertEquals(0, observed.recordsTaken());
        write(1, "d"); // offset 3, no cut now: the next catch-up drops what the last one left queued and takes this
        observed.catchUp();
        assertEquals(List.of(3L), nodeIndex.offsetsByKey(7, 0, "d", 0, 10));
        assertEquals(List.of(0L), nodeIndex.offsetsByKey(7, 0, "a", 0, 10), "the cut records' keys, still queued, stay out");
        assertEquals(3, observed.recordsReadBack(), "nothing more read back");
        assertEquals(1, observed.recordsTaken(), "the new record taken as appended");
    }

    @Test
    void batchesAFullQueueLeftOutAreReadBack() throws Exception {
        ReplicaIndex observed = observing(400); // a batch of one record with a key and a tag weighs 242 estimated bytes
        write(1, "a"); // queued
        write(1, "b"); // queued: the queue is full (484 bytes)
        write(1, "c"); // left out
        write(1, "d"); // left out
        observed.catchUp();
        write(1, "e"); // queued again: the catch-up emptied the queue
        observed.catchUp();
        for (String k : List.of("a", "b", "c", "d", "e")) {
            assertEquals(1, nodeIndex.offsetsByKey(7, 0, k, 0, 10).size(), "key " + k + " indexed once");
        }
        assertEquals(2, observed.recordsReadBack(), "the two records left out read back");
        assertEquals(3, observed.recordsTaken());
        assertEquals(5, nodeIndex.indexedUpTo(7, 0));
    }

    @Test
    void batchesAppendedBeforeTheIndexObservedTheLogAreReadBack() throws Exception {
        write(2, "early");
        ReplicaIndex observed = observing(ReplicaIndex.MAX_QUEUED_BYTES);
        write(1, "late");
        observed.catchUp();
        assertEquals(List.of(0L, 1L), nodeIndex.offsetsByKey(7, 0, "early", 0, 10));
        assertEquals(List.of(2L), nodeIndex.offsetsByKey(7, 0, "late", 0, 10));
        assertEquals(2, observed.recordsReadBack());
        assertEquals(1, observed.recordsTaken());
    }

    @Test
    void aMarkInsideABatchTakesTheBatchFromTheMark() throws Exception {
        nodeIndex.index(7, 0, List.of(), 1); // indexed up to offset 1: as a read-back that stopped inside a batch leaves it
        ReplicaIndex observed = observing(ReplicaIndex.MAX_QUEUED_BYTES);
        write(3, "a"); // one batch, offsets 0-2
        observed.catchUp();
        assertEquals(List.of(1L, 2L), nodeIndex.offsetsByKey(7, 0, "a", 0, 10), "from the mark on");
        assertEquals(2, observed.recordsTaken());
        assertEquals(0, observed.recordsReadBack());
        assertEquals(3, nodeIndex.indexedUpTo(7, 0));
    }

    @Test
    void aDeletedReplicasIndexWritesNothing() throws Exception {
        write(3, "a");
        index.close(); // the replica was deleted: its rows are dropped next
        index.catchUp();
        index.resetTo(0);
        assertFalse(index.catchUpIfDue(10 * SECOND));
        assertEquals(-1, nodeIndex.indexedUpTo(7, 0), "no mark written for a deleted replica");
        assertEquals(List.of(), nodeIndex.offsetsByKey(7, 0, "a", 0, 10), "no row written for a deleted replica");
    }
}
