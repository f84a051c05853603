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
 * Three replicas of one segment in this JVM, each with its own data directory, wired through an in-memory
 * {@link LeaderEndPoint} that can cut a follower off, and an in-memory controller for ISR proposals.
 */
@Timeout(60)
class PartitionTest extends PartitionFixture {
    @Test
    void aWriteIsAcknowledgedOnlyOnceTheIsrHasIt() throws Exception {
        CompletableFuture<AppendResult> ack = replicas[1].append(records("a", 3), -1, -1);
        awaitDurable(1, 3);
        assertFalse(ack.isDone(), "not acknowledged on the leader alone");
        assertEquals(0, replicas[1].read(0, 10, 1 << 20).size(), "consumers see nothing above the high watermark");
        fetchRound(1, 2, 3); // followers pull the batch
        assertFalse(ack.isDone(), "the leader learns of their copies only from their next fetch");
        fetchRound(1, 2, 3);
        assertEquals(new AppendResult(AppendResult.Status.APPENDED, 0, 2), await(ack));
        assertEquals(3, replicas[1].highWatermark());
        assertEquals(List.of("a0", "a1", "a2"), replicas[1].read(0, 10, 1 << 20).stream().map(PartitionTest::text).toList());
        fetchRound(1, 2);
        assertEquals(3, replicas[2].highWatermark(), "followers learn the high watermark from fetch answers");
    }

    /**
     * Close ahead (docs/architecture.md): a follower's log made while the segment before it closed holds its leader's
     * epoch already. Taking the role keeps it, the empty log reconciles without a round trip to the leader (nothing can
     * be cut), and its first batch writes no checkpoint.
     */
    @Test
    void aFollowerOfAnEpochWrittenAheadKeepsItAndFetchesAtOnce() throws Exception {
        dev.segstore.log.SegmentLog made = dirs.get(2).openLog("s-ahead", LogConfig.DEFAULT, 0);
        made.assignEpochAtEnd(0); // the epoch of the leader it will follow, written while the segment before closed
        java.util.concurrent.atomic.AtomicInteger asked = new java.util.concurrent.atomic.AtomicInteger();
        LeaderEndPoint leader = new LeaderEndPoint() {
            @Override
            public CompletableFuture<EpochEndOffset> endOffsetForEpoch(int leaderEpoch, int epoch) {
                asked.incrementAndGet();
                return endpointTo(1).endOffsetForEpoch(leaderEpoch, epoch);
            }

            @Override
            public CompletableFuture<FetchResult> fetch(int followerId, int leaderEpoch, long fetchOffset, long tombstoneFrom, int maxBytes) {
                return endpointTo(1).fetch(followerId, leaderEpoch, fetchOffset, tombstoneFrom, maxBytes);
            }
        };
        Partition follower = new Partition("s/ahead@3", made, 3, CONFIG, clock::get, this::propose);
        follower.becomeFollower(0, 1);
        assertEquals(List.of(new dev.segstore.log.epoch.EpochEntry(0, 0)), made.epochHistory(), "the followed epoch is kept");
        assertEquals(0, follower.truncateToLeader(leader));
        assertEquals(0, asked.get(), "an empty log asks the leader nothing before it fetches");
        replicas[1].append(records("a", 3), -1, -1);
        awaitDurable(1, 3);
        follower.fetchOnce(leader, 1 << 20);
        assertEquals(3, made.logEndOffset());
        assertEquals(1, made.epochCheckpointWrites(), "written once, ahead: not again at the first batch");

        dev.segstore.log.SegmentLog moved = dirs.get(2).openLog("s-moved", LogConfig.DEFAULT, 0);
        moved.assignEpochAtEnd(0);
        new Partition("s/moved@3", moved, 3, CONFIG, clock::get, this::propose).becomeFollower(1, 2);
        assertEquals(List.of(), moved.epochHistory(), "an epoch the new leader's is not: dropped, as nothing was written in it");
    }

    /**
     * The review's case: a segment handed over in epoch 0 whose leadership then moved (epoch 1 starts past the
     * segment's start), followed by a replica that wrote epoch 1 ahead. It takes the leader's epoch 0 batches and
     * records the history as the leader has it (before: every fetch failed CORRUPT_DATA, "older than 1", for good).
     */
    @Test
    void aFollowerWhoseEpochWrittenAheadStartsLaterInTheLeadersLogCatchesUp() throws Exception {
        writeAcknowledged(3); // epoch 0, node 1
        replicas[2].becomeLeader(1, List.of(1, 2, 3), List.of(2, 3), committedVersion);
        replicas[3].becomeFollower(1, 2);
        CompletableFuture<AppendResult> later = replicas[2].append(records("b", 2), -1, -1);
        awaitDurable(2, 5);
        fetchRound(2, 3);
        fetchRound(2, 3);
        await(later);
        dev.segstore.log.SegmentLog made = dirs.get(0).openLog("s-late", LogConfig.DEFAULT, 0);
        made.assignEpochAtEnd(1); // written ahead with the epoch it is to follow
        Partition late = new Partition("s/late@1", made, 1, CONFIG, clock::get, this::propose);
        late.becomeFollower(1, 2);
        late.truncateToLeader(endpointTo(2));
        late.fetchOnce(endpointTo(2), 1 << 20);
        assertEquals(5, made.logEndOffset(), "it holds the leader's records");
        assertEquals(replicas[2].log().epochHistory(), made.epochHistory(), "and the leader's epoch history");
        try (FileSlice slice = made.readSlice(0, Integer.MAX_VALUE, Long.MAX_VALUE)) {
            assertEquals(wholeLog(2), slice.read(), "byte for byte");
        }
    }

