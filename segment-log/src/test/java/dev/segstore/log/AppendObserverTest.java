package dev.segstore.log;

import dev.segstore.log.format.BatchView;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static dev.segstore.log.LogFixtures.append;
import static dev.segstore.log.LogFixtures.await;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * {@link SegmentLog.AppendObserver}: told of every batch appended, as leader and as follower, with its final offsets and
 * the truncation count of the moment; a truncation moves the count; an observer that throws fails no append.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class AppendObserverTest {
    private static final LogConfig CONFIG = LogConfig.DEFAULT;

    @TempDir
    Path root;

    /** What an observer was told: base offset, next offset, records, truncation count. */
    private record Told(long baseOffset, long nextOffset, int records, long truncations) {
    }

    private static SegmentLog.AppendObserver recording(List<Told> told) {
        return (BatchView b, long truncations) -> told.add(new Told(b.baseOffset(), b.nextOffset(), b.recordCount(), truncations));
    }

    @Test
    void everyBatchAppendedAsLeaderOrFollowerIsToldWithItsOffsetsAndTheTruncationCount() throws Exception {
        try (LogDirectory directory = LogDirectory.open(root, DirectoryConfig.DEFAULT)) {
            SegmentLog leader = directory.openLog("l", CONFIG, 0);
            SegmentLog follower = directory.openLog("f", CONFIG, 0);
            List<Told> leaderTold = new ArrayList<>();
            List<Told> followerTold = new ArrayList<>();
            leader.observeAppends(recording(leaderTold));
            follower.observeAppends(recording(followerTold));
            append(leader, LogFixtures.records(3, 1, "a"), 0, Durability.FSYNC);
            append(leader, LogFixtures.records(2, 1, "b"), 0, Durability.FSYNC);
            assertEquals(List.of(new Told(0, 3, 3, 0), new Told(3, 5, 2, 0)), leaderTold);

            ByteBuffer bytes;
            try (FileSlice slice = leader.readSlice(0, 1 << 20, Long.MAX_VALUE)) {
                bytes = slice.read();
            }
            await(follower.appendAsFollower(bytes, Durability.FSYNC)); // both batches in one append
            assertEquals(List.of(new Told(0, 3, 3, 0), new Told(3, 5, 2, 0)), followerTold, "each fetched batch is told");

            assertEquals(3, await(follower.truncateTo(3)));
            assertEquals(2, follower.truncations(), "a truncation bumps the count before and after its cut");
            append(follower, LogFixtures.records(1, 1, "c"), 1, Durability.FSYNC);
            assertEquals(new Told(3, 4, 1, 2), followerTold.get(2), "a batch appended after the cut is told with the new count");
        }
    }

    @Test
    void aWritersOwnBatchIsToldWithTheOffsetsTheLogStampedIntoIt() throws Exception {
        try (LogDirectory directory = LogDirectory.open(root, DirectoryConfig.DEFAULT)) {
            SegmentLog log = directory.openLog("l", CONFIG, 0);
            append(log, LogFixtures.records(4, 1, "a"), 0, Durability.FSYNC);
            List<Told> told = new ArrayList<>();
            log.observeAppends(recording(told));
            ByteBuffer batch = dev.segstore.log.format.RecordBatch.encode(0, 0, -1, -1, LogFixtures.records(2, 1, "w"));
            await(log.appendEncodedAsLeader(batch, 0, -1, -1, Durability.FSYNC)); // the node's produce path
            assertEquals(List.of(new Told(4, 6, 2, 0)), told, "told once, at offsets 4 and 5 as stamped, not 0 as encoded");
        }
    }

    @Test
    void anObserverThatThrowsFailsNoAppend() throws Exception {
        try (LogDirectory directory = LogDirectory.open(root, DirectoryConfig.DEFAULT)) {
            SegmentLog log = directory.openLog("l", CONFIG, 0);
            log.observeAppends((b, t) -> {
                throw new IllegalStateException("observer bug");
            });
            AppendResult r = append(log, LogFixtures.records(2, 1, "a"), 0, Durability.FSYNC);
            assertEquals(AppendResult.Status.APPENDED, r.status());
            assertEquals(2, log.writtenEndOffset());
            assertEquals(2, LogFixtures.readAll(log).size());
        }
    }
}
