package dev.segstore.node.server;

import dev.segstore.adapter.ErrorCode;
import dev.segstore.node.replica.Partition;
import dev.segstore.node.replica.ReplicaException;
import dev.segstore.protocol.meta.NodeAssignments;
import dev.segstore.protocol.meta.Segment;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * When a node takes a roll's next segment ahead of its heartbeat ({@link AssignmentReconciler#takeNext}, from the roll's
 * answer or a leader's hint), and when it must not: the answers stay the authority on what a node hosts.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class RollHintTest {
    @TempDir
    Path tmp;

    @Test
    void aNextSegmentIsTakenOnlyIfNewerThanTheAnswersAndARegistrationOlderThanItKeepsItsLog() throws Exception {
        try (ReconcilerFixture f = new ReconcilerFixture(tmp, 200, 0)) {
            NodeAssignments registration = NodeAssignments.newBuilder().setMetadataVersion(7).addShards(ReconcilerFixture.shard(1, 2))
                    .addSegments(ReconcilerFixture.openSegment(1, 0, 0, 5, 1, 2)).build();
            f.reconciler.applyRegistration(registration, f.clock.get());
            assertEquals(7, f.reconciler.appliedVersion());

            f.reconciler.takeNext(ReconcilerFixture.openSegment(1, 1, 100, 7, 1, 2), ReconcilerFixture.shard(1, 2));
            assertNull(f.hosted.get(new Hosted.Key(1, 1)), "created at the version applied: the answers' to open, not a hint's");

            Segment next = ReconcilerFixture.openSegment(1, 1, 100, 9, 1, 2);
            f.reconciler.takeNext(next, ReconcilerFixture.shard(1, 2));
            Hosted taken = f.hosted.get(new Hosted.Key(1, 1));
            assertEquals(Partition.Role.LEADER, taken.partition.role());
            assertEquals(100, taken.partition.log().logStartOffset());
            assertEquals(7, f.reconciler.appliedVersion(), "a hint reports no version as applied");

            // A registration answered before the roll committed (a node fenced and registering again): it does not
            // list the next segment, which is newer; the replica stays, and so does its log.
            NodeAssignments older = registration.toBuilder().setMetadataVersion(8).build();
            f.reconciler.applyRegistration(older, f.clock.get());
            assertTrue(f.hosted.containsKey(new Hosted.Key(1, 1)), "a replica newer than the answer is kept");
            assertTrue(f.dirs.holds("1-1"), "its log was deleted by a registration older than it");
            assertTrue(taken.partition.log().isOnline());
        }
    }

    /**
     * A replica taken from a hint holds no read lease (read.lease.ms counts from a heartbeat answer that confirmed it in
     * the ISR, and none did): sealed, it serves no read until an answer confirms it.
     */
    @Test
    void aNextSegmentTakenFromAHintServesNoSealedReadUntilAnAnswerConfirmsIt() throws Exception {
        try (ReconcilerFixture f = new ReconcilerFixture(tmp, 200, 0)) {
            f.reconciler.applyRegistration(NodeAssignments.newBuilder().setMetadataVersion(7).build(), f.clock.get());
            Segment next = ReconcilerFixture.openSegment(1, 1, 100, 9, 1, 2);
            f.reconciler.takeNext(next, ReconcilerFixture.shard(1, 2));
            Hosted taken = f.hosted.get(new Hosted.Key(1, 1));
            taken.partition.markSealed(0, 100); // as the leader's own roll would seal it (nothing written)
            ReplicaException e = assertThrows(ReplicaException.class, () -> taken.partition.readableHighWatermark(-1),
                    "a replica taken from a hint served a sealed read with a lease no answer gave it");
            assertEquals(ErrorCode.UNAVAILABLE, e.code());

            Segment sealed = next.toBuilder().setStatus(dev.segstore.protocol.meta.SegmentStatus.SEALED).setEndOffset(100).build();
            f.reconciler.apply(NodeAssignments.newBuilder().setMetadataVersion(10).addShards(ReconcilerFixture.shard(1, 2))
                    .addSegments(sealed).build(), f.clock.get());
            assertEquals(100, taken.partition.readableHighWatermark(-1), "an answer confirming it in the ISR gives the lease");
        }
    }

    @Test
    void aNextSegmentNoNewerThanAnAnswerTakenInPartIsLeftToTheAnswers() throws Exception {
        // Every reading of the clock is 60 ms on: an answer opens two new replicas (budget 100 ms), then leaves the rest.
        try (ReconcilerFixture f = new ReconcilerFixture(tmp, 100, 60)) {
            NodeAssignments.Builder a = NodeAssignments.newBuilder().setMetadataVersion(20);
            for (int i = 1; i <= 5; i++) {
                a.addShards(ReconcilerFixture.shard(i, 1)).addSegments(ReconcilerFixture.openSegment(i, 0, 0, i, 1));
            }
            f.reconciler.apply(a.build(), f.clock.get());
            assertTrue(f.hosted.size() < 5, "the answer is taken in part");
            assertEquals(-1, f.reconciler.appliedVersion());
            // Segment 1 of shard 9, created at 15, is not in the answer at 20: moved away or dropped since. A hint of
            // it (from a leader that has not heard) must not bring it back.
            f.reconciler.takeNext(ReconcilerFixture.openSegment(9, 1, 0, 15, 1), ReconcilerFixture.shard(9, 1));
            assertFalse(f.hosted.containsKey(new Hosted.Key(9, 1)), "a hint older than an answer taken in part was taken");
        }
    }
}
