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

    /** A roll of 100,000-byte segments that asks to close from 75,000 bytes, and its leader's appends from time 0. */
    private static final class Writer {
        final SegmentRoll roll = new SegmentRoll();
        long size;
        long nowMs;

        Writer() {
            roll.configure(100_000, 600_000, (epoch, end) -> new CompletableFuture<>());
            roll.configureCloseAhead(75_000);
        }

        /** Appends {@code bytes} {@code afterMs} after the last append; true if the leader is to ask to close now. */
        boolean append(long bytes, long afterMs) {
            size += bytes;
            nowMs += afterMs;
            roll.afterAppend(size, nowMs);
            return roll.dueToClose(size, 1, nowMs);
        }

        /** Appends {@code bytes} every {@code everyMs} until the leader is to ask to close: the size it asks at (-1: full first). */
        long appendUntilDue(long bytes, long everyMs) {
            while (size + bytes < 100_000) {
                if (append(bytes, everyMs)) {
                    return size;
                }
            }
            return -1;
        }
    }

    @Test
    void aSegmentWrittenFastAsksToCloseAtThreeQuartersAndOneWrittenSlowlyOnlyOnceItFillsWithinTheLead() {
        Writer fast = new Writer();
        assertEquals(75_000, fast.appendUntilDue(1_000, 10), "100 bytes/ms: the last quarter takes 250 ms, within the 2 s lead");
        assertFalse(fast.append(1_000, 10), "asked once");

        // 13 bytes every 200 ms, 0.065 bytes/ms: 2 s of writes are 130 bytes.
        long slowAt = new Writer().appendUntilDue(13, 200);
        assertTrue(slowAt >= 100_000 - 130 && slowAt < 100_000 - 130 + 13, "asks once 130 bytes or fewer are left, at " + slowAt);

        // 1,000 bytes every 15 s (0.067 bytes/ms) to three quarters, then a burst.
        Writer burst = new Writer();
        for (int i = 0; i < 75; i++) {
            assertFalse(burst.append(1_000, 15_000), "slow, at " + burst.size);
        }
        assertFalse(burst.append(500, 0) || burst.append(500, 0), "appends in one millisecond are not a burst");
        assertFalse(burst.append(500, 10), "a window still open is measured once 100 ms old");
        assertTrue(burst.append(500, 90), "2,000 bytes in 100 ms: the 23,000 left take 1.15 s at that rate");

        // 100 bytes/ms to 70,000, a minute's pause, then on.
        Writer paused = new Writer();
        for (int i = 0; i < 70; i++) {
            paused.append(1_000, 10);
        }
        paused.append(100, 60_000); // ends a window of almost no rate
        assertTrue(paused.append(5_000, 1), "a pause does not hide the rate of the window before it");

        // 10,000 bytes every 10 s: 1 byte/ms, 2 s of writes are 2,000 bytes, where one write is 10,000.
        Writer bigWrites = new Writer();
        assertEquals(80_000, bigWrites.appendUntilDue(10_000, 10_000), "asks with two writes of the last one's size left (20,000 bytes)");

        Writer firstWindow = new Writer();
        assertTrue(firstWindow.append(76_000, 5_000), "no rate measured yet: asks at three quarters, as before");

        Writer idle = new Writer();
        assertFalse(idle.roll.dueToClose(90_000, 1, 5_000), "a leader that wrote nothing here (it took the lead late) does not ask");
    }
}
