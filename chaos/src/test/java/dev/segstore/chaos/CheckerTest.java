package dev.segstore.chaos;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.OptionalLong;

import static dev.segstore.chaos.Script.at;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Each anomaly kind on a hand-built history that has it (exactly that anomaly, with its operations), next to a
 * near-identical valid history that must give nothing: the twin differs by what explains the first one away
 * (an unknown delete, a concurrent operation, an unknown write).
 */
class CheckerTest {
    private static final String S = "s0";

    private static void assertOnly(List<Anomaly> anomalies, Anomaly.Kind kind, Long... ids) {
        assertEquals(1, anomalies.size(), () -> "expected one " + kind + ", got " + anomalies);
        assertEquals(kind, anomalies.get(0).kind(), anomalies::toString);
        assertEquals(List.of(ids), anomalies.get(0).opIds(), anomalies::toString);
    }

    private static void assertNone(List<Anomaly> anomalies) {
        assertEquals(List.of(), anomalies);
    }

    // LOST_WRITE

    @Test
    void anAcknowledgedWriteMissingFromTheFinalReadIsLost() {
        Script s = new Script();
        long w = s.write("c1", 10, 20, S, "p1", 0);
        long f = s.finalRead(100, 110, S, 0, 100);
        assertOnly(s.check(), Anomaly.Kind.LOST_WRITE, w, f);
    }

    @Test
    void aDeleteWithUnknownOutcomeExplainsTheMissingRecord() {
        Script s = new Script();
        s.write("c1", 10, 20, S, "p1", 0);
        s.info("c2", 30, 40, Invocation.deleteOffset(S, 0), "TIMEOUT");
        s.finalRead(100, 110, S, 0, 100);
        assertNone(s.check());
    }

    @Test
    void aDeleteThatFoundTheOffsetDeadAlreadyExplainsNothing() {
        Script s = new Script();
        long w = s.write("c1", 10, 20, S, "p1", 0);
        s.ok("c2", 30, 40, Invocation.deleteOffset(S, 0), Result.deleted(false));
        long f = s.finalRead(100, 110, S, 0, 100);
        assertOnly(s.check(), Anomaly.Kind.LOST_WRITE, w, f);
    }

    @Test
    void aKeyDeleteExplainsARecordOnlyIfItCompletedAfterTheWriteWasInvoked() {
        Script s = new Script();
        s.ok("c2", 1, 5, Invocation.deleteKey(S, "k"), Result.count(1));
        long w = s.ok("c1", 10, 20, Invocation.write(S, new WrittenRecord("p1", "k", List.of())), Result.offsets(3));
        long f = s.finalRead(100, 110, S, 0, 100);
        assertOnly(s.check(), Anomaly.Kind.LOST_WRITE, w, f);

        Script concurrent = new Script();
        concurrent.ok("c2", 1, 15, Invocation.deleteKey(S, "k"), Result.count(1));
        concurrent.ok("c1", 10, 20, Invocation.write(S, new WrittenRecord("p1", "k", List.of())), Result.offsets(3));
        concurrent.finalRead(100, 110, S, 0, 100);
        assertNone(concurrent.check());
    }

    @Test
    void aWriteWithUnknownOutcomeMayBeMissing() {
        Script s = new Script();
        s.info("c1", 10, 20, Invocation.write(S, WrittenRecord.of("p1")), "TIMEOUT");
        s.finalRead(100, 110, S, 0, 100);
        assertNone(s.check());
    }

    @Test
    void aFullPageCoversOnlyUpToItsLastRecord() {
        Script s = new Script();
        s.write("c1", 10, 20, S, "p0", 0);
        s.write("c1", 30, 40, S, "p1", 1);
        long w2 = s.write("c1", 50, 60, S, "p2", 2);
        s.finalRead(100, 110, S, 0, 2, at(0, "p0"), at(1, "p1"));
        assertNone(s.check());
        long f2 = s.finalRead(120, 130, S, 2, 2);
        assertOnly(s.check(), Anomaly.Kind.LOST_WRITE, w2, f2);
    }