    @Test
    void minIsrRefusesRatherThanUnderReplicate() throws Exception {
        cutOff.add(2);
        cutOff.add(3);
        CompletableFuture<AppendResult> stuck = replicas[1].append(records("x", 1), -1, -1);
        clock.addAndGet(1_001);
        replicas[1].maybeShrinkIsr();
        assertEquals(List.of(1), replicas[1].isr());
        long end = replicas[1].log().logEndOffset();
        ReplicaException refused = failure(replicas[1].append(records("y", 1), -1, -1));
        assertEquals(ErrorCode.NOT_ENOUGH_REPLICAS, refused.code());
        assertTrue(refused.isNotApplied(), "refused before it was appended: a client may retry it as new");
        assertEquals(end, replicas[1].log().logEndOffset(), "nothing appended");
        assertEquals(ErrorCode.NOT_ENOUGH_REPLICAS, failure(stuck).code(),
                "the write made before the shrink is not acknowledged on one copy either");
    }

    @Test
    void aLaggingFollowerLeavesTheIsrAndRejoinsOnceCaughtUp() throws Exception {
        cutOff.add(3);
        CompletableFuture<AppendResult> ack = replicas[1].append(records("a", 5), -1, -1);
        awaitDurable(1, 5);
        fetchRound(1, 2);
        fetchRound(1, 2);
        assertFalse(ack.isDone(), "node 3 is still in the ISR and has nothing");
        clock.addAndGet(1_001);
        fetchRound(1, 2); // node 2 stays caught up
        replicas[1].maybeShrinkIsr();
        assertEquals(List.of(1, 2), replicas[1].isr());
        assertEquals(new AppendResult(AppendResult.Status.APPENDED, 0, 4), await(ack), "acknowledged by the remaining ISR of 2");
        cutOff.remove(3);
        fetchRound(1, 3); // catches up
        fetchRound(1, 3); // reports it
        assertEquals(List.of(1, 2, 3), replicas[1].isr());
        assertEquals(2, replicas[1].isrVersion());
    }

    @Test
    void aFollowerTheControllerRefusesIntoTheIsrIsNotProposedAgainAtEveryFetch() throws Exception {
        leaveNode3OutOfTheIsr();
        assertEquals(List.of(1, 2), replicas[1].isr());
        mayNotJoin.add(3); // node 3 is shutting down (a controlled shutdown took it out of the ISR)
        cutOff.remove(3);
        fetchRound(1, 3); // catches up
        fetchRound(1, 3); // reports it: the leader proposes it, the controller refuses
        int refused = proposals.get();
        for (int i = 0; i < 5; i++) {
            fetchRound(1, 3);
        }
        assertEquals(refused, proposals.get(), "no proposal at each fetch while the refusal is recent");
        assertEquals(List.of(1, 2), replicas[1].isr());
        mayNotJoin.remove(3); // it registered again
        clock.addAndGet(1_001);
        fetchRound(1, 3);
        assertEquals(List.of(1, 2, 3), replicas[1].isr(), "asked again once the lag limit has passed");
    }

    @Test
    void aDeposedLeaderAnswersTheFetchesItHoldsAtOnce() throws Exception {
        writeAcknowledged(2);
        CompletableFuture<Void> held = replicas[1].awaitDataAfter(2, 0); // a caught-up follower's long poll
        assertFalse(held.isDone());
        replicas[1].becomeFollower(1, 2);
        assertTrue(held.isDone(), "released now, so its follower hears NOT_LEADER at once, not after its wait");
        ReplicaException e = assertThrows(ReplicaException.class, () -> replicas[1].fetchFromFollower(3, 0, 2, 0, 1 << 20));
        assertEquals(ErrorCode.NOT_LEADER, e.code());
    }

    /**
     * A caught-up follower's long poll ends by its own timeout on a segment where nothing new comes (an idle one, a
     * sealed one, whose followers go on fetching for deletes): the leader must not keep every such wait until the
     * next write, which may never come (one a second per follower and segment).
     */
    @Test
    void longPollsThatEndedByTheirTimeoutAreNotKept() throws Exception {
        writeAcknowledged(2);
        for (int i = 0; i < 1_000; i++) {
            replicas[1].awaitDataAfter(2, 0).complete(null); // as completeOnTimeout ends it
        }
        CompletableFuture<Void> waiting = replicas[1].awaitDataAfter(2, 0);
        assertEquals(1, replicas[1].heldFetches(), "long polls kept after 1,000 ended by their timeout, besides the one waiting");
        assertFalse(waiting.isDone());
        replicas[1].append(records("w", 1), -1, -1);
        waiting.get(10, java.util.concurrent.TimeUnit.SECONDS); // a write still answers the wait in progress
    }

    @Test
    void aWritersEncodedBatchIsReplicatedByteForByteAndItsRetryIsNotAppendedAgain() throws Exception {
        writeAcknowledged(2);
        java.util.function.Supplier<ByteBuffer> encoded = () -> dev.segstore.log.format.RecordBatch.encode(0, 0, -1, -1, records("e", 3));
        CompletableFuture<AppendResult> first = replicas[1].appendEncoded(encoded.get(), 55, 0);
        CompletableFuture<AppendResult> retry = replicas[1].appendEncoded(encoded.get(), 55, 0);
        awaitDurable(1, 5);
        fetchRound(1, 2, 3);
        fetchRound(1, 2, 3);
        assertEquals(new AppendResult(AppendResult.Status.APPENDED, 2, 4), await(first), "offsets from the log, not the writer");
        assertEquals(await(first), await(retry));
        assertEquals(5, replicas[1].log().logEndOffset(), "appended once");
        assertEquals(List.of("r0", "r1", "e0", "e1", "e2"), replicas[3].read(0, 10, 1 << 20).stream().map(PartitionTest::text).toList());
        assertEquals(wholeLog(1), wholeLog(2), "followers store the leader's stamped bytes");
        ByteBuffer damaged = encoded.get();
        damaged.put(damaged.limit() - 1, (byte) (damaged.get(damaged.limit() - 1) ^ 1));
        assertEquals(ErrorCode.INVALID_ARGUMENT, failure(replicas[1].appendEncoded(damaged, 55, 3)).code());
        assertEquals(5, replicas[1].log().logEndOffset(), "nothing written");
    }

