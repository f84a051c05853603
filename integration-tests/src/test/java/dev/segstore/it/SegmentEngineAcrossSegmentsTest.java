package dev.segstore.it;

import dev.segstore.node.server.InJvmCluster;

import dev.segstore.adapter.NewRecord;
import dev.segstore.adapter.StoredRecord;
import dev.segstore.adapter.ShardConfig;
import dev.segstore.client.SegmentStorageAdapter;
import dev.segstore.protocol.meta.DurabilityMode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The segment engine on a shard that rolled over several segments (64 KiB each, so a few hundred 1 KiB records
 * make four or more): every read, delete and look-up crosses segment boundaries and sealed segments.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class SegmentEngineAcrossSegmentsTest {
    private static InJvmCluster cluster;
    private static SegmentStorageAdapter adapter;

    @BeforeAll
    static void start() throws Exception {
        cluster = new InJvmCluster();
        adapter = new SegmentStorageAdapter(new SegmentStorageAdapter.Settings(cluster.metaAddresses, 30_000, 5_000, DurabilityMode.FSYNC));
    }

    @AfterAll
    static void stop() throws Exception {
        adapter.close();
        cluster.close();
    }

    private static <T> T await(CompletableFuture<T> f) throws Exception {
        return f.get(60, TimeUnit.SECONDS);
    }

    private static String payload(StoredRecord r) {
        return new String(r.payload(), StandardCharsets.UTF_8).substring(0, new String(r.payload(), StandardCharsets.UTF_8).indexOf('|'));
    }

    @Test
    void readsDeletesAndLookUpsCrossSegmentBoundaries() throws Exception {
        await(adapter.createShard(ShardConfig.of("rolled", SegmentStorageAdapter.STORAGE_TYPE).withSegmentBytes(64 * 1024)));
        String pad = "|" + "x".repeat(1000);
        int n = 300;
        for (int i = 0; i < n; i++) {
            NewRecord r = NewRecord.of(10_000 + i, ("r" + i + pad).getBytes(StandardCharsets.UTF_8))
                    .withKey("k" + (i % 10)).withTags(i % 3 == 0 ? "three" : "other");
            assertEquals(i, await(adapter.write("rolled", r)), "offsets stay dense across segments");
        }
        int segments = cluster.metas.get(0) == null ? 0 : segmentCount();
        assertTrue(segments >= 4, "the shard rolled: " + segments + " segments");

        List<String> all = new ArrayList<>();
        long offset = 0;
        while (true) {
            List<StoredRecord> page = await(adapter.readByOffset("rolled", offset, 37));
            if (page.isEmpty()) {
                break;
            }
            page.forEach(r -> all.add(payload(r)));
            offset = page.get(page.size() - 1).offset() + 1;
        }
        List<String> expected = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            expected.add("r" + i);
        }
        assertEquals(expected, all, "pages of 37 read everything once, in order, across segments");

        // Deletes in a sealed segment (offset 5) and by key (every k7, in all segments), then reads skip them.
        assertTrue(await(adapter.deleteByOffset("rolled", 5)));
        assertEquals(30L, await(adapter.deleteByKey("rolled", "k7")));
        List<StoredRecord> afterDeletes = await(adapter.readByOffset("rolled", 0, 10_000));
        assertEquals(n - 31, afterDeletes.size());
        assertTrue(afterDeletes.stream().noneMatch(r -> r.offset() == 5 || "k7".equals(r.key())));
        assertEquals(Optional.empty(), await(adapter.readByKey("rolled", "k7")));
        assertEquals(295L, await(adapter.readByKey("rolled", "k5")).orElseThrow().offset(), "the newest k5, in the last segment");

        List<StoredRecord> threes = await(adapter.readByTag("rolled", "three", 100, 10_000));
        List<Long> expectedThrees = new ArrayList<>();
        for (long o = 102; o < n; o += 3) {
            if (o % 10 != 7) {
                expectedThrees.add(o);
            }
        }
        assertEquals(expectedThrees, threes.stream().map(StoredRecord::offset).toList(), "tags from offset 100, across segments");
        assertEquals(OptionalLong.of(250), await(adapter.getOffsetByTimestamp("rolled", 10_250)));
        assertEquals(OptionalLong.of(5), await(adapter.getOffsetByTimestamp("rolled", 10_005)), "deleted offsets count");
        assertEquals(OptionalLong.empty(), await(adapter.getOffsetByTimestamp("rolled", 10_000 + n)));
    }

    @Test
    void retentionDropsOldSegmentsOnEveryReplicaAndReadsStartAtTheOldestKept() throws Exception {
        await(adapter.createShard(ShardConfig.of("aging", SegmentStorageAdapter.STORAGE_TYPE).withReplication(3, 2)
                .withSegmentBytes(64 * 1024).withRetentionMs(2_000)));
        String pad = "|" + "x".repeat(1000);
        int n = 300;
        for (int i = 0; i < n; i++) {
            await(adapter.write("aging", NewRecord.of(10_000 + i, ("r" + i + pad).getBytes(StandardCharsets.UTF_8))));
        }
        // Full segments are sealed as they fill, the last one once it is retention_ms old; each is dropped
        // retention_ms after its seal. Until all are gone, a read from 0 must start at the oldest record kept
        // and hold everything from there: a suffix of what was written.
        boolean[] sawPartial = {false};
        try (dev.segstore.client.MetaClient meta = new dev.segstore.client.MetaClient(cluster.metaAddresses, 2_000, 30_000)) {
            InJvmCluster.waitFor("every record written to expire", 60_000, () -> {
                List<StoredRecord> left = adapter.readByOffset("aging", 0, 10_000).join();
                for (int i = 0; i < left.size(); i++) {
                    assertEquals(n - left.size() + i, left.get(i).offset(), "a read from 0 returns a suffix, without gaps");
                    assertEquals("r" + left.get(i).offset(), payload(left.get(i)));
                }
                sawPartial[0] |= !left.isEmpty() && left.size() < n;
                return left.isEmpty();
            });
            assertTrue(sawPartial[0], "reads saw the oldest segments gone and the newer ones still there");
            dev.segstore.protocol.meta.Segment kept = meta.route("aging").join().getSegments(0);
            assertEquals(n, kept.getStartOffset(), "only the open segment after the last record is left: " + kept);
            assertTrue(kept.getSequence() >= 5, "the shard had rolled several times: " + kept);
            InJvmCluster.waitFor("every node to delete its replicas of the dropped segments", 30_000, () -> {
                for (int node = 1; node <= 3; node++) {
                    for (long seq = 0; seq < kept.getSequence(); seq++) {
                        if (cluster.nodes[node].partition(kept.getShardId(), seq) != null) {
                            return false;
                        }
                    }
                }
                return true;
            });
        }
        assertEquals(false, await(adapter.deleteByOffset("aging", 0)), "a record dropped by retention is not live");
        assertEquals(OptionalLong.empty(), await(adapter.getOffsetByTimestamp("aging", 0)), "nothing is kept");
        assertEquals(n, await(adapter.write("aging", NewRecord.of(20_000, ("r" + n + pad).getBytes(StandardCharsets.UTF_8)))),
                "offsets go on from the log end, never reused");
        List<StoredRecord> fresh = await(adapter.readByOffset("aging", 0, 10));
        assertEquals(List.of((long) n), fresh.stream().map(StoredRecord::offset).toList());
    }

    private static int segmentCount() throws Exception {
        try (dev.segstore.client.MetaClient meta = new dev.segstore.client.MetaClient(cluster.metaAddresses, 2_000, 30_000)) {
            return meta.route("rolled").get(30, TimeUnit.SECONDS).getSegmentsCount();
        }
    }
}