    // WRONG_OFFSET

    @Test
    void aRecordReadOnlyAtAnotherOffsetThanAcknowledgedIsAtTheWrongOffset() {
        Script s = new Script();
        long w = s.write("c1", 10, 20, S, "p1", 0);
        long f = s.finalRead(100, 110, S, 0, 100, at(5, "p1"));
        assertOnly(s.check(), Anomaly.Kind.WRONG_OFFSET, w, f);

        Script valid = new Script();
        valid.write("c1", 10, 20, S, "p1", 0);
        valid.finalRead(100, 110, S, 0, 100, at(0, "p1"));
        assertNone(valid.check());
    }

    // DUPLICATE

    @Test
    void aPayloadAtTwoOffsetsIsADuplicate() {
        Script s = new Script();
        long w = s.info("c1", 10, 20, Invocation.write(S, WrittenRecord.of("p1")), "TIMEOUT");
        long f = s.finalRead(100, 110, S, 0, 100, at(0, "p1"), at(1, "p1"));
        assertOnly(s.check(), Anomaly.Kind.DUPLICATE, w, f);

        Script valid = new Script();
        valid.info("c1", 10, 20, Invocation.write(S, WrittenRecord.of("p1")), "TIMEOUT");
        valid.finalRead(100, 110, S, 0, 100, at(0, "p1"));
        assertNone(valid.check());
    }

    @Test
    void twoReadsReturningOnePayloadAtDifferentOffsetsAreADuplicate() {
        Script s = new Script();
        long w = s.info("c1", 10, 20, Invocation.write(S, WrittenRecord.of("p1")), "TIMEOUT");
        long r1 = s.read("c2", 30, 40, S, 0, 10, at(0, "p1"));
        long r2 = s.read("c3", 35, 45, S, 1, 10, at(1, "p1"));
        assertOnly(s.check(), Anomaly.Kind.DUPLICATE, w, r1, r2);
    }

    // OFFSET_REUSED

    @Test
    void twoAcknowledgedWritesAtOneOffsetReuseIt() {
        Script s = new Script();
        long w1 = s.write("c1", 10, 20, S, "p1", 0);
        long w2 = s.write("c2", 15, 25, S, "p2", 0);
        assertOnly(s.check(), Anomaly.Kind.OFFSET_REUSED, w1, w2);

        Script valid = new Script();
        valid.write("c1", 10, 20, S, "p1", 0);
        valid.write("c2", 15, 25, S, "p2", 1);
        assertNone(valid.check());
    }

    @Test
    void aReadOfAnotherPayloadAtAnAcknowledgedOffsetReusesIt() {
        Script s = new Script();
        long w1 = s.write("c1", 10, 20, S, "p1", 0);
        s.info("c2", 15, 25, Invocation.write(S, WrittenRecord.of("p2")), "TIMEOUT");
        long r = s.read("c3", 30, 40, S, 0, 10, at(0, "p2"));
        assertOnly(s.check(), Anomaly.Kind.OFFSET_REUSED, w1, r);
    }

    @Test
    void theSameOffsetOnTwoShardsIsNoReuse() {
        Script s = new Script();
        s.write("c1", 10, 20, "s0", "p1", 0);
        s.write("c2", 15, 25, "s1", "p2", 0);
        assertNone(s.check());
    }

    // PHANTOM

    @Test
    void aPayloadNoWriteInvokedIsAPhantom() {
        Script s = new Script();
        long r = s.read("c1", 30, 40, S, 0, 10, at(0, "px"));
        assertOnly(s.check(), Anomaly.Kind.PHANTOM, r);

        Script valid = new Script();
        valid.info("c2", 10, 50, Invocation.write(S, WrittenRecord.of("px")), "TIMEOUT");
        valid.read("c1", 30, 40, S, 0, 10, at(0, "px"));
        assertNone(valid.check());
    }

