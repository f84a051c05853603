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
    void batchesMayArriveOutOfSequenceOrder() {
        ProducerStateTable t = new ProducerStateTable();
        t.record(9, 3, 2, 0); // sequences 3-4 first (0-2 were sent earlier but failed and are retried later)
        assertInstanceOf(ProducerStateTable.New.class, t.check(9, 0, 3), "a gap below is a batch never appended");
        t.record(9, 0, 3, 2);
        assertEquals(new ProducerStateTable.Duplicate(new ProducerStateTable.Appended(0, 2, 2, 4)), t.check(9, 0, 3));
        assertEquals(new ProducerStateTable.Duplicate(new ProducerStateTable.Appended(3, 4, 0, 1)), t.check(9, 3, 2));
    }
}
