package dev.segstore.node.server;

import dev.segstore.log.AppendRecord;
import dev.segstore.log.format.BatchView;
import dev.segstore.log.format.RecordBatch;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

/** The queue of a replica's appended keys and tags: its bound, the node's shared budget, and a closed queue. */
class AppendedKeysTest {
    private static BatchView batch(long base, String key) {
        return BatchView.at(RecordBatch.encode(base, 0, -1, -1, List.of(new AppendRecord(key, List.of("t"), 1, List.of(), new byte[8]))));
    }

    @Test
    void queuedBatchesCountInTheReplicasBoundAndTheNodesBudgetUntilRemoved() {
        AppendedKeys.Budget budget = new AppendedKeys.Budget(1 << 20);
        AppendedKeys keys = new AppendedKeys(1 << 20, budget);
        keys.add(batch(0, "a"), 0);
        keys.add(batch(1, null), 0);
        assertEquals(keys.bytes(), budget.bytes());
        AppendedKeys.Appended first = keys.peek();
        assertEquals(List.of(new dev.segstore.node.index.NodeIndex.Entry(0, "a", List.of("t"))), first.entries());
        keys.remove(first);
        keys.remove(first); // not the head any more: nothing removed twice
        AppendedKeys.Appended second = keys.peek();
        assertEquals(1, second.baseOffset());
        keys.remove(second);
        assertNull(keys.peek());
        assertEquals(0, keys.bytes());
        assertEquals(0, budget.bytes(), "every byte counted is given back");
    }

    @Test
    void aBatchIsLeftOutWhenTheNodesBudgetIsSpentByAnotherReplica() {
        AppendedKeys.Budget budget = new AppendedKeys.Budget(300);
        AppendedKeys one = new AppendedKeys(1 << 20, budget);
        AppendedKeys other = new AppendedKeys(1 << 20, budget);
        one.add(batch(0, "a"), 0);
        one.add(batch(1, "b"), 0); // the budget is spent (over 300 bytes)
        other.add(batch(0, "c"), 0);
        assertNull(other.peek(), "left out: the node's budget is spent");
        one.close();
        assertEquals(0, budget.bytes(), "a closed queue gives its bytes back");
        other.add(batch(0, "c"), 0);
        assertEquals(0, other.peek().baseOffset(), "queued again once the budget has room");
        one.add(batch(2, "d"), 0);
        assertNull(one.peek(), "a closed queue takes nothing");
    }
}
