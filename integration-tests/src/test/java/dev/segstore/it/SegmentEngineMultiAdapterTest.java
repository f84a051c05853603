package dev.segstore.it;

import dev.segstore.adapter.NewRecord;
import dev.segstore.adapter.StoredRecord;
import dev.segstore.adapter.ShardConfig;
import dev.segstore.adapter.StorageAdapter;
import dev.segstore.adapter.StorageDriverManager;
import dev.segstore.adapter.spi.EngineSettings;
import dev.segstore.client.SegmentStorageAdapter;
import dev.segstore.node.server.InJvmCluster;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Two brokers on one cluster: adapters A and B, each from its own {@link StorageDriverManager} (so each has
 * its own route cache). B touches a shard once while it has one segment, so it caches that route; A then writes
 * enough to roll the shard several times (64 KiB segments, 1 KiB records). Everything B does next must see A's
 * acknowledged records in the newer segments (docs/adapter-contract.md, "Several adapters"). Each test uses its
 * own shard, so each depends on nothing another did to B's cache.
 */
@Timeout(value = 240, unit = TimeUnit.SECONDS)
class SegmentEngineMultiAdapterTest {
    private static final String PAD = "|" + "x".repeat(1000);
    private static final int N = 320;

    private static InJvmCluster cluster;
    private static StorageDriverManager brokerA;
    private static StorageDriverManager brokerB;
    private static StorageAdapter a;
    private static StorageAdapter b;

    @BeforeAll
    static void start() throws Exception {
        cluster = new InJvmCluster();
        brokerA = manager();
        brokerB = manager();
        a = brokerA.adapterFor("topic");
        b = brokerB.adapterFor("topic");
        assertTrue(a != b, "two brokers, two adapters");
    }

    private static StorageDriverManager manager() {
        return StorageDriverManager.builder(topic -> Optional.of(SegmentStorageAdapter.STORAGE_TYPE))
                .engineSettings(type -> new EngineSettings(type, Map.of("meta.addresses", String.join(",", cluster.metaAddresses))))
                .build();
    }

    @AfterAll
    static void stop() throws Exception {
        if (brokerA != null) {
            brokerA.close();
        }
        if (brokerB != null) {
            brokerB.close();
        }
        if (cluster != null) {
            cluster.close();
        }
    }

    private static <T> T await(CompletableFuture<T> f) throws Exception {
        return f.get(60, TimeUnit.SECONDS);
    }

    private static String payload(StoredRecord r) {
        String s = new String(r.payload(), StandardCharsets.UTF_8);
        return s.substring(0, s.indexOf('|'));
    }

    /** StoredRecord i: key "k" + i % 10, tag "three" on every third, timestamp 10,000 + i, payload "r" + i. */
    private static NewRecord record(int i) {
        return NewRecord.of(10_000 + i, ("r" + i + PAD).getBytes(StandardCharsets.UTF_8))
                .withKey("k" + (i % 10)).withTags(i % 3 == 0 ? "three" : "other");
    }

    /** Creates the shard through A, lets B cache its one-segment route, and writes N records through A. */
    private static void prepare(String shard, Runnable bTouches) throws Exception {
        await(a.createShard(ShardConfig.of(shard, SegmentStorageAdapter.STORAGE_TYPE).withSegmentBytes(64 * 1024)));
        bTouches.run();
        for (int i = 0; i < N; i += 10) {
            List<NewRecord> batch = new ArrayList<>();
            for (int j = i; j < Math.min(N, i + 10); j++) {
                batch.add(record(j));
            }
            assertEquals(i, (long) await(a.batchWrite(shard, batch)).get(0), "dense offsets");
        }
        try (dev.segstore.client.MetaClient meta = new dev.segstore.client.MetaClient(cluster.metaAddresses, 2_000, 30_000)) {
            int segments = meta.route(shard).get(30, TimeUnit.SECONDS).getSegmentsCount();
            assertTrue(segments >= 4, "the shard rolled several times: " + segments + " segments");
        }
    }

