package dev.segstore.node.replica;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The roll's state machine alone: when a segment starts sealing, when the roll is asked for, and the seal. */
class SegmentRollTest {
    private final List<CompletableFuture<Void>> asked = new ArrayList<>();
    private final List<Long> askedAt = new ArrayList<>();
    private final SegmentRoll roll = new SegmentRoll();

    SegmentRollTest() {
        roll.configure(1_000, 60_000, (epoch, end) -> {
            askedAt.add(end);
            CompletableFuture<Void> f = new CompletableFuture<>();
            asked.add(f);
            return f;
        });
    }

    @Test
    void aFullSegmentRefusesWritesAndAsksOnceTheIsrHasEverythingAndAgainAfterAFailure() {
        assertFalse(roll.afterAppend(999, 0));
        assertFalse(roll.refusesWrites());
        assertTrue(roll.afterAppend(1_000, 1), "full at segmentBytes");
        assertTrue(roll.refusesWrites());
        assertFalse(roll.afterAppend(1_200, 2), "starts sealing once");

        List<Throwable> answers = new ArrayList<>();
        roll.maybeRequest(3, 40, 50, (end, e) -> answers.add(e));
        assertTrue(askedAt.isEmpty(), "not while the high watermark is below the log end");
        roll.maybeRequest(3, 50, 50, (end, e) -> {
            roll.answered();
            answers.add(e);
        });
        roll.maybeRequest(3, 50, 50, (end, e) -> answers.add(e));
        assertEquals(List.of(50L), askedAt, "one request in flight at a time, at the high watermark");

        asked.get(0).completeExceptionally(new RuntimeException("no controller"));
        assertEquals(1, answers.size());
        roll.maybeRequest(3, 50, 50, (end, e) -> roll.answered());
        assertEquals(List.of(50L, 50L), askedAt, "asked again after the failure");

        assertTrue(roll.seal(50, 50));
        assertEquals(50, roll.sealedEnd());
        assertTrue(roll.refusesWrites());
        roll.maybeRequest(3, 50, 50, (end, e) -> roll.answered());
        assertEquals(2, askedAt.size(), "no request once sealed");
    }

    @Test
    void anOldSegmentStartsSealingAndAnEmptyOneNever() {
        assertEquals(-1, roll.ageOut(120_000), "no write yet: nothing to roll");
        roll.afterAppend(10, 5_000);
        assertEquals(-1, roll.ageOut(64_999));
        assertEquals(60_000, roll.ageOut(65_000));
        assertTrue(roll.refusesWrites());
        assertEquals(-1, roll.ageOut(70_000), "already sealing");
    }

    @Test
    void aFollowerBehindTheSealSealsOnlyOnceItHasCaughtUp() {
        assertFalse(roll.seal(80, 70));
        assertEquals(80, roll.pendingSealAt());
        assertEquals(-1, roll.sealedEnd());
        assertTrue(roll.refusesWrites(), "a seal is announced: the segment takes no more writes, whoever holds it");
        assertTrue(roll.seal(80, 80));
        assertEquals(80, roll.sealedEnd());
    }

    @Test
    void withoutARollerASegmentNeverSeals() {
        SegmentRoll none = new SegmentRoll();
        assertFalse(none.afterAppend(Long.MAX_VALUE, 0));
        assertEquals(-1, none.ageOut(Long.MAX_VALUE / 2));
        assertFalse(none.refusesWrites());
    }

    @Test
    void aSegmentWrittenFastAsksToCloseAtThreeQuartersAndOneWrittenSlowlyOnlyOnceItFillsWithinTheLead() {
        roll.configureCloseAhead(750);
        assertTrue(roll.afterAppend(100, 0) == false && !roll.dueToClose(100, 1, 0), "below three quarters");
        assertTrue(roll.dueToClose(750, 1, 100), "650 bytes in 100 ms: the last quarter takes 38 ms, within the lead");

        SegmentRoll slow = new SegmentRoll();
        slow.configure(1_000, 600_000, (epoch, end) -> new CompletableFuture<>());
        slow.configureCloseAhead(750);
        slow.afterAppend(100, 0);
        // 650 bytes in 10 s: 0.065 bytes/ms, so 2 s of writes are 130 bytes.
        assertFalse(slow.dueToClose(750, 1, 10_000), "250 bytes left, 130 in the lead: not yet");
        assertFalse(slow.dueToClose(860, 1, 11_700), "140 bytes left");
        assertTrue(slow.dueToClose(880, 1, 12_000), "120 bytes left, 2 s of writes at this rate: asks");
        assertFalse(slow.dueToClose(890, 1, 12_100), "asked once");

        SegmentRoll burst = new SegmentRoll();
        burst.configure(1_000, 600_000, (epoch, end) -> new CompletableFuture<>());
        burst.configureCloseAhead(750);
        burst.afterAppend(100, 0);
        assertFalse(burst.dueToClose(750, 1, 10_000), "slow so far");
        assertTrue(burst.dueToClose(800, 1, 10_100), "50 bytes in the 100 ms since: 200 left take 400 ms at that rate");

        SegmentRoll idle = new SegmentRoll();
        idle.configure(1_000, 600_000, (epoch, end) -> new CompletableFuture<>());
        idle.configureCloseAhead(750);
        assertFalse(idle.dueToClose(900, 1, 5_000), "a leader that wrote nothing here (it took the lead late): no rate yet");
    }
}