    @Test
    void aRetriedBatchIsAnsweredWithItsOriginalOffsets() throws Exception {
        CompletableFuture<AppendResult> first = replicas[1].append(records("p", 2), 77, 0);
        CompletableFuture<AppendResult> retry = replicas[1].append(records("p", 2), 77, 0);
        awaitDurable(1, 2);
        fetchRound(1, 2, 3);
        fetchRound(1, 2, 3);
        assertEquals(await(first), await(retry));
        assertEquals(2, replicas[1].log().logEndOffset(), "appended once");
        AppendResult next = replicas[1].append(records("q", 1), 77, 2).thenApply(r -> r).getNow(null);
        assertEquals(null, next, "a new sequence is a new write");
        assertEquals(ErrorCode.INVALID_ARGUMENT, failure(replicas[1].append(records("q", 3), 77, 0)).code(),
                "same sequence, different batch");
    }

    @Test
    void aDemotedLeaderTruncatesItsUnreplicatedTailAndEndsByteIdentical() throws Exception {
        CompletableFuture<AppendResult> ack = replicas[1].append(records("ok", 2), -1, -1);
        awaitDurable(1, 2);
        fetchRound(1, 2, 3);
        fetchRound(1, 2, 3);
        await(ack);
        // Node 1 takes two more writes that nobody fetches, then loses leadership to node 2.
        replicas[1].append(records("lost", 3), -1, -1);
        awaitDurable(1, 5);
        replicas[2].becomeLeader(1, List.of(1, 2, 3), List.of(2, 3), committedVersion);
        replicas[3].becomeFollower(1, 2);
        replicas[1].becomeFollower(1, 2);
        CompletableFuture<AppendResult> fresh = replicas[2].append(records("new", 4), -1, -1);
        assertEquals(2, replicas[1].truncateToLeader(endpointTo(2)), "cut back to where epoch 0 ends on the leader");
        assertEquals(2, replicas[3].truncateToLeader(endpointTo(2)));
        awaitDurable(2, 6);
        for (int i = 0; i < 3; i++) {
            fetchRound(2, 1, 3);
        }
        assertEquals(new AppendResult(AppendResult.Status.APPENDED, 2, 5), await(fresh));
        ByteBuffer leaderBytes = wholeLog(2);
        assertEquals(leaderBytes, wholeLog(1), "demoted leader is byte-identical to the new leader");
        assertEquals(leaderBytes, wholeLog(3));
        assertEquals(List.of("ok0", "ok1", "new0", "new1", "new2", "new3"),
                replicas[2].read(0, 10, 1 << 20).stream().map(PartitionTest::text).toList());
    }

    @Test
    void aDeleteIsAcknowledgedOnceTheIsrHoldsItAndEveryReplicaHidesTheRecord() throws Exception {
        writeAcknowledged(3);
        CompletableFuture<Long> deleted = replicas[1].delete(List.of(1L));
        assertFalse(deleted.isDone(), "not acknowledged before the followers hold the tombstone");
        assertEquals(List.of("r0", "r2"), replicas[1].read(0, 10, 1 << 20).stream().map(PartitionTest::text).toList());
        fetchRound(1, 2);
        assertFalse(deleted.isDone(), "node 3 is in the ISR and has not fetched it");
        fetchRound(1, 3);
        fetchRound(1, 2, 3); // followers report their new tombstone end with their next fetch
        assertEquals(1L, await(deleted));
        for (int node = 1; node <= 3; node++) {
            assertEquals(List.of("r0", "r2"), replicas[node].read(0, 10, 1 << 20).stream().map(PartitionTest::text).toList(),
                    "node " + node + " hides the deleted record");
        }
        Partition.ReadResult page = replicas[2].readLive(1, 1, 1 << 20);
        assertEquals(List.of("r2"), page.records().stream().map(PartitionTest::text).toList(),
                "a deleted record does not count against a page");
        assertEquals(3, page.nextOffset(), "and the page says where to read on");
        CompletableFuture<Long> again = replicas[1].delete(List.of(1L, 2L));
        fetchRound(1, 2, 3);
        fetchRound(1, 2, 3);
        assertEquals(1L, await(again), "deleting a deleted record deletes nothing");
        page = replicas[2].readLive(1, 1, 1 << 20);
        assertEquals(List.of(), page.records(), "a page of deleted records comes back empty");
        assertEquals(3, page.nextOffset(), "and says where to read on");
        assertEquals(ErrorCode.OFFSET_OUT_OF_RANGE, failure(replicas[1].delete(List.of(3L))).code(), "at the high watermark");
        assertEquals(ErrorCode.NOT_LEADER, failure(replicas[2].delete(List.of(0L))).code());
    }

