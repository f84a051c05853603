package dev.segstore.log;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class FlushPolicyTest {
    private final FlushPolicy policy = new FlushPolicy(2_000, 1_000, 50_000, 10_000);

    @Test
    void nothingUnsyncedNeverFlushes() {
        assertEquals(FlushPolicy.NEVER, policy.nanosUntilFlush(new FlushPolicy.State(0, -1, -1, true)));
    }

    @Test
    void fsyncWaiterFlushesWhenTheQueueIsEmpty() {
        assertEquals(0, policy.nanosUntilFlush(new FlushPolicy.State(10, 0, 0, true)));
    }

    @Test
    void fsyncWaiterWithMoreQueuedWaitsUpToMaxWaitOrBytes() {
        assertEquals(1_500, policy.nanosUntilFlush(new FlushPolicy.State(10, 500, 500, false)));
        assertEquals(0, policy.nanosUntilFlush(new FlushPolicy.State(10, 2_000, 2_000, false)));
        assertEquals(0, policy.nanosUntilFlush(new FlushPolicy.State(1_000, 10, 10, false)));
    }

    @Test
    void pageCacheBytesFlushInTheBackground() {
        assertEquals(40_000, policy.nanosUntilFlush(new FlushPolicy.State(10, -1, 10_000, true)));
        assertEquals(0, policy.nanosUntilFlush(new FlushPolicy.State(10, -1, 50_000, false)));
        assertEquals(0, policy.nanosUntilFlush(new FlushPolicy.State(10_000, -1, 1, false)));
    }

    @Test
    void rejectsNonsense() {
        assertThrows(IllegalArgumentException.class, () -> new FlushPolicy(-1, 1, 1, 1));
        assertThrows(IllegalArgumentException.class, () -> new FlushPolicy(1, 0, 1, 1));
    }
}
