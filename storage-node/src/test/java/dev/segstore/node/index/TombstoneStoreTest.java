package dev.segstore.node.index;

import dev.segstore.node.replica.Tombstones;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Tombstones kept in the node's RocksDB: follower overwrites, trimming, and reopening; and saved producer states. */
class TombstoneStoreTest {
    @TempDir
    Path dir;

    @Test
    void aFollowerTakesTheLeadersListOverItsOwnAndItSurvivesAReopen() throws Exception {
        try (NodeIndex index = new NodeIndex(dir)) {
            Tombstones t = new Tombstones(index.tombstoneStore(7, 0, true));
            assertEquals(3, t.append(List.of(5L, 9L, 2L)));
            // The leader's list: 5, 4 (position 1 differs: our 9 was a deposed leader's), and it ends at 2.
            t.overwrite(0, List.of(5L, 4L), 2);
            assertEquals(2, t.end(), "positions past the leader's end are dropped once the follower reached it");
            assertTrue(t.isDeleted(4));
            assertFalse(t.isDeleted(9));
            assertFalse(t.isDeleted(2));
            t.overwrite(2, List.of(8L), 3);
            assertEquals(List.of(5L, 4L, 8L), t.read(0, 10));
            assertThrows(IllegalArgumentException.class, () -> t.overwrite(5, List.of(1L), 6), "a gap is refused");
            Tombstones other = new Tombstones(index.tombstoneStore(7, 1, true));
            other.append(List.of(100L));
        }
        try (NodeIndex index = new NodeIndex(dir)) {
            Tombstones t = new Tombstones(index.tombstoneStore(7, 0, true));
            assertEquals(List.of(5L, 4L, 8L), t.read(0, 10), "reopened as written");
            assertEquals(List.of(100L), new Tombstones(index.tombstoneStore(7, 1, true)).read(0, 10), "segments apart");
            index.dropSegment(7, 0);
            assertEquals(0, new Tombstones(index.tombstoneStore(7, 0, true)).end(), "dropped with the replica");
            assertEquals(1, new Tombstones(index.tombstoneStore(7, 1, true)).end());
        }
    }
    @Test
    void aSavedProducerStateIsTakenOnceAndDroppedWithItsSegment() throws Exception {
        try (NodeIndex index = new NodeIndex(dir)) {
            index.saveProducerState(7, 0, new byte[] {1, 2, 3});
            index.saveProducerState(7, 1, new byte[] {4});
            index.saveProducerState(8, 0, new byte[] {5});
        }
        try (NodeIndex index = new NodeIndex(dir)) {
            assertArrayEquals(new byte[] {1, 2, 3}, index.takeProducerState(7, 0), "kept across a reopen");
            assertNull(index.takeProducerState(7, 0), "taken once: the log changes after the replica opens");
            index.dropSegment(7, 1);
            assertNull(index.takeProducerState(7, 1), "dropped with its segment");
        }
        try (NodeIndex index = new NodeIndex(dir)) {
            assertNull(index.takeProducerState(7, 0), "the take is durable");
            assertArrayEquals(new byte[] {5}, index.takeProducerState(8, 0));
        }
    }
}
