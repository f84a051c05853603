package dev.segstore.node.replica;

import dev.segstore.adapter.ErrorCode;
import dev.segstore.log.AppendRecord;
import dev.segstore.log.AppendResult;
import dev.segstore.log.DirectoryConfig;
import dev.segstore.log.Durability;
import dev.segstore.log.FileSlice;
import dev.segstore.log.LogConfig;
import dev.segstore.log.LogDirectory;
import dev.segstore.log.LogRecord;
import dev.segstore.log.epoch.EpochEndOffset;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The replication protocol in the interleavings that lost, duplicated or diverged data before (issue 11): ISR
 * changes whose outcome is unknown, sealing before reconciling, a follower ahead of its leader, offsets advertised
 * but not held, answers that arrive after the state they were asked under changed. See docs/architecture.md,
 * "Safety argument".
 */
@Timeout(60)
class PartitionSafetyTest extends PartitionFixture {
    // ---- safety: a deposed leader that does not know it (leader read lease) ---------------------------------

    /**
     * Node 1 leads the open segment in epoch 0, cut off from everyone: its heartbeats go unanswered. It answers a
     * reader whose route names it only until read.lease.ms after the last heartbeat whose answer confirmed it as
     * the leader was sent; a new answer renews it. Found by the process fault campaign (seed 6707398655323024202,
     * run 0051: UNSTABLE_READ from a deposed, isolated leader answering up to its own high watermark).
     */
    @Test
    void anOpenSegmentsLeaderAnswersReadsOnlyWithinItsLeaseFromTheLastHeartbeatThatConfirmedIt() throws Exception {
        writeAcknowledged(3);
        long confirmed = clock.get();
        replicas[1].assignedIsr(List.of(1, 2, 3), confirmed);
        clock.set(confirmed + CONFIG.readLeaseMs());
        assertEquals(3, replicas[1].readForConsumer(0, 10, 1 << 20, 0).highWatermark(), "within its lease it answers");
        clock.set(confirmed + CONFIG.readLeaseMs() + 1);
        ReplicaException refused = assertThrows(ReplicaException.class, () -> replicas[1].readForConsumer(0, 10, 1 << 20, 0),
                "no heartbeat answer confirmed it as the leader for read.lease.ms: another may lead and have taken writes");
        assertEquals(ErrorCode.UNAVAILABLE, refused.code());
        assertThrows(ReplicaException.class, () -> replicas[1].readableHighWatermark(), "whatever the reader's route says");
        replicas[1].assignedIsr(List.of(1, 2, 3), clock.get());
        assertEquals(3, replicas[1].readForConsumer(0, 10, 1 << 20, 0).highWatermark(), "a heartbeat answer renews the lease");
    }

    /**
     * The controller moves the lead from node 1 (cut off, still taking itself for the leader in epoch 0) to node 2
     * in epoch 1. Node 1 may answer reads up to its own high watermark until its lease ends, so node 2 acknowledges
     * nothing and answers no read for read.lease.ms after it learns that it leads: by then node 1 has stopped. Without
     * the wait, node 2 acknowledged a write at once that a read from node 1 then missed.
     */
    @Test
    void aLeaderThatReplacedOneThatMayServeAcknowledgesAndAnswersNothingUntilThatLeaseHasEnded() throws Exception {
        writeAcknowledged(3);
        replicas[1].assignedIsr(List.of(1, 2, 3), clock.get()); // node 1's last confirmed heartbeat
        clock.addAndGet(2_000); // the followers found it silent, the controller moved the lead
        long learnt = clock.get();
        CompletableFuture<AppendResult> ack = node2LeadsEpoch1WaitingAndTakesTwoRecords();
        assertEquals(5, replicas[3].log().logEndOffset(), "node 3 holds the new records");
        assertFalse(ack.isDone(), "acknowledged while node 1, deposed without knowing it, still answers reads ending at 3");
        ReplicaException waiting = assertThrows(ReplicaException.class, () -> replicas[2].readForConsumer(0, 10, 1 << 20, 1));
        assertEquals(ErrorCode.UNAVAILABLE, waiting.code());
        assertEquals(3, replicas[1].readForConsumer(0, 10, 1 << 20, 0).highWatermark(), "node 1's lease still runs");
        clock.set(learnt + CONFIG.readLeaseMs());
        assertThrows(ReplicaException.class, () -> replicas[1].readForConsumer(0, 10, 1 << 20, 0), "node 1's lease has ended");
        fetchRound(2, 3);
        assertEquals(new AppendResult(AppendResult.Status.APPENDED, 3, 4), await(ack));
        assertEquals(5, replicas[2].readForConsumer(0, 10, 1 << 20, 1).highWatermark());
    }