    @Test
    void aPayloadOfAFailedWriteOrOfAWriteInvokedAfterTheReadIsAPhantom() {
        Script failed = new Script();
        failed.fail("c2", 10, 20, Invocation.write(S, WrittenRecord.of("px")), "NOT_LEADER");
        long r = failed.read("c1", 30, 40, S, 0, 10, at(0, "px"));
        assertOnly(failed.check(), Anomaly.Kind.PHANTOM, r);

        Script later = new Script();
        long r2 = later.read("c1", 30, 40, S, 0, 10, at(0, "px"));
        later.write("c2", 41, 50, S, "px", 0);
        assertOnly(later.check(), Anomaly.Kind.PHANTOM, r2);

        Script otherShard = new Script();
        otherShard.write("c2", 10, 20, "s1", "px", 0);
        long r3 = otherShard.read("c1", 30, 40, S, 0, 10, at(0, "px"));
        assertOnly(otherShard.check(), Anomaly.Kind.PHANTOM, r3);
    }

    // UNSTABLE_READ

    /** p1 at 0 (write outcome unknown, op 1), p2 at 1 (op 2); read op 3 returns both. */
    private static Script twoRecordsSeen() {
        Script s = new Script();
        s.info("c1", 10, 20, Invocation.write(S, WrittenRecord.of("p1")), "TIMEOUT");
        s.write("c1", 21, 25, S, "p2", 1);
        s.read("c2", 30, 40, S, 0, 10, at(0, "p1"), at(1, "p2"));
        return s;
    }

    @Test
    void aRecordAReadReturnedAndALaterReadMissesIsUnstable() {
        Script s = twoRecordsSeen();
        long r2 = s.read("c3", 50, 60, S, 0, 10, at(1, "p2"));
        assertOnly(s.check(), Anomaly.Kind.UNSTABLE_READ, 3L, r2);
    }

    @Test
    void aDeleteConcurrentWithTheLaterReadExplainsTheMiss() {
        Script s = twoRecordsSeen();
        s.ok("c4", 45, 55, Invocation.deleteOffset(S, 0), Result.deleted(true));
        s.read("c3", 50, 60, S, 0, 10, at(1, "p2"));
        assertNone(s.check());
    }

    @Test
    void readsThatOverlapMayDisagree() {
        Script s = twoRecordsSeen();
        s.read("c3", 35, 60, S, 0, 10, at(1, "p2"));
        assertNone(s.check());
    }

    @Test
    void aLaterReadReturningAnotherPayloadAtTheOffsetIsUnstable() {
        Script s = new Script();
        s.info("c1", 10, 20, Invocation.write(S, WrittenRecord.of("p1")), "TIMEOUT");
        s.info("c4", 10, 20, Invocation.write(S, WrittenRecord.of("p2")), "TIMEOUT");
        long r1 = s.read("c2", 30, 40, S, 0, 10, at(0, "p1"));
        long r2 = s.read("c3", 50, 60, S, 0, 10, at(0, "p2"));
        assertOnly(s.check(), Anomaly.Kind.UNSTABLE_READ, r1, r2);
    }

    @Test
    void theTailOfAShortReadAnswersOnlyForAcknowledgedRecords() {
        // p1 was only seen (its write's outcome is unknown): a short read from 0 that ends before it may have
        // seen an older end of the log, so it proves nothing about offset 1.
        Script unacknowledged = new Script();
        unacknowledged.write("c1", 10, 20, S, "p0", 0);
        unacknowledged.info("c1", 21, 25, Invocation.write(S, WrittenRecord.of("p1")), "TIMEOUT");
        unacknowledged.read("c2", 30, 40, S, 0, 10, at(0, "p0"), at(1, "p1"));
        unacknowledged.read("c3", 50, 60, S, 0, 10, at(0, "p0"));
        assertNone(unacknowledged.check());

        Script acknowledged = new Script();
        acknowledged.write("c1", 10, 20, S, "p0", 0);
        acknowledged.write("c1", 21, 25, S, "p1", 1);
        long r1 = acknowledged.read("c2", 30, 40, S, 0, 10, at(0, "p0"), at(1, "p1"));
        long r2 = acknowledged.read("c3", 50, 60, S, 0, 10, at(0, "p0"));
        assertOnly(acknowledged.check(), Anomaly.Kind.UNSTABLE_READ, r1, r2);
    }

