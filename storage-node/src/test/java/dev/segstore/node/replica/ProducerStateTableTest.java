package dev.segstore.node.replica;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;

class ProducerStateTableTest {

    @Test
    void recognisesRetriesOfRecentBatches() {
        ProducerStateTable t = new ProducerStateTable();
        assertInstanceOf(ProducerStateTable.New.class, t.check(5, 0, 3));
        t.record(5, 0, 3, 100);
        t.record(5, 3, 2, 103);
        ProducerStateTable.Check retry = t.check(5, 0, 3);
        assertEquals(new ProducerStateTable.Duplicate(new ProducerStateTable.Appended(0, 2, 100, 102)), retry);
        assertInstanceOf(ProducerStateTable.OutOfOrder.class, t.check(5, 0, 2), "same sequence, other size");
        assertInstanceOf(ProducerStateTable.New.class, t.check(5, 5, 1));
        assertInstanceOf(ProducerStateTable.New.class, t.check(-1, 0, 1), "no producer id: never deduplicated");
    }

    @Test
    void forgetsOldBatchesAndTruncatedOnes() {
        ProducerStateTable t = new ProducerStateTable();
        int n = ProducerStateTable.BATCHES_PER_PRODUCER + 2;
        for (int i = 0; i < n; i++) {
            t.record(1, i, 1, i);
        }
        assertInstanceOf(ProducerStateTable.OutOfOrder.class, t.check(1, 0, 1), "too old to be recognised");
        assertInstanceOf(ProducerStateTable.OutOfOrder.class, t.check(1, 1, 1), "too old to be recognised");
        assertInstanceOf(ProducerStateTable.Duplicate.class, t.check(1, n - 1, 1));
        t.truncateTo(n - 1);
        assertInstanceOf(ProducerStateTable.New.class, t.check(1, n - 1, 1), "the truncated batch may be appended again");
    }