    /**
     * The meta leader tells the new leader how long the old one may still serve (its last heartbeat + its lease, or 0
     * once it applied the move): the wait ends then, never later than the new leader's own lease, and only for the
     * epoch it is told of.
     */
    @Test
    void aLeaderToldWhenTheReplacedLeadersLeaseEndsServesFromThenOn() throws Exception {
        writeAcknowledged(3);
        CompletableFuture<AppendResult> ack = node2LeadsEpoch1WaitingAndTakesTwoRecords();
        replicas[2].predecessorLeaseEndsIn(0, 0); // of another epoch
        replicas[2].predecessorLeaseEndsIn(1, 2 * CONFIG.readLeaseMs()); // longer than its own wait
        fetchRound(2, 3);
        assertFalse(ack.isDone(), "still waiting: neither word shortens the wait");
        clock.addAndGet(100);
        replicas[2].predecessorLeaseEndsIn(1, 200);
        clock.addAndGet(199);
        fetchRound(2, 3);
        assertFalse(ack.isDone(), "1 ms before the old lease may end");
        clock.addAndGet(1);
        fetchRound(2, 3);
        assertEquals(new AppendResult(AppendResult.Status.APPENDED, 3, 4), await(ack));
        assertEquals(5, replicas[2].readForConsumer(0, 10, 1 << 20, 1).highWatermark());
    }

    /**
     * Node 2 takes the lead in epoch 1 (ISR [2, 3]) from node 1, which may still serve: it waits read.lease.ms from now.
     * It takes records 3-4, which node 3 fetches; answers the write's acknowledgement.
     */
    private CompletableFuture<AppendResult> node2LeadsEpoch1WaitingAndTakesTwoRecords() throws Exception {
        replicas[2].becomeLeader(1, List.of(1, 2, 3), List.of(2, 3), 1, CONFIG.readLeaseMs());
        replicas[2].assignedIsr(List.of(2, 3), clock.get());
        replicas[3].becomeFollower(1, 2);
        CompletableFuture<AppendResult> ack = replicas[2].append(records("n", 2), -1, -1);
        awaitDurable(2, 5);
        fetchRound(2, 3);
        fetchRound(2, 3);
        return ack;
    }

    /**
     * Node 2 takes the lead in epoch 1 of an ISR that lacks node 1 (dropped, perhaps just now, without hearing of it):
     * node 1 may still answer sealed reads from its lease, so node 2 acknowledges no delete for read.lease.ms, as a
     * leader does after its own ISR lost a member. Nothing else in these tests failed without this hold.
     */
    @Test
    void aLeaderThatTakesTheLeadOfAShrunkenIsrHoldsDeletesForALease() throws Exception {
        writeAcknowledged(3);
        long learnt = clock.get();
        replicas[2].becomeLeader(1, List.of(1, 2, 3), List.of(2, 3), 1); // node 1 was fenced: no lease wait for serving
        replicas[2].assignedIsr(List.of(2, 3), learnt);
        replicas[3].becomeFollower(1, 2);
        fetchRound(2, 3);
        fetchRound(2, 3);
        CompletableFuture<Long> deleted = replicas[2].delete(List.of(1L));
        fetchRound(2, 3);
        fetchRound(2, 3);
        assertFalse(deleted.isDone(), "acknowledged while node 1, dropped without hearing of it, may serve offset 1");
        clock.set(learnt + CONFIG.readLeaseMs());
        replicas[2].assignedIsr(List.of(2, 3), clock.get());
        fetchRound(2, 3);
        assertEquals(1L, await(deleted));
    }