    @Test
    void anAcknowledgedDeleteSurvivesALeaderChangeAndAnUnacknowledgedOneOnTheOldLeaderIsDropped() throws Exception {
        writeAcknowledged(3);
        CompletableFuture<Long> kept = replicas[1].delete(List.of(0L));
        fetchRound(1, 2, 3);
        fetchRound(1, 2, 3);
        assertEquals(1L, await(kept));
        CompletableFuture<Long> lost = replicas[1].delete(List.of(1L)); // nobody fetches it
        replicas[2].becomeLeader(1, List.of(1, 2, 3), List.of(2, 3), committedVersion);
        replicas[3].becomeFollower(1, 2);
        replicas[1].becomeFollower(1, 2);
        assertEquals(ErrorCode.NOT_LEADER, failure(lost).code(), "the deposed leader fails the delete it could not replicate");
        assertEquals(List.of("r1", "r2"), replicas[2].read(0, 10, 1 << 20).stream().map(PartitionTest::text).toList(),
                "the new leader holds the acknowledged delete");
        replicas[1].truncateToLeader(endpointTo(2));
        fetchRound(2, 1, 3);
        for (int node = 1; node <= 3; node++) {
            assertTrue(replicas[node].isDeleted(0), "node " + node);
            assertFalse(replicas[node].isDeleted(1), "node " + node + " follows the new leader's deletes");
        }
    }

    /**
     * A delete that finds nothing to delete writes no tombstone, but its answer must come from a replica that still
     * leads. A leader deposed without hearing of it (cut off from the meta-service and its followers, still reached
     * by clients) answered at once from its stale log, "nothing here, segment open", while the new leader held such
     * records: the process fault schedules found 33-85 deletes by key undone that way (DELETE_UNDONE, campaign seed
     * 5724918756473368383, run 0038). It now waits for a fetch request of every ISR member that arrives after it; a
     * fetch held since before it, taken again, does not count.
     */
    @Test
    void aDeleteThatFindsNothingIsAnsweredOnlyOnceEveryIsrMemberFetchedAfterIt() throws Exception {
        writeAcknowledged(2);
        CompletableFuture<Long> nothing = replicas[1].delete(List.of());
        assertFalse(nothing.isDone(), "answered before the ISR was heard from after it");
        fetchRound(1, 2, 3); // at the same clock reading as the delete: not after it
        assertFalse(nothing.isDone(), "fetches that may have come before it do not count");
        clock.addAndGet(1);
        replicas[1].fetchSliceForFollower(3, 0, replicas[3].log().logEndOffset(), 0, 1000, true).slice().close();
        fetchRound(1, 2);
        assertFalse(nothing.isDone(), "node 3's fetch held since before the delete does not count, and node 2's alone is not enough");
        fetchRound(1, 3);
        assertEquals(0L, await(nothing));

        // Deposed without hearing of it: node 2 leads epoch 1 with node 3; node 1 still takes itself for the leader.
        replicas[2].becomeLeader(1, List.of(1, 2, 3), List.of(2, 3), committedVersion + 1);
        replicas[3].becomeFollower(1, 2);
        CompletableFuture<Long> stale = replicas[1].delete(List.of());
        clock.addAndGet(1);
        fetchRound(2, 3);
        assertFalse(stale.isDone(), "the deposed leader's ISR members fetch from the new leader: no answer");
        replicas[1].becomeFollower(1, 2);
        assertEquals(ErrorCode.NOT_LEADER, failure(stale).code(), "told of the new leader, it refuses");
    }

    /**
     * A delete that finds nothing because an earlier delete, not yet acknowledged, tombstoned the record already (reads
     * hide a tombstone as soon as the leader holds it) is answered only once that tombstone is acknowledged too: were
     * the leader to fail before its followers hold it, the record would be live again on the next leader, and the
     * second delete's answer ("deleted, nothing left") would be undone.
     */
    @Test
    void aDeleteThatFindsARecordDeletedUnacknowledgedWaitsForThatTombstone() throws Exception {
        writeAcknowledged(3);
        CompletableFuture<Long> first = replicas[1].delete(List.of(1L));
        CompletableFuture<Long> again = replicas[1].delete(List.of(1L)); // finds offset 1 hidden: nothing to delete
        clock.addAndGet(1);
        fetchRound(1, 2, 3); // requests that arrived after both deletes, from followers that do not hold the tombstone yet
        assertFalse(first.isDone(), "the followers have not reported the tombstone");
        assertFalse(again.isDone(), "answered while the tombstone that hid the record may still be lost");
        fetchRound(1, 2, 3); // the followers report it
        assertEquals(1L, await(first));
        assertEquals(0L, await(again));
    }

    /** Its tombstone is replicated to the ISR that is left, but that ISR is below min.insync.replicas: not acknowledged. */
    @Test
    void aDeleteWhoseIsrShrankBelowMinIsrBeforeItWasAcknowledgedFails() throws Exception {
        writeAcknowledged(3);
        CompletableFuture<Long> deleted = replicas[1].delete(List.of(1L));
        replicas[1].onControllerIsr(0, List.of(1), committedVersion + 5); // nodes 2 and 3 dropped before they fetched it
        clock.addAndGet(CONFIG.readLeaseMs()); // the hold on deletes after the shrink is over
        replicas[1].onControllerIsr(0, List.of(1), committedVersion + 6); // a look at the watermarks
        assertEquals(ErrorCode.NOT_ENOUGH_REPLICAS, failure(deleted).code());
    }

    @Test
    void aDeleteNeedsMinIsr() throws Exception {
        writeAcknowledged(1);
        replicas[1].onControllerIsr(0, List.of(1), committedVersion + 5);
        assertEquals(ErrorCode.NOT_ENOUGH_REPLICAS, failure(replicas[1].delete(List.of(0L))).code());
        assertFalse(replicas[1].isDeleted(0), "a refused delete leaves no tombstone");
    }