    /** p4 at 4 and p5 at 5, both acknowledged; offset 5 starts the next segment; read op 3 returned both. */
    private static Script acrossARoll() {
        Script s = new Script();
        s.write("c1", 10, 20, S, "p4", 4);
        s.write("c1", 21, 25, S, "p5", 5);
        s.read("c2", 30, 40, S, 4, 10, at(4, "p4"), at(5, "p5"));
        return s;
    }

    @Test
    void aShortReadAnswersOnlyUpToTheFirstSealPointPastWhatItReturned() {
        // The roll window: a reader whose route is older than the roll at 5 reads the old segment, whose leader
        // has not learnt of the seal yet, and answers "the end" at 5. The contract allows it.
        Script window = acrossARoll();
        long r2 = window.read("c3", 50, 60, S, 3, 10, at(4, "p4"));
        assertOnly(window.check(), Anomaly.Kind.UNSTABLE_READ, 3L, r2); // without seal points the whole tail counts
        window.sealPoints(100, S, 5L);
        assertNone(window.check());

        // Before the seal point the short read still answers: missing p4 there is unstable.
        Script before = acrossARoll();
        long r3 = before.read("c3", 50, 60, S, 3, 10);
        before.sealPoints(100, S, 5L);
        assertOnly(before.check(), Anomaly.Kind.UNSTABLE_READ, 3L, r3);

        // A final read is made once every replica took its seal: its tail is never cut.
        Script lost = acrossARoll();
        long f = lost.finalRead(70, 80, S, 0, 10, at(4, "p4"));
        lost.sealPoints(100, S, 5L);
        assertOnly(lost.check(), Anomaly.Kind.LOST_WRITE, 2L, f);
    }

    @Test
    void aTagReadCoversOnlyRecordsWithItsTag() {
        Script s = new Script();
        s.ok("c1", 10, 20, Invocation.write(S, new WrittenRecord("p1", null, List.of("a"))), Result.offsets(0));
        long r1 = s.ok("c2", 30, 40, Invocation.readTag(S, "a", 0, 10),
                Result.records(List.of(new ReadRecord(0, "p1", null, List.of("a")))));
        s.ok("c3", 50, 60, Invocation.readTag(S, "b", 0, 10), Result.records(List.of()));
        assertNone(s.check());
        long r2 = s.ok("c3", 70, 80, Invocation.readTag(S, "a", 0, 10), Result.records(List.of()));
        assertOnly(s.check(), Anomaly.Kind.UNSTABLE_READ, r1, r2);
    }

    // WRITER_ORDER

    @Test
    void sequentialWritesOfAProcessWhoseOffsetsGoBackAreOutOfOrder() {
        Script s = new Script();
        long w1 = s.write("c1", 10, 20, S, "p1", 5);
        long w2 = s.write("c1", 30, 40, S, "p2", 3);
        assertOnly(s.check(), Anomaly.Kind.WRITER_ORDER, w1, w2);

        Script pipelined = new Script();
        pipelined.write("c1", 10, 20, S, "p1", 5);
        pipelined.write("c1", 15, 40, S, "p2", 3);
        assertNone(pipelined.check());
    }

    // DELETE_UNDONE

    @Test
    void aRecordReturnedAfterItsDeleteCompletedIsUndone() {
        Script s = new Script();
        s.write("c1", 10, 20, S, "p1", 0);
        long d = s.ok("c2", 30, 40, Invocation.deleteOffset(S, 0), Result.deleted(true));
        long r = s.read("c3", 50, 60, S, 0, 10, at(0, "p1"));
        assertOnly(s.check(), Anomaly.Kind.DELETE_UNDONE, d, r);

        Script concurrent = new Script();
        concurrent.write("c1", 10, 20, S, "p1", 0);
        concurrent.ok("c2", 30, 40, Invocation.deleteOffset(S, 0), Result.deleted(true));
        concurrent.read("c3", 35, 60, S, 0, 10, at(0, "p1"));
        assertNone(concurrent.check());
    }