    /**
     * Node 2 led epoch 1 and wrote in it, followed node 1 in epoch 2, and takes the lead again in epoch 3 from node 1,
     * which may still serve: the segment is old enough to roll and node 2's ISR holds all it has, but it asks for no
     * roll until that wait is over (the next segment's leader would acknowledge writes, unwaited, while node 1 still
     * answers reads of this one). Nothing else in these tests failed without this check.
     */
    @Test
    void aLeaderWaitingForItsPredecessorsLeaseAsksForNoRoll() throws Exception {
        writeAcknowledged(3);
        List<Long> rolls = new ArrayList<>();
        replicas[2].configureRoll(Long.MAX_VALUE, 100, (epoch, end) -> {
            rolls.add(end);
            return new CompletableFuture<>();
        });
        replicas[2].becomeLeader(1, List.of(1, 2, 3), List.of(1, 2, 3), 1);
        replicas[2].assignedIsr(List.of(1, 2, 3), clock.get());
        replicas[1].becomeFollower(1, 2);
        replicas[3].becomeFollower(1, 2);
        CompletableFuture<AppendResult> ack = replicas[2].append(records("n", 2), -1, -1); // its first write in the segment
        awaitDurable(2, 5);
        fetchRound(2, 1, 3);
        fetchRound(2, 1, 3);
        await(ack);
        replicas[1].becomeLeader(2, List.of(1, 2, 3), List.of(1, 2, 3), 1);
        replicas[2].becomeFollower(2, 1);
        replicas[3].becomeFollower(2, 1);
        fetchRound(1, 2, 3);
        fetchRound(1, 2, 3);
        assertEquals(5, replicas[2].highWatermark(), "node 2 holds everything, and knows it is committed");
        replicas[2].becomeLeader(3, List.of(1, 2, 3), List.of(1, 2, 3), 1, CONFIG.readLeaseMs());
        long learnt = clock.get();
        clock.addAndGet(200); // old enough to roll, well within the wait
        assertTrue(200 < CONFIG.readLeaseMs());
        replicas[2].maybeRetryRoll();
        assertEquals(List.of(), rolls, "a roll asked while node 1 may still answer reads of the open segment");
        clock.set(learnt + CONFIG.readLeaseMs());
        replicas[2].maybeRetryRoll();
        assertEquals(List.of(5L), rolls, "asked once the wait is over");
    }

    /** A leader in a controlled shutdown answers no reads of its open segment: its successors do not wait for it. */
    @Test
    void aLeaderThatBeganAControlledShutdownAnswersNoReadsOfItsOpenSegment() throws Exception {
        writeAcknowledged(3);
        replicas[1].assignedIsr(List.of(1, 2, 3), clock.get());
        assertEquals(3, replicas[1].readForConsumer(0, 10, 1 << 20, 0).highWatermark());
        replicas[1].stopLeaderReads();
        replicas[1].assignedIsr(List.of(1, 2, 3), clock.get()); // heartbeats go on while it hands over
        ReplicaException refused = assertThrows(ReplicaException.class, () -> replicas[1].readForConsumer(0, 10, 1 << 20, 0));
        assertEquals(ErrorCode.UNAVAILABLE, refused.code());
    }

    // ---- safety: ISR changes whose outcome is unknown (issue 11, item 1) -----------------------------------

    /** Node 3 lags, the leader shrinks it out: ISR [1, 2] at version 1. */
    private void shrinkNode3Out() throws Exception {
        cutOff.add(3);
        CompletableFuture<AppendResult> ack = replicas[1].append(records("a", 2), -1, -1);
        awaitDurable(1, 2);
        fetchRound(1, 2);
        clock.addAndGet(1_001);
        fetchRound(1, 2);
        replicas[1].maybeShrinkIsr();
        assertEquals(List.of(1, 2), replicas[1].isr());
        await(ack);
    }

