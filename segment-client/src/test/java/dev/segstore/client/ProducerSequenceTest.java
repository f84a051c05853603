package dev.segstore.client;

import org.junit.jupiter.api.Test;

import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The roll to a fresh producer id at the int32 sequence limit, at its exact boundary. */
class ProducerSequenceTest {
    @Test
    void aBatchEndingAtTheLargestSequenceKeepsTheIdAndTheNextOneRolls() {
        AtomicLong ids = new AtomicLong(100);
        ProducerSequence p = new ProducerSequence(ids::getAndIncrement, Integer.MAX_VALUE - 9);
        assertEquals(new ProducerSequence.Stamp(100, Integer.MAX_VALUE - 9), p.take(10), "its last sequence is the largest");
        assertEquals(new ProducerSequence.Stamp(101, 0), p.take(1), "one more would wrap: a fresh id from 0");
        assertEquals(new ProducerSequence.Stamp(101, 1), p.take(5));
        assertEquals(new ProducerSequence.Stamp(101, 6), p.take(1));
    }

    @Test
    void aBatchThatWouldWrapRollsBeforeItIsStamped() {
        AtomicLong ids = new AtomicLong(7);
        ProducerSequence p = new ProducerSequence(ids::getAndIncrement, Integer.MAX_VALUE - 3);
        assertEquals(new ProducerSequence.Stamp(8, 0), p.take(5), "MAX - 3 + 5 - 1 would pass the largest");
        assertEquals(new ProducerSequence.Stamp(8, 5), p.take(10_000));
    }

    @Test
    void aFreshIdIsNeverTheOneRolledFrom() {
        long[] ids = {5, 5, 5, 6};
        int[] next = {0};
        ProducerSequence p = new ProducerSequence(() -> ids[next[0]++], Integer.MAX_VALUE);
        assertEquals(new ProducerSequence.Stamp(5, Integer.MAX_VALUE), p.take(1));
        assertEquals(new ProducerSequence.Stamp(6, 0), p.take(1), "the same id drawn again is drawn once more");
    }

    @Test
    void aNegativeFirstSequenceOrAnEmptyBatchIsRefused() {
        assertThrows(IllegalArgumentException.class, () -> new ProducerSequence(() -> 1, -1));
        assertThrows(IllegalArgumentException.class, () -> new ProducerSequence(() -> 1, 0).take(0));
    }
}
