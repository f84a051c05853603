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
        for (int i = 0; i < 7; i++) {
            t.record(1, i, 1, i);
        }
        assertInstanceOf(ProducerStateTable.OutOfOrder.class, t.check(1, 0, 1), "too old to be recognised");
        assertInstanceOf(ProducerStateTable.Duplicate.class, t.check(1, 6, 1));
        t.truncateTo(6);
        assertInstanceOf(ProducerStateTable.New.class, t.check(1, 6, 1), "the truncated batch may be appended again");
    }
}