    @Test
    void fetchesOutsideTheLogOrInAnOldEpochAreRefused() {
        ReplicaException ahead = assertThrows(ReplicaException.class, () -> replicas[1].fetchFromFollower(2, 0, 5, 0, 1000));
        assertEquals(ErrorCode.OFFSET_OUT_OF_RANGE, ahead.code());
        ReplicaException stale = assertThrows(ReplicaException.class, () -> replicas[1].fetchFromFollower(2, 7, 0, 0, 1000));
        assertEquals(ErrorCode.FENCED_EPOCH, stale.code());
        ReplicaException notLeader = assertThrows(ReplicaException.class, () -> replicas[2].fetchFromFollower(3, 0, 0, 0, 1000));
        assertEquals(ErrorCode.NOT_LEADER, notLeader.code());
        assertEquals(1, notLeader.leaderHint());
        assertEquals(ErrorCode.NOT_LEADER, failure(replicas[2].append(records("x", 1), -1, -1)).code());
        assertThrows(ReplicaException.class, () -> replicas[1].becomeFollower(-1, 2), "an older epoch is refused");
    }

    @Test
    void aFullOrOldSegmentStopsWritesAndIsSealedOnceTheIsrHasEverything() throws Exception {
        List<Long> rolledAt = new ArrayList<>();
        replicas[1].configureRoll(Long.MAX_VALUE, 5_000, (epoch, end) -> {
            rolledAt.add(end);
            return CompletableFuture.completedFuture(null);
        });
        CompletableFuture<AppendResult> ack = replicas[1].append(records("old", 3), -1, -1);
        clock.addAndGet(5_000);
        replicas[1].maybeRetryRoll();
        assertEquals(ErrorCode.NOT_LEADER, failure(replicas[1].append(records("late", 1), -1, -1)).code(),
                "a sealing segment takes no more writes");
        assertEquals(List.of(), rolledAt, "not before the ISR has everything");
        awaitDurable(1, 3);
        fetchRound(1, 2, 3);
        fetchRound(1, 2, 3);
        await(ack);
        assertEquals(List.of(3L), rolledAt, "sealed at the high watermark, which reached the log end");
        assertEquals(3, replicas[1].sealedEnd());
        assertTrue(replicas[1].log().isSealed());
        replicas[2].markSealed(0, 3);
        assertEquals(3, replicas[2].sealedEnd(), "a follower that has everything seals at once");
    }

    @Test
    void aSealedFollowerOutsideTheIsrAnswersNoReadAsItMayLackAcknowledgedDeletes() throws Exception {
        writeAcknowledged(3);
        for (int node = 1; node <= 3; node++) {
            replicas[node].markSealed(0, 3);
        }
        // Node 3 leaves the ISR (the controller fenced it, say), then a delete is acknowledged without it.
        replicas[1].onControllerIsr(0, List.of(1, 2), 1);
        replicas[3].assignedIsr(List.of(1, 2), clock.get());
        CompletableFuture<Long> deleted = replicas[1].delete(List.of(1L));
        fetchRound(1, 2);
        fetchRound(1, 2);
        clock.addAndGet(CONFIG.readLeaseMs()); // the leader holds the delete for the read lease after the ISR shrank
        fetchRound(1, 2);
        assertEquals(1L, await(deleted));
        assertEquals(List.of(1L), replicas[2].readForConsumer(0, 10, 1 << 20).deleted(), "an ISR member has the tombstone");
        ReplicaException refused = assertThrows(ReplicaException.class, () -> replicas[3].readForConsumer(0, 10, 1 << 20),
                "node 3 lacks the tombstone: offset 1 would come back deleted or not");
        assertEquals(ErrorCode.UNAVAILABLE, refused.code());
        // Back in the ISR (it fetched the tombstone first), it answers again.
        fetchRound(1, 3);
        replicas[3].assignedIsr(List.of(1, 2, 3), clock.get());
        assertEquals(List.of(1L), replicas[3].readForConsumer(0, 10, 1 << 20).deleted());
    }

    /**
     * Node 3 is dropped from a sealed segment's ISR but hears nothing of it (its heartbeat answers are lost), so
     * its last assignment still lists it. It serves reads only until read.lease.ms after the heartbeat that brought
     * that assignment was sent, and the leader acknowledges a delete made without it only read.lease.ms after the
     * ISR shrank: never while node 3 may still answer with the deleted record. Found by the fault schedules (seed
     * -2554199558688349432, run 0092: DELETE_UNDONE through a fenced follower).
     */
    @Test
    void aMemberDroppedWithoutHearingOfItStopsServingSealedReadsBeforeADeleteWithoutItIsAcknowledged() throws Exception {
        writeAcknowledged(3);
        for (int node = 1; node <= 3; node++) {
            replicas[node].markSealed(0, 3);
            replicas[node].assignedIsr(List.of(1, 2, 3), clock.get()); // every member's last heartbeat, sent now
        }
        long confirmed = clock.get();
        clock.addAndGet(100);
        replicas[1].onControllerIsr(0, List.of(1, 2), 1); // node 3 dropped; its answers are lost
        CompletableFuture<Long> deleted = replicas[1].delete(List.of(1L));
        fetchRound(1, 2);
        fetchRound(1, 2);
        assertEquals(List.of(), replicas[3].readForConsumer(0, 10, 1 << 20).deleted(), "node 3 still serves, without the tombstone");
        assertFalse(deleted.isDone(), "acknowledged while node 3, dropped without hearing of it, still serves offset 1");
        clock.set(confirmed + CONFIG.readLeaseMs() + 1);
        ReplicaException refused = assertThrows(ReplicaException.class, () -> replicas[3].readForConsumer(0, 10, 1 << 20),
                "node 3's lease ended: no heartbeat answer confirmed it in the ISR since");
        assertEquals(ErrorCode.UNAVAILABLE, refused.code());
        fetchRound(1, 2);
        assertFalse(deleted.isDone(), "the leader holds the delete for the lease from when it learnt of the shrink");
        clock.set(confirmed + 100 + CONFIG.readLeaseMs());
        fetchRound(1, 2);
        assertEquals(1L, await(deleted));
        // A heartbeat answer that lists it again (it caught up and rejoined) lets it serve again.
        fetchRound(1, 3);
        replicas[3].assignedIsr(List.of(1, 2, 3), clock.get());
        assertEquals(List.of(1L), replicas[3].readForConsumer(0, 10, 1 << 20).deleted());
    }