    @Test
    void anIsrExpansionWhoseAnswerWasLostGoesOnCountingTheNewMember() throws Exception {
        shrinkNode3Out();
        // Node 3 catches up; the controller commits [1, 2, 3] at version 2, but the answer is lost.
        loseAnswers = true;
        cutOff.remove(3);
        fetchRound(1, 3);
        fetchRound(1, 3);
        assertEquals(List.of(1, 2, 3), committedIsr, "the controller committed the expansion");
        assertEquals(2, committedVersion);
        loseAnswers = false;
        // Node 3 is cut off again; a write reaches node 2 only. The controller counts node 3 in the ISR, so it
        // could elect node 3: acknowledging the write on [1, 2] would lose it.
        cutOff.add(3);
        CompletableFuture<AppendResult> w = replicas[1].append(records("w", 1), -1, -1);
        awaitDurable(1, 3);
        fetchRound(1, 2);
        fetchRound(1, 2);
        assertFalse(w.isDone(), "not acknowledged while node 3 may be in the committed ISR");
        // The next tick asks again; the controller's version moved, so it is refused as stale: the leader waits
        // for the controller's state and meanwhile proposes nothing else.
        replicas[1].maybeShrinkIsr();
        clock.addAndGet(1_001);
        replicas[1].maybeShrinkIsr();
        assertEquals(2, committedVersion, "no narrower ISR proposed before the committed state is known");
        assertFalse(w.isDone());
        // The assignment brings the committed ISR; node 3 has to hold the write for it to be acknowledged.
        replicas[1].onControllerIsr(0, committedIsr, committedVersion);
        assertEquals(List.of(1, 2, 3), replicas[1].isr());
        assertEquals(2, replicas[1].isrVersion());
        assertFalse(w.isDone());
        cutOff.remove(3);
        fetchRound(1, 3);
        fetchRound(1, 3);
        assertEquals(new AppendResult(AppendResult.Status.APPENDED, 2, 2), await(w));
    }

    @Test
    void aLostAnswerIsAskedAgainAndTheRetrysAnswerSettlesIt() throws Exception {
        shrinkNode3Out();
        cutOff.remove(3);
        // The expansion is lost on its way: not committed, no answer.
        java.util.concurrent.atomic.AtomicBoolean dropNext = new java.util.concurrent.atomic.AtomicBoolean(true);
        Partition leader = new Partition("s/0@1b", replicas[1].log(), 1, CONFIG, clock::get, (epoch, version, isr) -> {
            if (dropNext.getAndSet(false)) {
                return CompletableFuture.failedFuture(new ReplicaException(ErrorCode.UNAVAILABLE, "the meta leader went away"));
            }
            return propose(epoch, version, isr);
        });
        replicas[1] = leader;
        leader.becomeLeader(1, List.of(1, 2, 3), committedIsr, committedVersion);
        replicas[2].becomeFollower(1, 1);
        replicas[3].becomeFollower(1, 1);
        fetchRound(1, 2, 3);
        fetchRound(1, 2, 3);
        assertEquals(List.of(1, 2), leader.isr(), "the proposal failed");
        assertEquals(1, committedVersion, "and was not committed");
        leader.maybeShrinkIsr(); // the tick asks again
        assertEquals(List.of(1, 2, 3), leader.isr());
        assertEquals(2, leader.isrVersion());
    }

    @Test
    void aLateIsrAnswerOlderThanTheVersionHeldIsIgnored() throws Exception {
        heldAnswers = new ArrayList<>();
        cutOff.add(3);
        clock.addAndGet(1_001);
        fetchRound(1, 2);
        replicas[1].maybeShrinkIsr(); // [1, 2] committed at version 1; its answer is held
        assertEquals(1, heldAnswers.size());
        // The controller fences node 2 meanwhile (version 2) and the leader learns it from its assignment.
        committedIsr = List.of(1);
        committedVersion = 2;
        replicas[1].onControllerIsr(0, committedIsr, committedVersion);
        assertEquals(List.of(1), replicas[1].isr());
        heldAnswers.get(0).complete(null); // the late answer: [1, 2] at version 1
        assertEquals(List.of(1), replicas[1].isr(), "an answer older than the version held changes nothing");
        assertEquals(2, replicas[1].isrVersion());
    }

    // ---- safety: a new leader's watermark lags what was acknowledged (found by the fault schedules) --------

    @Test
    void aRestartedLeaderAnswersNoReadUntilItsWatermarkReachesWhatItHeldWhenItTookTheLead() throws Exception {
        writeAcknowledged(3);
        assertEquals(3, replicas[1].read(0, 10, 1 << 20).size(), "a reader sees the acknowledged records");
        // Node 1 restarts (a new replica object on the same log: its high watermark starts at 0) and keeps the
        // lead in a new epoch. Answering from its watermark would say "the end" at 0, below what was returned.
        Partition restarted = new Partition("s/0@1r", replicas[1].log(), 1, CONFIG, clock::get, this::propose);
        replicas[1] = restarted;
        restarted.becomeLeader(1, List.of(1, 2, 3), committedIsr, committedVersion);
        replicas[2].becomeFollower(1, 1);
        replicas[3].becomeFollower(1, 1);
        ReplicaException refused = assertThrows(ReplicaException.class, () -> restarted.read(0, 10, 1 << 20));
        assertEquals(ErrorCode.UNAVAILABLE, refused.code(), "retriable: " + refused);
        assertEquals(ErrorCode.UNAVAILABLE, failure(restarted.delete(List.of(1L))).code(),
                "a delete of an acknowledged record is not refused as out of range either");
        // One fetch round of the ISR brings the watermark to where the epoch started: reads are answered again.
        fetchRound(1, 2, 3);
        fetchRound(1, 2, 3);
        assertEquals(3, restarted.highWatermark());
        assertEquals(List.of("r0", "r1", "r2"), restarted.read(0, 10, 1 << 20).stream().map(PartitionFixture::text).toList());
    }