    private static void bReadsEmpty(String shard) {
        try {
            assertEquals(List.of(), await(b.readByOffset(shard, 0, 10)), "nothing written yet");
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    @Test
    void aConsumerOnAnotherAdapterFollowsTheShardAcrossRolls() throws Exception {
        prepare("follow", () -> bReadsEmpty("follow"));
        List<String> seen = new ArrayList<>();
        long offset = 0;
        while (true) {
            List<StoredRecord> page = await(b.readByOffset("follow", offset, 37));
            if (page.isEmpty()) {
                break;
            }
            page.forEach(r -> seen.add(payload(r)));
            offset = page.get(page.size() - 1).offset() + 1;
        }
        assertEquals(N, seen.size(), "B read every record A wrote, following each answer to the end; stopped at offset " + offset);
        for (int i = 0; i < N; i++) {
            assertEquals("r" + i, seen.get(i));
        }
    }

    @Test
    void readByKeyOnAnotherAdapterReturnsTheNewestValueWrittenAfterARoll() throws Exception {
        prepare("newest", () -> {
            try {
                assertEquals(Optional.empty(), await(b.readByKey("newest", "k3")));
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        });
        StoredRecord newest = await(b.readByKey("newest", "k3")).orElseThrow(() -> new AssertionError("B found no k3"));
        assertEquals(N - 7, newest.offset(), "the newest k3, in the last segment (" + payload(newest) + ")");
    }

    @Test
    void readByTagOnAnotherAdapterSeesNewerSegments() throws Exception {
        prepare("tagged", () -> {
            try {
                assertEquals(List.of(), await(b.readByTag("tagged", "three", 0, 10)));
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        });
        List<Long> expected = new ArrayList<>();
        for (long o = 0; o < N; o += 3) {
            expected.add(o);
        }
        assertEquals(expected, await(b.readByTag("tagged", "three", 0, 10_000)).stream().map(StoredRecord::offset).toList(),
                "every tagged record, in every segment");
    }

    @Test
    void getOffsetByTimestampOnAnotherAdapterSeesNewerSegments() throws Exception {
        prepare("timed", () -> {
            try {
                assertEquals(OptionalLong.empty(), await(b.getOffsetByTimestamp("timed", 10_000)));
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        });
        assertEquals(OptionalLong.of(N - 10), await(b.getOffsetByTimestamp("timed", 10_000 + N - 10)),
                "a time in the last segment");
        assertEquals(OptionalLong.empty(), await(b.getOffsetByTimestamp("timed", 10_000 + N)), "past the end");
    }

    @Test
    void deleteByKeyOnAnotherAdapterDeletesCopiesInNewerSegments() throws Exception {
        prepare("bykey", () -> {
            try {
                assertEquals(0L, await(b.deleteByKey("bykey", "nothing")));
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        });
        assertEquals((long) N / 10, await(b.deleteByKey("bykey", "k4")), "every k4, in every segment");
        assertEquals(Optional.empty(), await(a.readByKey("bykey", "k4")), "A sees none left");
        assertTrue(await(a.readByOffset("bykey", 0, 10_000)).stream().noneMatch(r -> "k4".equals(r.key())));
    }

    @Test
    void deleteByOffsetOnAnotherAdapterDeletesARecordInANewerSegment() throws Exception {
        prepare("byoffset", () -> bReadsEmpty("byoffset"));
        long target = N - 5;
        assertTrue(await(b.deleteByOffset("byoffset", target)), "B deleted offset " + target + ", in the last segment");
        assertTrue(await(a.readByOffset("byoffset", target, 1)).stream().noneMatch(r -> r.offset() == target),
                "A does not read it any more");
    }

    /**
     * The shard is deleted and created again by A while B holds a route to the deleted one (issue 15, second
     * headline failure): B's next write is made after both answers, so it belongs to the new shard, at offset 0,
     * and a read of the new shard finds it. A write acknowledged into the deleted shard's replicas would be lost.
     */
    @Test
    void aWriteAfterTheShardIsDeletedAndCreatedAgainLandsInTheNewShard() throws Exception {
        String shard = "recreated";
        await(a.createShard(ShardConfig.of(shard, SegmentStorageAdapter.STORAGE_TYPE)));
        assertEquals(0L, (long) await(b.write(shard, NewRecord.of(1, "old".getBytes(StandardCharsets.UTF_8)))), "B caches the route");
        await(a.deleteShard(shard));
        await(a.createShard(ShardConfig.of(shard, SegmentStorageAdapter.STORAGE_TYPE)));
        long offset = await(b.write(shard, NewRecord.of(2, "new".getBytes(StandardCharsets.UTF_8))));
        List<StoredRecord> read = await(a.readByOffset(shard, 0, 10));
        assertEquals(List.of("new"), read.stream().map(r -> new String(r.payload(), StandardCharsets.UTF_8)).toList(),
                "the new shard holds B's write (acknowledged at offset " + offset + ")");
        assertEquals(0L, offset, "the first record of the new shard");
    }

    /**
     * A consumer on B commits an offset it read from the shard before A deleted and re-created it: the commit
     * names the old shard (by the id of B's route) and must not become the new shard's group offset.
     */
    @Test
    void aGroupOffsetCommittedForTheDeletedShardDoesNotLandInTheNewOne() throws Exception {
        String shard = "regrouped";
        await(a.createShard(ShardConfig.of(shard, SegmentStorageAdapter.STORAGE_TYPE)));
        await(b.write(shard, NewRecord.of(1, "old".getBytes(StandardCharsets.UTF_8))));
        assertEquals(1, await(b.readByOffset(shard, 0, 10)).size(), "B reads the old shard, caching its route");
        await(a.deleteShard(shard));
        await(a.createShard(ShardConfig.of(shard, SegmentStorageAdapter.STORAGE_TYPE)));
        try {
            await(b.commitOffset("readers", shard, 1));
        } catch (java.util.concurrent.ExecutionException e) {
            assertTrue(e.getCause() instanceof dev.segstore.adapter.StorageException se
                    && se.code() == dev.segstore.adapter.ErrorCode.SHARD_NOT_FOUND, "refused as a commit for a deleted shard: " + e.getCause());
        }
        assertEquals(OptionalLong.empty(), await(a.getOffsetByGroup("readers", shard)), "the new shard has no offset for the group");
        // The broker retries the same commit: still for the deleted shard, so refused again (before, the retry
        // went out without an id, unchecked, and landed in the new shard).
        java.util.concurrent.ExecutionException again = org.junit.jupiter.api.Assertions.assertThrows(
                java.util.concurrent.ExecutionException.class, () -> await(b.commitOffset("readers", shard, 1)));
        assertTrue(again.getCause() instanceof dev.segstore.adapter.StorageException se
                && se.code() == dev.segstore.adapter.ErrorCode.SHARD_NOT_FOUND, String.valueOf(again.getCause()));
        assertEquals(OptionalLong.empty(), await(a.getOffsetByGroup("readers", shard)));
        assertEquals(0, await(b.readByOffset(shard, 0, 10)).size(), "B reads the new shard, learning its route");
        await(b.commitOffset("readers", shard, 0)); // now its commits go to the new shard
        assertEquals(OptionalLong.of(0), await(a.getOffsetByGroup("readers", shard)));
    }
}