    @Test
    void aTableReadFromItsBytesAnswersAsTheOriginal() {
        ProducerStateTable t = new ProducerStateTable();
        int n = ProducerStateTable.BATCHES_PER_PRODUCER + 3;
        for (int i = 0; i < n; i++) {
            t.record(1, i, 1, i);
        }
        t.record(2, 5, 2, n);
        t.record(2, 0, 3, n + 2); // out of sequence order
        ProducerStateTable copy = ProducerStateTable.fromBytes(t.toBytes());
        assertEquals(2, copy.producerCount());
        for (int[] probe : new int[][] {{1, 0, 1}, {1, 2, 1}, {1, n - 1, 1}, {1, n, 1}, {2, 5, 2}, {2, 0, 3}, {2, 0, 2}, {2, 7, 1}, {3, 0, 1}}) {
            assertEquals(t.check(probe[0], probe[1], probe[2]), copy.check(probe[0], probe[1], probe[2]),
                    "producer " + probe[0] + " sequence " + probe[1] + " count " + probe[2]);
        }
        assertInstanceOf(ProducerStateTable.OutOfOrder.class, copy.check(1, 2, 1), "forgotten batches stay forgotten");
        byte[] bytes = t.toBytes();
        org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> ProducerStateTable.fromBytes(java.util.Arrays.copyOf(bytes, bytes.length - 1)), "cut short");
        bytes[0] = 9;
        org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () -> ProducerStateTable.fromBytes(bytes), "unknown version");
    }

    @Test
    void batchesMayArriveOutOfSequenceOrder() {
        ProducerStateTable t = new ProducerStateTable();
        t.record(9, 3, 2, 0); // sequences 3-4 first (0-2 were sent earlier but failed and are retried later)
        assertInstanceOf(ProducerStateTable.New.class, t.check(9, 0, 3), "a gap below is a batch never appended");
        t.record(9, 0, 3, 2);
        assertEquals(new ProducerStateTable.Duplicate(new ProducerStateTable.Appended(0, 2, 2, 4)), t.check(9, 0, 3));
        assertEquals(new ProducerStateTable.Duplicate(new ProducerStateTable.Appended(3, 4, 0, 1)), t.check(9, 3, 2));
    }

    @Test
    void readsBackTheProducersOfALogsTailAndSkipsBatchesItKnows(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws Exception {
        try (dev.segstore.log.LogDirectory d = dev.segstore.log.LogDirectory.open(dir, dev.segstore.log.DirectoryConfig.DEFAULT)) {
            dev.segstore.log.SegmentLog log = d.openLog("s-0", dev.segstore.log.LogConfig.DEFAULT, 0);
            byte[] payload = new byte[1000];
            for (int i = 0; i < 100; i++) {
                log.appendAsLeader(java.util.List.of(dev.segstore.log.AppendRecord.of(i, payload)), 0, 7, i,
                        dev.segstore.log.Durability.FSYNC).get(30, java.util.concurrent.TimeUnit.SECONDS);
            }
            ProducerStateTable all = new ProducerStateTable();
            all.readBack(log, Long.MAX_VALUE);
            assertEquals(new ProducerStateTable.Duplicate(new ProducerStateTable.Appended(0, 0, 0, 0)), all.check(7, 0, 1));
            assertEquals(new ProducerStateTable.Duplicate(new ProducerStateTable.Appended(99, 99, 99, 99)), all.check(7, 99, 1));

            ProducerStateTable tail = new ProducerStateTable();
            tail.readBack(log, 20_000); // about the last 20 of 100 batches of 1 KiB
            assertEquals(new ProducerStateTable.Duplicate(new ProducerStateTable.Appended(99, 99, 99, 99)), tail.check(7, 99, 1));
            assertEquals(new ProducerStateTable.Duplicate(new ProducerStateTable.Appended(85, 85, 85, 85)), tail.check(7, 85, 1));
            assertInstanceOf(ProducerStateTable.New.class, tail.check(7, 10, 1), "outside the tail read back");

            for (int i = 0; i < ProducerStateTable.BATCHES_PER_PRODUCER; i++) {
                tail.record(7, 99, 1, 99); // a fetch that was in flight: known already, so not remembered twice
            }
            assertEquals(new ProducerStateTable.Duplicate(new ProducerStateTable.Appended(85, 85, 85, 85)), tail.check(7, 85, 1),
                    "copies of batch 99 did not push batch 85 out");
        }
    }

    @Test
    void readsBackTheRestOfTheLogAsOlderThanWhatItKnows(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws Exception {
        try (dev.segstore.log.LogDirectory d = dev.segstore.log.LogDirectory.open(dir, dev.segstore.log.DirectoryConfig.DEFAULT)) {
            dev.segstore.log.SegmentLog log = d.openLog("s-0", dev.segstore.log.LogConfig.DEFAULT, 0);
            byte[] payload = new byte[100];
            int n = ProducerStateTable.BATCHES_PER_PRODUCER + 44;
            for (int i = 0; i < n; i++) {
                log.appendAsLeader(java.util.List.of(dev.segstore.log.AppendRecord.of(i, payload)), 0, 7, i,
                        dev.segstore.log.Durability.FSYNC).get(30, java.util.concurrent.TimeUnit.SECONDS);
            }
            ProducerStateTable t = new ProducerStateTable();
            long tailStart = t.readBack(log, log.sizeInBytes() / 10);
            assertEquals(true, tailStart > 0 && tailStart < n - 1, "a tail only: from " + tailStart);
            assertInstanceOf(ProducerStateTable.New.class, t.check(7, 50, 1), "before the tail: unknown");
            t.record(7, n, 1, n); // appended since

            assertEquals(0, t.readBack(log, 0, tailStart));
            assertEquals(new ProducerStateTable.Duplicate(new ProducerStateTable.Appended(50, 50, 50, 50)), t.check(7, 50, 1));
            assertEquals(new ProducerStateTable.Duplicate(new ProducerStateTable.Appended(n, n, n, n)), t.check(7, n, 1),
                    "the newest batches are kept, the oldest forgotten");
            assertInstanceOf(ProducerStateTable.OutOfOrder.class, t.check(7, 44, 1), "the oldest beyond the limit: forgotten");
            assertEquals(new ProducerStateTable.Duplicate(new ProducerStateTable.Appended(45, 45, 45, 45)), t.check(7, 45, 1));
        }
    }

    @Test
    void aSequenceOutsideInt32IsRefusedNotTakenForANewBatch() {
        ProducerStateTable t = new ProducerStateTable();
        assertInstanceOf(ProducerStateTable.OutOfOrder.class, t.check(4, -5, 1), "a wrapped sequence from a producer not seen yet");
        t.record(4, 0, 1, 0);
        assertInstanceOf(ProducerStateTable.OutOfOrder.class, t.check(4, Integer.MIN_VALUE, 10), "a wrapped sequence");
        assertInstanceOf(ProducerStateTable.OutOfOrder.class, t.check(4, Integer.MAX_VALUE - 2, 4), "a batch whose last sequence would wrap");
        assertInstanceOf(ProducerStateTable.New.class, t.check(4, Integer.MAX_VALUE - 3, 4), "up to the largest sequence");
        assertInstanceOf(ProducerStateTable.New.class, t.check(-1, -7, 1), "no producer id: sequences are not used");
    }
}