    @Test
    void aLeaderWhoseRollIsUnansweredSaysTheSegmentMayEndAtItsLogEnd() throws Exception {
        // The roll's answer never comes (lost): the controller may have sealed the segment and opened the next one.
        replicas[1].configureRoll(Long.MAX_VALUE, 5_000, (epoch, end) -> new CompletableFuture<>());
        CompletableFuture<AppendResult> ack = replicas[1].append(records("r", 3), -1, -1);
        awaitDurable(1, 3);
        fetchRound(1, 2, 3);
        fetchRound(1, 2, 3);
        await(ack);
        assertEquals(-1, replicas[1].mayBeSealedAt(), "open and taking writes");
        clock.addAndGet(5_000);
        replicas[1].maybeRetryRoll(); // old: sealing, the roll asked
        assertEquals(-1, replicas[1].sealedEnd(), "not sealed as far as it knows");
        assertEquals(3, replicas[1].mayBeSealedAt(), "but a client must not take its end for the shard's");
        replicas[1].assignedIsr(List.of(1, 2, 3), clock.get()); // a heartbeat answer renews its leader lease
        Partition.ConsumerSlice atEnd = replicas[1].readForConsumer(3, 10, 1 << 20);
        assertEquals(3, atEnd.sealedEnd(), "a read at its end says the segment may end there: the client looks at a fresh route");
        assertEquals(-1, replicas[2].mayBeSealedAt(), "a follower knows nothing of the roll");
    }

    @Test
    void aWriteRefusedWhileTheSegmentRollsIsMarkedNotAppliedAndRolling() throws Exception {
        replicas[1].configureRoll(Long.MAX_VALUE, 5_000, (epoch, end) -> new CompletableFuture<>());
        CompletableFuture<AppendResult> ack = replicas[1].append(records("r", 3), -1, -1);
        awaitDurable(1, 3);
        fetchRound(1, 2, 3);
        fetchRound(1, 2, 3);
        await(ack);
        clock.addAndGet(5_000);
        replicas[1].maybeRetryRoll(); // old: sealing, the roll asked (and never answered)
        for (int i = 0; i < 2; i++) {
            ExecutionException e = assertThrows(ExecutionException.class, () -> replicas[1].append(records("late", 1), -1, -1).get());
            ReplicaException refused = (ReplicaException) e.getCause();
            assertEquals(ErrorCode.NOT_LEADER, refused.code());
            assertTrue(refused.isNotApplied(), "nothing was written: the client sends it again as a new batch");
            assertTrue(refused.isRolling(), "the refusal says it comes from the roll: the client retries soon, not after a growing pause");
            if (i == 0) {
                replicas[1].markSealed(0, 3); // and once the seal has committed, the same
            }
        }
        assertEquals(3, replicas[1].log().logEndOffset(), "nothing appended past the seal point");
    }

    @Test
    void aConsumerReadAtOrPastTheSealedEndSaysTheSegmentIsSealedThere() throws Exception {
        replicas[1].configureRoll(Long.MAX_VALUE, 5_000, (epoch, end) -> CompletableFuture.completedFuture(null));
        CompletableFuture<AppendResult> ack = replicas[1].append(records("r", 3), -1, -1);
        awaitDurable(1, 3);
        fetchRound(1, 2, 3);
        fetchRound(1, 2, 3);
        await(ack);
        Partition.ConsumerSlice open = replicas[1].readForConsumer(3, 10, 1 << 20);
        open.slice().close();
        assertEquals(-1, open.sealedEnd(), "open: the end of the shard, as far as this replica knows");
        assertThrows(ReplicaException.class, () -> replicas[1].readForConsumer(5, 10, 1 << 20), "above the high watermark of an open segment");
        replicas[1].markSealed(0, 3);
        for (long offset : new long[] {3, 5}) {
            Partition.ConsumerSlice c = replicas[1].readForConsumer(offset, 10, 1 << 20);
            c.slice().close();
            assertEquals(3, c.sealedEnd(), "sealed at 3: a later segment holds offset " + offset);
            assertEquals(offset, c.nextOffset());
            assertTrue(c.slice().isEmpty());
        }
        Partition.ConsumerSlice below = replicas[1].readForConsumer(0, 10, 1 << 20);
        below.slice().close();
        assertEquals(3, below.nextOffset(), "below the seal: the records, and where the segment ends");
        assertEquals(3, below.sealedEnd());
    }

