package dev.segstore.node.server;

import dev.segstore.log.io.ForwardingLogFiles;
import dev.segstore.node.replica.Partition;
import dev.segstore.protocol.meta.NodeAssignments;
import dev.segstore.protocol.meta.Segment;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/**
 * Close ahead in the reconciler. A replica that becomes leader of a closing segment it did not close (its predecessor
 * may have handed the shard over at its log end, and acknowledged writes in the next segment from there) takes no write
 * on it from the moment it leads: the assignment's closing mark is applied before the role, not after (third review of
 * close ahead, finding 1). Also: the next segment's log made ahead on a follower, and the feature level asking waits for.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class CloseAheadTakeTest {
    @TempDir
    Path tmp;

    @Test
    void aNewLeaderOfAClosingSegmentTakesNoWriteEvenWhileItTakesTheLead() throws Exception {
        // Becoming leader records the epoch's start in the log's leader-epoch checkpoint, under the partition's lock;
        // a write queued on that lock is taken right after. What the partition would do at that moment is looked at there.
        AtomicReference<Partition> watched = new AtomicReference<>();
        List<Boolean> takesWritesAsItLeads = new CopyOnWriteArrayList<>();
        ForwardingLogFiles files = new ForwardingLogFiles() {
            @Override
            public void writeAtomically(Path file, byte[] content) throws IOException {
                super.writeAtomically(file, content);
                Partition p = watched.get();
                if (p != null && file.getFileName().toString().equals("leader-epoch-checkpoint") && p.role() == Partition.Role.LEADER) {
                    takesWritesAsItLeads.add(p.takesWrites());
                }
            }
        };
        try (ReconcilerFixture f = new ReconcilerFixture(tmp, 200, 0, files)) {
            // Node 1 follows node 2's open segment.
            Segment followed = ReconcilerFixture.openSegment(1, 0, 0, 5, 2, 1);
            f.reconciler.applyRegistration(NodeAssignments.newBuilder().setMetadataVersion(7).addShards(ReconcilerFixture.shard(1, 2))
                    .addSegments(followed).build(), f.clock.get());
            Hosted h = f.hosted.get(new Hosted.Key(1, 0));
            assertEquals(Partition.Role.FOLLOWER, h.partition.role());
            watched.set(h.partition);

            // Node 2 closed it and is gone: node 1 leads it now, in epoch 1, and learns of the close in the same answer.
            Segment led = followed.toBuilder().setLeader(1).setLeaderEpoch(1).setClosingVersion(6).build();
            f.reconciler.apply(NodeAssignments.newBuilder().setMetadataVersion(9).addShards(ReconcilerFixture.shard(1, 2))
                    .addSegments(led).build(), f.clock.get());

            assertEquals(Partition.Role.LEADER, h.partition.role());
            assertFalse(takesWritesAsItLeads.isEmpty(), "the epoch's start was recorded as it took the lead");
            assertFalse(takesWritesAsItLeads.contains(true),
                    "a new leader of a closing segment took writes before it learnt of the close (it may write past its predecessor's hand-over)");
            assertFalse(h.partition.takesWrites(), "nor after");
        }
    }

    /**
     * A follower of a closing segment makes the next segment's log with the closing segment's leader epoch in its
     * checkpoint, and keeps it when it takes that segment as a follower in that epoch: its first batch then writes no
     * checkpoint (a forced write on the high watermark's path at every roll).
     */
    @Test
    void aFollowerOfAClosingSegmentMakesTheNextLogWithItsLeadersEpochAndKeepsIt() throws Exception {
        try (ReconcilerFixture f = new ReconcilerFixture(tmp, 200, 0)) {
            Segment followed = ReconcilerFixture.openSegment(1, 0, 0, 5, 2, 1).toBuilder().setLeaderEpoch(3).build();
            f.reconciler.applyRegistration(NodeAssignments.newBuilder().setMetadataVersion(7).addShards(ReconcilerFixture.shard(1, 2))
                    .addSegments(followed).build(), f.clock.get());
            f.reconciler.apply(NodeAssignments.newBuilder().setMetadataVersion(9).addShards(ReconcilerFixture.shard(1, 2))
                    .addSegments(followed.toBuilder().setClosingVersion(8)).build(), f.clock.get());
            f.reconciler.prepareAhead(new Hosted.Key(1, 0)); // as the roll thread does once the assignment is applied

            Segment next = followed.toBuilder().setSequence(1).setStartOffset(0).setCreatedVersion(8).setClosingVersion(0).build();
            f.reconciler.takeAhead(next, ReconcilerFixture.shard(1, 2)); // the leader handed over: its fetch answer named it
            Hosted h = f.hosted.get(new Hosted.Key(1, 1));
            assertEquals(Partition.Role.FOLLOWER, h.partition.role());
            assertEquals(1, f.reconciler.logs().aheadWithEpochTaken(), "the log made while the segment closed, with the epoch it is followed in");
            assertEquals(List.of(new dev.segstore.log.epoch.EpochEntry(3, 0)), h.partition.log().epochHistory(),
                    "kept as the replica took its role");
            assertEquals(1, h.partition.log().epochCheckpointWrites(), "written once, while the segment before closed");
        }
    }

    /**
     * A leader asks to close its segment ahead only once the assignments say the cluster is at feature level 2, where
     * every meta node applies this build's close rules and every storage node follows the hand-over: a meta-service of
     * the build that introduced close ahead (which sends no level) took closes without either check.
     */
    @Test
    void aLeaderAsksToCloseOnlyOnceTheClusterIsAtFeatureLevel2() throws Exception {
        try (ReconcilerFixture f = new ReconcilerFixture(tmp, 200, 0)) {
            dev.segstore.protocol.meta.Shard shard = ReconcilerFixture.shard(1, 1).toBuilder()
                    .setSettings(ReconcilerFixture.shard(1, 1).getSettings().toBuilder().setSegmentBytes(64 * 1024)).build();
            Segment led = ReconcilerFixture.openSegment(1, 0, 0, 5, 1);
            f.reconciler.applyRegistration(NodeAssignments.newBuilder().setMetadataVersion(7).addShards(shard).addSegments(led)
                    .setFeatureLevel(dev.segstore.protocol.FeatureLevels.CLOSE_SEGMENT_COMMAND).build(), f.clock.get());
            Partition p = f.hosted.get(new Hosted.Key(1, 0)).partition;
            assertEquals(Partition.Role.LEADER, p.role());
            while (p.log().sizeInBytes() < 52 * 1024) { // past the close-ahead size, 48 KiB
                p.append(List.of(new dev.segstore.log.AppendRecord(null, List.of(), 1, List.of(), new byte[1024])), -1, -1)
                        .get(10, TimeUnit.SECONDS);
            }
            assertEquals(0, p.closeRequests(), "no close asked at feature level 1");

            f.reconciler.apply(NodeAssignments.newBuilder().setMetadataVersion(9).addShards(shard).addSegments(led)
                    .setFeatureLevel(dev.segstore.protocol.FeatureLevels.STORAGE_NODES_CHECKED).build(), f.clock.get());
            p.append(List.of(new dev.segstore.log.AppendRecord(null, List.of(), 1, List.of(), new byte[1024])), -1, -1);
            assertEquals(1, p.closeRequests(), "asked at level 2");
        }
    }
}