    @Test
    void aKeyDeleteUndoesOnlyRecordsKnownStoredBeforeIt() {
        WrittenRecord rec = new WrittenRecord("p1", "k", List.of());
        ReadRecord read = new ReadRecord(0, "p1", "k", List.of());
        Script s = new Script();
        s.ok("c1", 10, 20, Invocation.write(S, rec), Result.offsets(0));
        long d = s.ok("c2", 30, 40, Invocation.deleteKey(S, "k"), Result.count(1));
        long r = s.ok("c3", 50, 60, Invocation.readKey(S, "k"), Result.records(List.of(read)));
        assertOnly(s.check(), Anomaly.Kind.DELETE_UNDONE, d, r);

        // A write whose outcome is unknown may have been applied after the delete.
        Script unknown = new Script();
        unknown.info("c1", 10, 20, Invocation.write(S, rec), "TIMEOUT");
        unknown.ok("c2", 30, 40, Invocation.deleteKey(S, "k"), Result.count(0));
        unknown.ok("c3", 50, 60, Invocation.readKey(S, "k"), Result.records(List.of(read)));
        assertNone(unknown.check());
    }

    // GROUP_OFFSET_REGRESSED

    @Test
    void aGroupOffsetReadReturningASupersededCommitRegressed() {
        Script s = new Script();
        s.ok("c1", 10, 20, Invocation.commitOffset("g", S, 5), Result.none());
        long c7 = s.ok("c1", 30, 40, Invocation.commitOffset("g", S, 7), Result.none());
        long r = s.ok("c2", 50, 60, Invocation.readGroupOffset("g", S), Result.groupOffset(OptionalLong.of(5)));
        assertOnly(s.check(), Anomaly.Kind.GROUP_OFFSET_REGRESSED, r, c7);

        Script concurrent = new Script();
        concurrent.ok("c1", 10, 20, Invocation.commitOffset("g", S, 5), Result.none());
        concurrent.ok("c1", 30, 40, Invocation.commitOffset("g", S, 7), Result.none());
        concurrent.info("c3", 45, 46, Invocation.commitOffset("g", S, 5), "TIMEOUT");
        concurrent.ok("c2", 50, 60, Invocation.readGroupOffset("g", S), Result.groupOffset(OptionalLong.of(5)));
        assertNone(concurrent.check());
    }

    @Test
    void overlappingCommitsMayLandInEitherOrder() {
        Script s = new Script();
        s.ok("c1", 10, 45, Invocation.commitOffset("g", S, 5), Result.none());
        s.ok("c3", 30, 40, Invocation.commitOffset("g", S, 7), Result.none());
        s.ok("c2", 50, 60, Invocation.readGroupOffset("g", S), Result.groupOffset(OptionalLong.of(5)));
        s.ok("c2", 70, 80, Invocation.readGroupOffset("g", S), Result.groupOffset(OptionalLong.of(7)));
        assertNone(s.check());
    }

    @Test
    void anEmptyGroupOffsetAfterAnAcknowledgedCommitRegressed() {
        Script s = new Script();
        long c = s.ok("c1", 10, 20, Invocation.commitOffset("g", S, 5), Result.none());
        long r = s.ok("c2", 30, 40, Invocation.readGroupOffset("g", S), Result.groupOffset(OptionalLong.empty()));
        s.ok("c2", 31, 41, Invocation.readGroupOffset("g", "s1"), Result.groupOffset(OptionalLong.empty()));
        assertOnly(s.check(), Anomaly.Kind.GROUP_OFFSET_REGRESSED, r, c);
    }

    @Test
    void aPayloadWrittenTwiceIsRefused() {
        Script s = new Script();
        s.write("c1", 10, 20, S, "p1", 0);
        s.write("c1", 30, 40, S, "p1", 1);
        assertThrows(IllegalArgumentException.class, s::check);
    }
}
