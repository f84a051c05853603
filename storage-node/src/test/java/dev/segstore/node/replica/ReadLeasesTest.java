package dev.segstore.node.replica;

import dev.segstore.adapter.ErrorCode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Each rule of {@link ReadLeases} on its own, with explicit times (PartitionSafetyTest checks them through a
 * partition, where another refusal may cover for a missing one: a new leader whose high watermark is below where
 * it took the lead refuses reads for that too).
 */
class ReadLeasesTest {
    private static final long LEASE = 3_000;
    /** The partition's monotonic clock (ms), set by each test. */
    private final AtomicLong clock = new AtomicLong();

    private ReadLeases opened(long nowMs) {
        clock.set(nowMs);
        return new ReadLeases("s/0@1", LEASE, clock::get);
    }

    /** {@code check}, run at {@code nowMs}. */
    private Executable at(long nowMs, Executable check) {
        return () -> {
            clock.set(nowMs);
            check.execute();
        };
    }

    private static ErrorCode refusal(Executable check) {
        return assertThrows(ReplicaException.class, check).code();
    }

    @Test
    void aSealedSegmentsReplicaAnswersReadsForALeaseAfterTheHeartbeatThatConfirmedItInTheIsr() {
        ReadLeases leases = opened(0);
        leases.assignedIsr(true, 1_000);
        assertDoesNotThrow(at(1_000 + LEASE, () -> leases.checkSealedRead(true)), "within the lease");
        assertEquals(ErrorCode.UNAVAILABLE, refusal(at(1_000 + LEASE + 1, () -> leases.checkSealedRead(true))),
                "past the lease it may have been dropped from the ISR and lack acknowledged deletes");
        assertEquals(ErrorCode.UNAVAILABLE, refusal(at(1_000 + LEASE + 1, () -> leases.checkSealedRead(false))), "a leader too");
        leases.assignedIsr(true, 5_000);
        assertDoesNotThrow(at(5_000 + LEASE, () -> leases.checkSealedRead(true)), "a new confirmation renews it");
    }

    /** Its confirmation is void too (so the lease refuses as well); the refusal names the reason. */
    @Test
    void aFollowerTheLatestAssignmentLeftOutOfASealedSegmentsIsrAnswersNoRead() {
        ReadLeases leases = opened(0);
        leases.assignedIsr(false, 1_000);
        ReplicaException refused = assertThrows(ReplicaException.class, at(1_000, () -> leases.checkSealedRead(true)));
        assertEquals(ErrorCode.UNAVAILABLE, refused.code());
        assertTrue(refused.getMessage().contains("not in the ISR"), refused.getMessage());
    }

    @Test
    void anOpenSegmentsLeaderAnswersReadsForALeaseAfterTheHeartbeatThatConfirmedIt() {
        ReadLeases leases = opened(0);
        leases.tookLead(4, 500, 0);
        leases.assignedIsr(true, 1_000);
        assertDoesNotThrow(at(1_000 + LEASE, () -> leases.checkLeaderRead(4)));
        assertEquals(ErrorCode.UNAVAILABLE, refusal(at(1_000 + LEASE + 1, () -> leases.checkLeaderRead(4))),
                "another may lead now and have taken writes its reads would miss");
        leases.assignedIsr(false, 6_000);
        assertEquals(ErrorCode.UNAVAILABLE, refusal(at(6_000, () -> leases.checkLeaderRead(4))), "an assignment without it confirms nothing");
    }

    @Test
    void aLeaderThatReplacedOneThatMayServeServesNothingUntilThatLeaseEnds() {
        ReadLeases leases = opened(0);
        leases.assignedIsr(true, 1_000);
        leases.tookLead(2, 1_000, LEASE);
        assertEquals(1_000 + LEASE, leases.servesFromMs());
        ReplicaException waiting = assertThrows(ReplicaException.class, at(1_000 + LEASE - 1, () -> leases.checkLeaderRead(2)));
        assertEquals(ErrorCode.UNAVAILABLE, waiting.code());
        assertTrue(waiting.getMessage().contains("serves nothing"), waiting.getMessage());
        leases.assignedIsr(true, 1_000 + LEASE);
        assertDoesNotThrow(at(1_000 + LEASE, () -> leases.checkLeaderRead(2)), "the replaced leader's lease is over");
        leases.tookLead(3, 9_000, 0);
        assertEquals(Long.MIN_VALUE, leases.servesFromMs(), "a lead taken from one that cannot serve waits for nothing");
    }

    @Test
    void wordThatTheReplacedLeadersLeaseEndsSoonerShortensTheWaitAndNeverLengthensIt() {
        ReadLeases leases = opened(0);
        leases.tookLead(2, 1_000, LEASE);
        clock.set(1_500);
        assertFalse(leases.predecessorLeaseEndsIn(2, LEASE), "later than the wait: ignored");
        assertEquals(1_000 + LEASE, leases.servesFromMs());
        assertTrue(leases.predecessorLeaseEndsIn(2, 200));
        assertEquals(1_700, leases.servesFromMs(), "counted from when the word came");
        clock.set(1_600);
        assertTrue(leases.predecessorLeaseEndsIn(2, -5), "0 or less: it stepped down");
        assertEquals(1_600, leases.servesFromMs());
        ReadLeases noWait = opened(0);
        noWait.tookLead(2, 1_000, 0);
        clock.set(1_500);
        assertFalse(noWait.predecessorLeaseEndsIn(2, 100), "no wait to shorten");
        assertEquals(Long.MIN_VALUE, noWait.servesFromMs());
    }

    /** Until the assignment that opens it comes (at once), a new replica counts as confirmed when it was opened. */
    @Test
    void aReplicaJustOpenedServesSealedReadsForALeaseFromItsOpening() {
        ReadLeases leases = opened(7_000);
        assertDoesNotThrow(at(7_000 + LEASE, () -> leases.checkSealedRead(true)));
        assertEquals(ErrorCode.UNAVAILABLE, refusal(at(7_000 + LEASE + 1, () -> leases.checkSealedRead(true))));
    }

    @Test
    void aLeaderInAControlledShutdownAnswersNoReadsForGood() {
        ReadLeases leases = opened(0);
        leases.tookLead(1, 0, 0);
        leases.assignedIsr(true, 100);
        assertDoesNotThrow(at(100, () -> leases.checkLeaderRead(1)));
        leases.stopLeaderReads();
        assertEquals(ErrorCode.UNAVAILABLE, refusal(at(100, () -> leases.checkLeaderRead(1))));
        leases.assignedIsr(true, 200);
        assertEquals(ErrorCode.UNAVAILABLE, refusal(at(200, () -> leases.checkLeaderRead(1))), "heartbeats going on change nothing");
    }

    @Test
    void deletesAreHeldALeaseAfterTheLatestIsrShrink() {
        ReadLeases leases = opened(0);
        assertEquals(Long.MIN_VALUE, leases.deletesHeldUntilMs(), "no hold at first");
        leases.holdDeletes(2_000);
        assertEquals(2_000 + LEASE, leases.deletesHeldUntilMs());
        leases.holdDeletes(1_000);
        assertEquals(2_000 + LEASE, leases.deletesHeldUntilMs(), "an earlier drop never shortens the hold");
        leases.holdDeletes(4_000);
        assertEquals(4_000 + LEASE, leases.deletesHeldUntilMs());
    }
}
