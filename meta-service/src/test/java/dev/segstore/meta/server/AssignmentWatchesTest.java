package dev.segstore.meta.server;

import dev.segstore.adapter.ErrorCode;
import dev.segstore.protocol.meta.Command;
import dev.segstore.protocol.meta.CommitOffsetsCommand;
import dev.segstore.protocol.meta.RollSegmentCommand;
import dev.segstore.protocol.meta.WatchAssignmentsResponse;
import dev.segstore.protocol.rpc.RpcException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The storage nodes' long polls on the meta leader ({@link AssignmentWatches}). */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class AssignmentWatchesTest {
    private static final long LONG_WAIT_MS = 20_000;
    private final AssignmentWatches watches = new AssignmentWatches();

    @AfterEach
    void close() {
        watches.close();
    }

    private static Command roll() {
        return Command.newBuilder().setRollSegment(RollSegmentCommand.newBuilder().setShard("s")).build();
    }

    private static Command commit() {
        return Command.newBuilder().setCommitOffsets(CommitOffsetsCommand.getDefaultInstance()).build();
    }

    private static WatchAssignmentsResponse await(CompletableFuture<WatchAssignmentsResponse> f) throws Exception {
        return f.get(10, TimeUnit.SECONDS);
    }

    /**
     * A roll being committed: the next segment's replicas' held watches are answered at once with it as upcoming
     * (changed false, nothing applied yet), the others stay held; the roll's commit then answers "changed" a node that
     * watched again meanwhile.
     */
    @Test
    void aRollsNextSegmentIsToldToItsReplicasHeldWatchesOnly() throws Exception {
        watches.applied(roll(), 3);
        CompletableFuture<WatchAssignmentsResponse> one = watches.watch(1, 3, LONG_WAIT_MS);
        CompletableFuture<WatchAssignmentsResponse> two = watches.watch(2, 3, LONG_WAIT_MS);
        CompletableFuture<WatchAssignmentsResponse> four = watches.watch(4, 3, LONG_WAIT_MS);
        dev.segstore.protocol.meta.Segment next = dev.segstore.protocol.meta.Segment.newBuilder().setShard("s").setShardId(7)
                .setSequence(2).setStartOffset(100).addReplicas(2).addReplicas(1).addReplicas(3).setLeader(2).build();
        watches.upcoming(next);
        for (CompletableFuture<WatchAssignmentsResponse> w : java.util.List.of(one, two)) {
            WatchAssignmentsResponse r = await(w);
            assertFalse(r.getChanged(), "nothing applied yet");
            assertEquals(java.util.List.of(next), r.getUpcomingList());
        }
        assertFalse(four.isDone(), "node 4 holds no replica of it: still held");
        CompletableFuture<WatchAssignmentsResponse> again = watches.watch(1, 3, LONG_WAIT_MS);
        watches.applied(roll(), 4);
        assertTrue(await(again).getChanged(), "the roll's commit wakes the watch sent again");
        assertEquals(0, await(again).getUpcomingCount());
    }

    @Test
    void aWatchBehindAChangeIsAnsweredAtOnce() throws Exception {
        watches.applied(roll(), 5);
        CompletableFuture<WatchAssignmentsResponse> w = watches.watch(1, 4, LONG_WAIT_MS);
        assertTrue(w.isDone(), "answered at once");
        assertTrue(await(w).getChanged());
        assertEquals(5, await(w).getMetadataVersion());
        assertFalse(watches.watch(1, 5, LONG_WAIT_MS).isDone(), "nothing newer than version 5: held");
    }

    @Test
    void aHeldWatchIsWokenByAChangeOnTheWatchThreadNotTheApplyingOne() throws Exception {
        watches.applied(roll(), 3);
        AtomicReference<String> completedOn = new AtomicReference<>();
        CompletableFuture<WatchAssignmentsResponse> w = watches.watch(1, 3, LONG_WAIT_MS);
        CompletableFuture<WatchAssignmentsResponse> seen = w.whenComplete((r, e) -> completedOn.set(Thread.currentThread().getName()));
        Thread applier = new Thread(() -> watches.applied(roll(), 4), "JRaft-FSMCaller-Disruptor-test");
        applier.start();
        applier.join();
        assertTrue(await(seen).getChanged());
        assertEquals("meta-watch", completedOn.get(), "never completed on the thread that applies commands (jraft's)");
        assertEquals(0, watches.waiting());
    }

    @Test
    void offsetCommitsWakeNobody() throws Exception {
        CompletableFuture<WatchAssignmentsResponse> w = watches.watch(1, 3, 200);
        watches.applied(commit(), 4);
        watches.applied(commit(), 5);
        WatchAssignmentsResponse r = await(w); // after its wait
        assertFalse(r.getChanged(), "offsets are not assignments");
        assertEquals(5, r.getMetadataVersion());
        assertFalse(watches.watch(1, 3, LONG_WAIT_MS).isDone(), "still nothing new for version 3");
    }

    @Test
    void oneWatchPerNodeANewerOneAnswersTheOlderNothingNew() throws Exception {
        CompletableFuture<WatchAssignmentsResponse> older = watches.watch(1, 3, LONG_WAIT_MS);
        CompletableFuture<WatchAssignmentsResponse> newer = watches.watch(1, 3, LONG_WAIT_MS);
        CompletableFuture<WatchAssignmentsResponse> other = watches.watch(2, 3, LONG_WAIT_MS);
        assertFalse(await(older).getChanged());
        assertEquals(2, watches.waiting());
        watches.applied(roll(), 4);
        assertTrue(await(newer).getChanged());
        assertTrue(await(other).getChanged());
    }

    @Test
    void aSnapshotLoadedWakesEveryWatchBelowIt() throws Exception {
        CompletableFuture<WatchAssignmentsResponse> w = watches.watch(1, 3, LONG_WAIT_MS);
        watches.restored(10);
        assertTrue(await(w).getChanged());
        assertFalse(watches.watch(1, 10, LONG_WAIT_MS).isDone());
    }

    @Test
    void aLeaderThatStepsDownAnswersItsWatchesNotLeader() {
        CompletableFuture<WatchAssignmentsResponse> w = watches.watch(1, 3, LONG_WAIT_MS);
        watches.leaderGone(() -> new RpcException(ErrorCode.NOT_LEADER.code(), "gone", "127.0.0.1:1"));
        ExecutionException e = assertThrows(ExecutionException.class, () -> w.get(10, TimeUnit.SECONDS));
        assertEquals(ErrorCode.NOT_LEADER.code(), ((RpcException) e.getCause()).code());
        assertEquals("127.0.0.1:1", ((RpcException) e.getCause()).leaderHint());
        assertEquals(0, watches.waiting());
    }
}
