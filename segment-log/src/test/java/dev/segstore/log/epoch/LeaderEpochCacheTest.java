package dev.segstore.log.epoch;

import dev.segstore.log.format.FormatException;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LeaderEpochCacheTest {

    private static LeaderEpochCache cache() {
        LeaderEpochCache c = new LeaderEpochCache();
        c.assign(1, 0);
        c.assign(3, 10);
        c.assign(4, 25);
        return c;
    }

    @Test
    void assignKeepsEpochsAndOffsetsGrowing() {
        LeaderEpochCache c = cache();
        assertFalse(c.assign(4, 30), "same epoch again is a no-op");
        assertFalse(c.assign(2, 40), "older epoch is ignored");
        assertThrows(IllegalArgumentException.class, () -> c.assign(5, 20));
        assertTrue(c.assign(5, 25), "an epoch that wrote nothing is replaced");
        assertEquals(List.of(new EpochEntry(1, 0), new EpochEntry(3, 10), new EpochEntry(5, 25)), c.entries());
    }

    @Test
    void endOffsetForFollowsLeaderEpochTruncationRules() {
        LeaderEpochCache c = cache();
        assertEquals(new EpochEndOffset(4, 40), c.endOffsetFor(4, 40), "latest epoch ends at the log end");
        assertEquals(new EpochEndOffset(3, 25), c.endOffsetFor(3, 40));
        assertEquals(new EpochEndOffset(1, 10), c.endOffsetFor(2, 40), "unknown epoch: the largest below it");
        assertEquals(new EpochEndOffset(0, 0), c.endOffsetFor(0, 40), "older than all: ends where history starts");
        assertEquals(EpochEndOffset.UNDEFINED, c.endOffsetFor(9, 40), "newer than all");
        assertEquals(EpochEndOffset.UNDEFINED, new LeaderEpochCache().endOffsetFor(1, 0));
    }

    @Test
    void truncationFromEitherEnd() {
        LeaderEpochCache c = cache();
        assertTrue(c.truncateFromEnd(10));
        assertEquals(List.of(new EpochEntry(1, 0)), c.entries());
        LeaderEpochCache d = cache();
        assertTrue(d.truncateFromStart(12));
        assertEquals(List.of(new EpochEntry(3, 12), new EpochEntry(4, 25)), d.entries());
        assertFalse(d.truncateFromStart(12));
    }

    @Test
    void checkpointRoundTripsAndRejectsDamage() {
        LeaderEpochCache c = cache();
        byte[] bytes = c.encode();
        assertEquals(c.entries(), LeaderEpochCache.decode(bytes).entries());
        for (int i = 0; i < bytes.length; i++) {
            byte[] copy = bytes.clone();
            copy[i] ^= 0x10;
            assertThrows(FormatException.class, () -> LeaderEpochCache.decode(copy), "byte " + i);
        }
        assertThrows(FormatException.class, () -> LeaderEpochCache.decode(new byte[5]));
    }
}