    @Test
    void aReplicaANewerOrOlderRouteTakesForTheLeaderRefusesToAnswerFromItsLaggingWatermark() throws Exception {
        CompletableFuture<AppendResult> ack = replicas[1].append(records("r", 3), -1, -1);
        awaitDurable(1, 3);
        fetchRound(1, 2, 3);
        fetchRound(1, 2, 3);
        await(ack);
        assertEquals(3, replicas[1].highWatermark());
        assertTrue(replicas[2].highWatermark() < 3, "a follower learns the watermark a fetch late");
        // The controller elects node 2 in epoch 1 and a reader's route says so before node 2 is told: its answer,
        // capped at its lagging watermark, would say "the end" below acknowledged records.
        ReplicaException refused = assertThrows(ReplicaException.class, () -> replicas[2].readForConsumer(0, 10, 1 << 20, 1));
        assertEquals(ErrorCode.UNAVAILABLE, refused.code(), "retriable: " + refused);
        assertEquals(ErrorCode.UNAVAILABLE, assertThrows(ReplicaException.class, () -> replicas[2].readableHighWatermark(1)).code());
        // Once it leads in epoch 1 and its ISR has fetched once, it answers everything acknowledged.
        replicas[1].becomeFollower(1, 2);
        replicas[2].becomeLeader(1, List.of(1, 2, 3), committedIsr, committedVersion);
        replicas[3].becomeFollower(1, 2);
        // A reader whose route still names node 1 in epoch 0 is sent on: node 1 follows now, and its watermark and
        // deletes lag the leader's.
        ReplicaException stale = assertThrows(ReplicaException.class, () -> replicas[1].readForConsumer(0, 10, 1 << 20, 0));
        assertEquals(ErrorCode.NOT_LEADER, stale.code(), "retriable: " + stale);
        fetchRound(2, 1, 3);
        fetchRound(2, 1, 3);
        try (FileSlice slice = replicas[2].readForConsumer(0, 10, 1 << 20, 1).slice()) {
            assertFalse(slice.isEmpty());
        }
        assertEquals(List.of("r0", "r1", "r2"), replicas[2].read(0, 10, 1 << 20).stream().map(PartitionFixture::text).toList());
    }

    // ---- safety: reconcile before sealing (item 2) --------------------------------------------------------

    /**
     * Node 1 leads epoch 0 and has [0, 2) acknowledged everywhere; it appends three records nobody fetches (a
     * paused leader's queued writes), while node 2 leads epoch 1, writes one record with node 3 and the
     * controller seals the segment at 3.
     */
    private void deposeNode1AndSealAt3() throws Exception {
        writeAcknowledged(2);
        replicas[1].append(records("zombie", 3), -1, -1);
        awaitDurable(1, 5);
        replicas[2].becomeLeader(1, List.of(1, 2, 3), List.of(2, 3), committedVersion);
        replicas[3].becomeFollower(1, 2);
        CompletableFuture<AppendResult> fresh = replicas[2].append(records("new", 1), -1, -1);
        awaitDurable(2, 3);
        fetchRound(2, 3);
        fetchRound(2, 3);
        await(fresh);
        replicas[2].markSealed(1, 3);
        replicas[3].markSealed(1, 3);
        assertEquals(3, replicas[2].sealedEnd());
    }

