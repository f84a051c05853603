package dev.segstore.node.server;

import dev.segstore.log.AppendRecord;
import dev.segstore.log.DirectoryConfig;
import dev.segstore.log.Durability;
import dev.segstore.log.LogConfig;
import dev.segstore.log.LogDirectory;
import dev.segstore.log.SegmentLog;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A log made ahead of its roll's commit ({@link AssignmentReconciler#prepare}) serves the committed segment only if it
 * is still empty, starts where the segment starts and holds no epoch but the first (0, written by a node told it
 * would lead); otherwise it is made again ({@link ReplicaLogs#fits}).
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class PreparedLogFitsTest {
    @TempDir
    Path dir;

    @Test
    void aLogMadeAheadFitsOnlyEmptyAtTheCommittedStartWithNoEpochButTheFirst() throws Exception {
        try (LogDirectory d = LogDirectory.open(dir, DirectoryConfig.DEFAULT)) {
            SegmentLog fresh = d.openLog("7-2", LogConfig.DEFAULT, 100);
            assertTrue(ReplicaLogs.fits(fresh, 100), "empty, made at the committed start");
            assertFalse(ReplicaLogs.fits(fresh, 120), "the roll committed another start");
            fresh.assignEpochAtEnd(0);
            assertTrue(ReplicaLogs.fits(fresh, 100), "the checkpoint of epoch 0 a leader-to-be wrote ahead");

            SegmentLog later = d.openLog("7-3", LogConfig.DEFAULT, 100);
            later.assignEpochAtEnd(1);
            assertFalse(ReplicaLogs.fits(later, 100), "an epoch after the first: not a log made ahead");

            SegmentLog written = d.openLog("7-4", LogConfig.DEFAULT, 100);
            written.appendAsLeader(List.of(new AppendRecord(null, List.of(), 1, List.of(), new byte[] {1})), 0, Durability.FSYNC)
                    .get(10, TimeUnit.SECONDS);
            assertFalse(ReplicaLogs.fits(written, 100), "holds a record");
        }
    }

    @Test
    void aLogMadeWhileTheSegmentBeforeClosedServesOnlyASegmentLedInItsEpochOrALaterOne() throws Exception {
        try (LogDirectory d = LogDirectory.open(dir, DirectoryConfig.DEFAULT)) {
            SegmentLog ahead = d.openLog("7-5", LogConfig.DEFAULT, 100);
            ahead.assignEpochAtEnd(5); // written by the closing segment's leader, in its epoch
            dev.segstore.protocol.meta.Segment next = dev.segstore.protocol.meta.Segment.newBuilder().setShardId(7).setSequence(5)
                    .setStartOffset(100).setLeaderEpoch(5).build();
            assertTrue(ReplicaLogs.serves(ahead, true, next), "led in the epoch written ahead");
            assertTrue(ReplicaLogs.serves(ahead, true, next.toBuilder().setLeaderEpoch(7).build()), "a later epoch replaces it");
            assertFalse(ReplicaLogs.serves(ahead, true, next.toBuilder().setLeaderEpoch(4).build()),
                    "an epoch later than the segment's: made again");
            assertFalse(ReplicaLogs.serves(ahead, true, next.toBuilder().setStartOffset(120).build()), "starts elsewhere (moved first)");
            assertFalse(ReplicaLogs.serves(ahead, false, next), "a log made ahead of a roll holds no epoch but 0");
        }
    }
}
