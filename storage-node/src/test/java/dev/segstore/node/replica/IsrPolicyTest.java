package dev.segstore.node.replica;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class IsrPolicyTest {

    @Test
    void caughtUpMeansReachedTheLeadersEndWithinTheLag() {
        FollowerProgress p = FollowerProgress.unknown(2, 1000);
        assertTrue(IsrPolicy.isCaughtUp(p, 1500, 500), "a new follower gets a full lag period");
        assertFalse(IsrPolicy.isCaughtUp(p, 1501, 500));
        FollowerProgress behind = p.afterFetch(10, -1, 20, 1400);
        assertEquals(1000, behind.lastCaughtUpMs(), "a fetch below the leader's end does not count as caught up");
        FollowerProgress level = behind.afterFetch(20, -1, 20, 1450);
        assertEquals(1450, level.lastCaughtUpMs());
        assertTrue(IsrPolicy.isCaughtUp(level, 1900, 500));
    }

    @Test
    void joiningNeedsTheHighWatermark() {
        FollowerProgress p = FollowerProgress.unknown(3, 0).afterFetch(8, 2, 8, 100);
        assertFalse(IsrPolicy.mayJoin(p, 9, 2, 100, 500));
        assertTrue(IsrPolicy.mayJoin(p, 8, 2, 100, 500));
        assertFalse(IsrPolicy.mayJoin(p, 8, 3, 100, 500), "joining also needs every acknowledged delete");
    }

    @Test
    void tombstoneWatermarkIsTheMinimumTombstoneEndOverTheIsr() {
        Map<Integer, FollowerProgress> f = Map.of(
                2, new FollowerProgress(2, 7, 5, 0, 0),
                3, new FollowerProgress(3, 4, 2, 0, 0));
        assertEquals(2, IsrPolicy.tombstoneWatermark(6, List.of(1, 2, 3), 1, f, 0));
        assertEquals(5, IsrPolicy.tombstoneWatermark(6, List.of(1, 2), 1, f, 0));
        assertEquals(3, IsrPolicy.tombstoneWatermark(6, List.of(1, 2, 3), 1, f, 3), "never below the current one");
    }

    @Test
    void highWatermarkIsTheMinimumOverTheIsrAndNeverGoesBack() {
        Map<Integer, FollowerProgress> f = Map.of(
                2, new FollowerProgress(2, 7, 0, 0, 0),
                3, new FollowerProgress(3, 4, 0, 0, 0));
        assertEquals(4, IsrPolicy.highWatermark(10, List.of(1, 2, 3), 1, f, 0));
        assertEquals(7, IsrPolicy.highWatermark(10, List.of(1, 2), 1, f, 0), "a follower out of the ISR does not hold it back");
        assertEquals(5, IsrPolicy.highWatermark(10, List.of(1, 2, 3), 1, f, 5), "never below the current one");
        assertEquals(3, IsrPolicy.highWatermark(10, List.of(1, 4), 1, f, 3), "an unheard member holds it where it is");
        assertEquals(6, IsrPolicy.highWatermark(6, List.of(1, 2), 1, f, 0), "the leader's own end counts");
    }
}