    @Test
    void aDeposedLeaderHoldingRecordsPastTheSealPointTruncatesBeforeItSeals() throws Exception {
        deposeNode1AndSealAt3();
        // Node 1 learns both from one assignment, the seal first (the order StorageNode.apply used).
        replicas[1].markSealed(1, 3);
        replicas[1].becomeFollower(1, 2);
        assertEquals(-1, replicas[1].sealedEnd(), "not sealed before it reconciled with the leader");
        fetchRound(2, 1);
        fetchRound(2, 1);
        assertEquals(3, replicas[1].sealedEnd());
        assertEquals(wholeLog(2), wholeLog(1), "byte-identical to the leader");
        assertEquals(List.of("r0", "r1", "new0"), replicas[1].read(0, 10, 1 << 20).stream().map(PartitionTest::text).toList());
    }

    @Test
    void aSealedReplicaThatDisagreesWithItsLeaderIsRepaired() throws Exception {
        deposeNode1AndSealAt3();
        await(replicas[1].log().seal()); // sealed with its divergent records (as the code before sealed it)
        replicas[1].becomeFollower(1, 2);
        replicas[1].markSealed(1, 3);
        fetchRound(2, 1);
        fetchRound(2, 1);
        assertEquals(wholeLog(2), wholeLog(1), "truncated, fetched again: byte-identical to the leader");
        assertEquals(3, replicas[1].sealedEnd());
        assertTrue(replicas[1].log().isSealed(), "and sealed again");
    }

    @Test
    void aLeaderHoldingMoreThanTheSealPointCutsItsTailBeforeItSeals() throws Exception {
        writeAcknowledged(2);
        CompletableFuture<AppendResult> uncommitted = replicas[1].append(records("uncommitted", 3), -1, -1); // never replicated
        awaitDurable(1, 5);
        replicas[1].markSealed(0, 2); // as an uncleanly elected leader learns the seal point of a segment sealed before
        assertEquals(ErrorCode.NOT_LEADER, failure(replicas[1].append(records("late", 1), -1, -1)).code(),
                "no write is taken while it cuts back to the seal point");
        assertEquals(ErrorCode.NOT_LEADER, failure(uncommitted).code(), "the write past the seal point fails");
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (replicas[1].sealedEnd() < 0 && System.nanoTime() < end) {
            java.util.concurrent.locks.LockSupport.parkNanos(1_000_000L);
        }
        assertEquals(2, replicas[1].sealedEnd());
        assertEquals(2, replicas[1].log().logEndOffset(), "the records past the seal point are gone");
        assertEquals(wholeLog(2), wholeLog(1));
    }

    @Test
    void aRestartedReplicaWhoseNewestEpochTheLeaderNeverSawTruncatesToWhereTheLeaderDiverged() throws Exception {
        writeAcknowledged(2);
        // Node 1 leads epoch 1 too, and writes in it what nobody fetches; then node 2 leads epoch 2, writes nothing.
        replicas[1].becomeLeader(1, List.of(1, 2, 3), committedIsr, committedVersion);
        replicas[1].append(records("lost", 2), -1, -1);
        awaitDurable(1, 4);
        replicas[2].becomeLeader(2, List.of(1, 2, 3), List.of(2, 3), committedVersion);
        // Node 1 restarts (a new replica over its log, high watermark 0) and follows node 2.
        Partition restarted = new Partition("s/0@1", replicas[1].log(), 1, CONFIG, clock::get, this::propose);
        replicas[1] = restarted;
        restarted.becomeFollower(2, 2);
        assertEquals(2, restarted.truncateToLeader(endpointTo(2)),
                "epoch 0 ends at 2 on the leader: only epoch 1's records go, not the committed ones");
    }

    // ---- safety: a follower ahead of its leader (item 3) ----------------------------------------------------

    @Test
    void aFollowerToldItIsBeyondTheLeadersLogTruncatesThroughTheEpochProtocol() throws Exception {
        writeAcknowledged(1);
        for (int i = 0; i < 2; i++) {
            CompletableFuture<AppendResult> ack = replicas[1].append(records("b" + i, 1), -1, -1);
            awaitDurable(1, 2 + i);
            fetchRound(1, 2, 3);
            fetchRound(1, 2, 3);
            await(ack);
        }
        // The leader comes back without its last batch (unsynced bytes lost) in the same epoch.
        await(replicas[1].log().truncateTo(2));
        assertThrows(java.util.concurrent.CompletionException.class, () -> replicas[2].fetchOnce(endpointTo(1), 1 << 20),
                "fetch offset 3 is beyond the leader's log");
        fetchRound(1, 2); // truncates against the leader, then fetches
        assertEquals(2, replicas[2].log().logEndOffset(), "cut back to where the leader's epoch ends");
        CompletableFuture<AppendResult> next = replicas[1].append(records("c", 1), -1, -1);
        awaitDurable(1, 3);
        fetchRound(1, 2, 3);
        fetchRound(1, 2, 3);
        fetchRound(1, 2, 3);
        await(next);
        assertEquals(wholeLog(1), wholeLog(2), "the same bytes at the same offsets as the leader");
    }