    @Test
    void aSealedSegmentsLeaderTellsWhetherARetriedBatchIsInItsLog() throws Exception {
        replicas[1].configureRoll(Long.MAX_VALUE, 5_000, (epoch, end) -> CompletableFuture.completedFuture(null));
        CompletableFuture<AppendResult> written = replicas[1].append(records("w", 2), 88, 0);
        awaitDurable(1, 2);
        fetchRound(1, 2, 3);
        fetchRound(1, 2, 3);
        await(written);
        clock.addAndGet(5_000);
        replicas[1].maybeRetryRoll();
        assertEquals(2, replicas[1].sealedEnd());
        // The writer never saw its answer and the segment is sealed: it asks before writing to the next one.
        assertEquals(await(written), await(replicas[1].findRetried(88, 0, 2)), "there: its original offsets");
        assertEquals(null, await(replicas[1].findRetried(88, 2, 1)), "a later sequence is not there");
        assertEquals(null, await(replicas[1].findRetried(99, 0, 2)), "nor another producer's batch");
        assertEquals(ErrorCode.NOT_LEADER, failure(replicas[2].findRetried(88, 0, 2)).code(), "only the leader can tell");
        assertEquals(2, replicas[1].log().logEndOffset(), "a probe appends nothing");
    }

    /**
     * A follower's first append in an epoch forces the leader-epoch file under the partition's monitor; each fetch
     * loop and heartbeat asks the role meanwhile, and with 1,000 shards those waits stalled replication.
     */
    @Test
    void theRoleIsReadWithoutWaitingForTheMonitor() throws Exception {
        Partition follower = replicas[2];
        java.util.concurrent.CountDownLatch held = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
        Thread appender = new Thread(() -> {
            synchronized (follower) { // as an append holds it while it forces the epoch file
                held.countDown();
                try {
                    release.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        });
        appender.start();
        try {
            assertTrue(held.await(10, java.util.concurrent.TimeUnit.SECONDS));
            assertEquals(Partition.Role.FOLLOWER, CompletableFuture.supplyAsync(follower::role).get(10, java.util.concurrent.TimeUnit.SECONDS));
        } finally {
            release.countDown();
            appender.join();
        }
    }

    @Test
    void aLeaderRestartedSinceItStoredABatchStillKnowsARetryOfIt() throws Exception {
        CompletableFuture<AppendResult> first = replicas[1].append(records("b", 3), 66, 0);
        awaitDurable(1, 3);
        fetchRound(1, 2, 3);
        fetchRound(1, 2, 3);
        AppendResult original = await(first);
        // Node 2 restarts: a new replica over the same log, which knows no producer, and it becomes the leader.
        Partition restarted = new Partition("s/0@2", replicas[2].log(), 2, CONFIG, clock::get, this::propose);
        replicas[2] = restarted;
        restarted.becomeLeader(1, List.of(1, 2, 3), committedIsr, committedVersion);
        replicas[1].becomeFollower(1, 2);
        replicas[3].becomeFollower(1, 2);
        CompletableFuture<AppendResult> retry = restarted.append(records("b", 3), 66, 0);
        fetchRound(2, 1, 3); // the new leader's high watermark moves once its followers fetch
        fetchRound(2, 1, 3);
        assertEquals(original, await(retry), "read back from the log: the retry gets the original offsets");
        assertEquals(3, restarted.log().logEndOffset(), "not appended twice");
        assertEquals(original, await(restarted.findRetried(66, 0, 3)));
    }

    /** Batch 0-2 of producer 66 and five later ones through leader 1, replicated and acknowledged; the first's offsets. */
    private AppendResult writeABatchAndFiveLaterOnes() throws Exception {
        CompletableFuture<AppendResult> first = replicas[1].append(records("b", 3), 66, 0);
        for (int i = 0; i < 5; i++) {
            replicas[1].append(records("later" + i, 1), 66, 3 + i);
        }
        awaitDurable(1, 8);
        fetchRound(1, 2, 3);
        fetchRound(1, 2, 3);
        return await(first);
    }

    /**
     * Batch 0-2 of producer 66, then five later ones, replicated and acknowledged; then node 2 restarts (a new
     * replica over the same log, reading back only about the last third of it) and leads epoch 1.
     */
    private AppendResult restartNode2AsLeaderWithATailWindow() throws Exception {
        AppendResult original = writeABatchAndFiveLaterOnes();
        assertEquals(8, replicas[2].log().logEndOffset());
        long window = replicas[2].log().sizeInBytes() / 3; // the first batch lies before it
        Partition restarted = new Partition("s/0@2", replicas[2].log(), new Tombstones(Tombstones.Store.NONE), 2, CONFIG, clock::get,
                this::propose, window);
        replicas[2] = restarted;
        restarted.becomeLeader(1, List.of(1, 2, 3), committedIsr, committedVersion);
        replicas[1].becomeFollower(1, 2);
        replicas[3].becomeFollower(1, 2);
        return original;
    }

    @Test
    void aRetryFlaggedAsMaybeAppliedIsKnownToARestartedLeaderBeyondItsTailWindow() throws Exception {
        AppendResult original = restartNode2AsLeaderWithATailWindow();
        CompletableFuture<AppendResult> retry = replicas[2].append(records("b", 3), 66, 0, true);
        fetchRound(2, 1, 3);
        fetchRound(2, 1, 3);
        assertEquals(original, await(retry), "the rest of the log read back: the retry gets its original offsets");
        assertEquals(8, replicas[2].log().logEndOffset(), "not appended twice");
        assertEquals(new AppendResult(AppendResult.Status.APPENDED, 7, 7), await(replicas[2].append(records("later4", 1), 66, 7, true)),
                "batches read back by the tail scan are still known after the rest was read");
        CompletableFuture<AppendResult> next = replicas[2].append(records("c", 1), 66, 8);
        awaitDurable(2, 9);
        fetchRound(2, 1, 3);
        fetchRound(2, 1, 3);
        assertEquals(new AppendResult(AppendResult.Status.APPENDED, 8, 8), await(next), "a new batch is appended");
    }

    @Test
    void aLeaderRestartedAfterACleanStopKnowsOlderBatchesWithoutReadingItsLogBack() throws Exception {
        AppendResult original = writeABatchAndFiveLaterOnes();
        byte[] saved = replicas[2].producerSnapshot(); // a follower since its log was empty: it knows every batch
        assertTrue(saved != null, "a replica that began with an empty log knows every batch of it");
        Partition restarted = new Partition("s/0@2", replicas[2].log(), new Tombstones(Tombstones.Store.NONE), 2, CONFIG, clock::get,
                this::propose, replicas[2].log().sizeInBytes() / 3); // its tail window misses the first batch
        assertTrue(restarted.restoreProducers(saved));
        List<Runnable> readBacks = new ArrayList<>();
        restarted.readBackOn(readBacks::add);
        replicas[2] = restarted;
        restarted.becomeLeader(1, List.of(1, 2, 3), committedIsr, committedVersion);
        replicas[1].becomeFollower(1, 2);
        replicas[3].becomeFollower(1, 2);
        CompletableFuture<AppendResult> retry = restarted.append(records("b", 3), 66, 0, true);
        fetchRound(2, 1, 3);
        fetchRound(2, 1, 3);
        assertEquals(original, await(retry), "known from the saved state: the original offsets");
        assertEquals(List.of(), readBacks, "no read of the log");
        assertEquals(8, restarted.log().logEndOffset(), "not appended twice");
        assertTrue(restarted.producerSnapshot() != null, "complete again, for the next stop");
    }

    @Test
    void aSavedProducerStateIsNotUsedForALogThatEndsElsewhere() throws Exception {
        CompletableFuture<AppendResult> first = replicas[1].append(records("b", 3), 66, 0);
        awaitDurable(1, 3);
        fetchRound(1, 2, 3);
        fetchRound(1, 2, 3);
        await(first);
        byte[] saved = replicas[2].producerSnapshot();
        CompletableFuture<AppendResult> later = replicas[1].append(records("c", 1), 66, 3); // the log goes on
        awaitDurable(1, 4);
        fetchRound(1, 2, 3);
        fetchRound(1, 2, 3);
        await(later);
        Partition restarted = new Partition("s/0@2", replicas[2].log(), new Tombstones(Tombstones.Store.NONE), 2, CONFIG, clock::get,
                this::propose, 1);
        assertFalse(restarted.restoreProducers(saved), "saved at log end 3, the log ends at 4");
        assertEquals(null, restarted.producerSnapshot(), "a replica over a non-empty log that read none of it back knows nothing to save");
        byte[] damaged = java.util.Arrays.copyOf(replicas[2].producerSnapshot(), 12);
        assertFalse(new Partition("s/0@2", replicas[2].log(), 2, CONFIG, clock::get, this::propose).restoreProducers(damaged), "cut short");
    }

    @Test
    void aRetryThatNeedsTheWholeLogReadBackDoesNotHoldUpOtherWrites() throws Exception {
        AppendResult original = restartNode2AsLeaderWithATailWindow();
        List<Runnable> readBacks = new ArrayList<>();
        replicas[2].readBackOn(readBacks::add); // held until the test runs it
        CompletableFuture<AppendResult> retry = replicas[2].append(records("b", 3), 66, 0, true);
        CompletableFuture<AppendResult> again = replicas[2].append(records("b", 3), 66, 0, true); // its client gave up and sent it again
        assertEquals(1, readBacks.size(), "one read-back for both retries");
        CompletableFuture<AppendResult> other = replicas[2].append(records("c", 1), 77, 0);
        awaitDurable(2, 9);
        fetchRound(2, 1, 3);
        fetchRound(2, 1, 3);
        assertEquals(new AppendResult(AppendResult.Status.APPENDED, 8, 8), await(other),
                "another producer's write is acknowledged while the retry waits for the read-back");
        assertFalse(retry.isDone(), "the retry waits for the rest of the log to be read");
        readBacks.remove(0).run();
        fetchRound(2, 1, 3);
        assertEquals(original, await(retry), "the read-back finds the batch: its original offsets");
        assertEquals(original, await(again));
        assertEquals(9, replicas[2].log().logEndOffset(), "appended once, not again");
        assertTrue(readBacks.isEmpty());
    }

    @Test
    void aRetryWaitingForTheReadBackOfALeaderThatStepsDownIsRefusedNotAppended() throws Exception {
        restartNode2AsLeaderWithATailWindow();
        List<Runnable> readBacks = new ArrayList<>();
        replicas[2].readBackOn(readBacks::add);
        CompletableFuture<AppendResult> retry = replicas[2].append(records("new", 2), 66, 8, true); // never stored
        replicas[2].becomeFollower(2, 1);
        readBacks.remove(0).run();
        ReplicaException refused = failure(retry);
        assertEquals(ErrorCode.NOT_LEADER, refused.code(), refused.getMessage());
        assertTrue(refused.isNotApplied(), "nothing was written");
        assertEquals(8, replicas[2].log().logEndOffset());
    }

    @Test
    void aRestartedSealedLeaderProbedForABatchBeyondItsTailWindowFindsIt() throws Exception {
        AppendResult original = restartNode2AsLeaderWithATailWindow();
        fetchRound(2, 1, 3);
        fetchRound(2, 1, 3);
        // A probe (only_if_duplicate) answering "not found" sends the batch to the next segment: it must be sure.
        assertEquals(original, await(replicas[2].findRetried(66, 0, 3)), "found in the part of the log before the tail window");
        assertEquals(8, replicas[2].log().logEndOffset(), "a probe appends nothing");
    }
}