    // ---- safety: offsets advertised are offsets held (item 4) -----------------------------------------------

    @Test
    void aFollowerWhoseWriteFailedNeverAdvertisesTheFailedBatch() throws Exception {
        shrinkNode3Out(); // ISR [1, 2]: node 2 alone stands between a write and its acknowledgement
        node2Files.failWrites();
        CompletableFuture<AppendResult> w = replicas[1].append(records("w", 1), -1, -1);
        awaitDurable(1, 3);
        for (int i = 0; i < 3; i++) {
            try {
                replicas[2].fetchOnce(endpointTo(1), 1 << 20);
            } catch (java.util.concurrent.CompletionException expected) {
                // the write fails; later rounds find the directory offline
            }
        }
        assertFalse(w.isDone(), "node 2 never wrote the batch: the write is not acknowledged");
        clock.addAndGet(1_001);
        replicas[1].maybeShrinkIsr();
        assertEquals(List.of(1), replicas[1].isr(), "node 2 stopped fetching and left the ISR");
        assertEquals(ErrorCode.NOT_ENOUGH_REPLICAS, failure(w).code());
    }

    @Test
    void aLeaderWhoseDiskFailedAnswersNoReadOrDelete() throws Exception {
        // Node 2 leads in epoch 1 with three records acknowledged; one of them is deleted.
        replicas[1].becomeFollower(1, 2);
        replicas[2].becomeLeader(1, List.of(1, 2, 3), committedIsr, committedVersion);
        replicas[3].becomeFollower(1, 2);
        CompletableFuture<AppendResult> ack = replicas[2].append(records("r", 3), -1, -1);
        awaitDurable(2, 3);
        fetchRound(2, 1, 3);
        fetchRound(2, 1, 3);
        await(ack);
        CompletableFuture<Long> deleted = replicas[2].delete(List.of(1L));
        fetchRound(2, 1, 3);
        fetchRound(2, 1, 3);
        assertEquals(1L, await(deleted));
        CompletableFuture<AppendResult> produced = replicas[2].append(records("p", 1), 77, 0);
        awaitDurable(2, 4);
        fetchRound(2, 1, 3);
        fetchRound(2, 1, 3);
        await(produced);
        // Its disk fails: the directory goes offline, the controller fences it and another replica leads, but
        // until it is told it still takes itself for the leader. Answering from what it holds (a delete that
        // finds nothing to do is answered at once) would hide what the new leader acknowledges meanwhile.
        node2Files.failWrites();
        try {
            replicas[2].append(records("x", 1), -1, -1);
        } catch (java.util.concurrent.CompletionException expected) {
            // the write may fail at once
        }
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (replicas[2].log().isOnline()) {
            assertTrue(System.nanoTime() < deadline, "the directory goes offline");
            java.util.concurrent.locks.LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(1));
        }
        assertEquals(ErrorCode.NOT_LEADER, failure(replicas[2].delete(List.of(1L))).code(), "an offset deleted already");
        assertEquals(ErrorCode.NOT_LEADER, assertThrows(ReplicaException.class, () -> replicas[2].readForConsumer(0, 10, 1 << 20)).code());
        assertEquals(ErrorCode.NOT_LEADER, assertThrows(ReplicaException.class, () -> replicas[2].readableHighWatermark()).code());
        // A retry's probe: "not there" is final to the client (it then writes the batch as new), and "there" is
        // what this replica held, not what the new leader holds.
        assertEquals(ErrorCode.NOT_LEADER, failure(replicas[2].findRetried(78, 0, 1)).code(), "a batch it never held");
        assertEquals(ErrorCode.NOT_LEADER, failure(replicas[2].findRetried(77, 0, 1)).code(), "a batch it held");
    }

    // ---- safety: answers checked again on arrival (item 6) ------------------------------------------------

    @Test
    void aFetchAnswerArrivingAfterTheFollowerBecameLeaderIsDropped() throws Exception {
        replicas[1].append(records("late", 2), -1, -1);
        awaitDurable(1, 2);
        CompletableFuture<LeaderEndPoint.FetchResult> held = new CompletableFuture<>();
        LeaderEndPoint slow = new LeaderEndPoint() {
            @Override
            public CompletableFuture<EpochEndOffset> endOffsetForEpoch(int leaderEpoch, int epoch) {
                return endpointTo(1).endOffsetForEpoch(leaderEpoch, epoch);
            }

            @Override
            public CompletableFuture<FetchResult> fetch(int followerId, int leaderEpoch, long fetchOffset, long tombstoneFrom, int maxBytes) {
                return held; // a long poll still on its way
            }
        };
        replicas[2].truncateToLeader(slow);
        CompletableFuture<Integer> round = replicas[2].fetchOnceAsync(slow, 1 << 20);
        LeaderEndPoint.FetchResult answer = replicas[1].fetchFromFollower(2, 0, 0, 0, 1 << 20);
        replicas[2].becomeLeader(1, List.of(1, 2, 3), List.of(2, 3), committedVersion);
        held.complete(answer);
        await(round);
        assertEquals(0, replicas[2].log().logEndOffset(), "the deposed leader's answer is not appended to the new leader's log");
    }

    @Test
    void aRetryReachingAFollowerPromotedWhileItsCopyIsBeingWrittenIsNotAppendedAgain() throws Exception {
        CompletableFuture<AppendResult> first = replicas[1].append(records("p", 3), 66, 0);
        awaitDurable(1, 3);
        replicas[2].truncateToLeader(endpointTo(1));
        node2Files.hold(); // node 2's disk stalls: its copy is queued but not written
        CompletableFuture<Integer> round = replicas[2].fetchOnceAsync(endpointTo(1), 1 << 20);
        assertFalse(round.isDone());
        replicas[2].becomeLeader(1, List.of(1, 2, 3), List.of(2, 3), committedVersion);
        replicas[3].becomeFollower(1, 2);
        CompletableFuture<AppendResult> retry = replicas[2].append(records("p", 3), 66, 0);
        node2Files.release();
        await(round);
        fetchRound(2, 3);
        fetchRound(2, 3);
        fetchRound(2, 3);
        assertEquals(new AppendResult(AppendResult.Status.APPENDED, 0, 2), await(retry), "answered with the original offsets");
        assertEquals(3, replicas[2].log().logEndOffset(), "not appended twice");
    }

    @Test
    void aTruncationOvertakenByANewerEpochLeavesTheFollowerNeedingAnother() throws Exception {
        writeAcknowledged(2);
        replicas[1].append(records("x", 1), -1, -1);
        awaitDurable(1, 3);
        replicas[2].becomeLeader(1, List.of(1, 2, 3), List.of(2, 3), committedVersion);
        replicas[1].becomeFollower(1, 2);
        CompletableFuture<EpochEndOffset> answer = new CompletableFuture<>();
        java.util.concurrent.CountDownLatch asked = new java.util.concurrent.CountDownLatch(1);
        LeaderEndPoint slow = new LeaderEndPoint() {
            @Override
            public CompletableFuture<EpochEndOffset> endOffsetForEpoch(int leaderEpoch, int epoch) {
                asked.countDown();
                return answer;
            }

            @Override
            public CompletableFuture<FetchResult> fetch(int followerId, int leaderEpoch, long fetchOffset, long tombstoneFrom, int maxBytes) {
                return endpointTo(2).fetch(followerId, leaderEpoch, fetchOffset, tombstoneFrom, maxBytes);
            }
        };
        CompletableFuture<Long> truncation = CompletableFuture.supplyAsync(() -> replicas[1].truncateToLeader(slow));
        // While it waits for the leader's answer, a newer assignment makes node 3 the leader in epoch 2.
        assertTrue(asked.await(30, TimeUnit.SECONDS));
        replicas[1].becomeFollower(2, 3);
        answer.complete(replicas[2].endOffsetForEpoch(1, 0));
        await(truncation);
        assertTrue(replicas[1].needsTruncation(), "the truncation against epoch 1's leader does not count for epoch 2");
    }
}
