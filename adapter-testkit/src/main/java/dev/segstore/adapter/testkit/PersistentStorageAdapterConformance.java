package dev.segstore.adapter.testkit;

import dev.segstore.adapter.ErrorCode;
import dev.segstore.adapter.StoredRecord;
import dev.segstore.adapter.ShardConfig;
import dev.segstore.adapter.ShardFilter;
import dev.segstore.adapter.ShardInfo;
import dev.segstore.adapter.StorageAdapter;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Optional;
import java.util.OptionalLong;

import static dev.segstore.adapter.testkit.Futures.assertFails;
import static dev.segstore.adapter.testkit.Futures.await;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The conformance suite plus what a persistent engine owes: everything survives a close and reopen.
 * Implement {@link #openAdapter()} (fresh storage for each test) and {@link #reopenAdapter()} (a new
 * adapter over the storage of the last one opened, which the suite has closed).
 */
public abstract class PersistentStorageAdapterConformance extends StorageAdapterConformance {

    /** A new adapter over the same storage as the adapter this test opened. */
    protected abstract StorageAdapter reopenAdapter() throws Exception;

    protected void reopen() throws Exception {
        adapter.close();
        adapter = reopenAdapter();
    }

    @Test
    void everythingSurvivesCloseAndReopen() throws Exception {
        ShardConfig cfg = config("orders").withReplication(5, 3).withSegmentBytes(1 << 20).withRetentionMs(3_600_000);
        await(adapter.createShard(cfg));
        createShard("other");
        await(adapter.batchWrite("orders", List.of(
                rec(300, "a").withKey("k1").withTags("t1"),
                rec(100, "b").withKey("k2").withTags("t1", "t2"),
                rec(500, "c").withKey("k1"),
                rec(400, "d").withTags("t2"))));
        await(adapter.deleteByOffset("orders", 2));
        await(adapter.commitOffset("g", "orders", 3));
        List<StoredRecord> before = await(adapter.readByOffset("orders", 0, 100));
        List<ShardInfo> shardsBefore = await(adapter.listShards(ShardFilter.all()));

        reopen();

        assertEquals(shardsBefore, await(adapter.listShards(ShardFilter.all())));
        assertEquals(cfg, await(adapter.listShards(ShardFilter.prefix("orders"))).get(0).config());
        assertEquals(before, await(adapter.readByOffset("orders", 0, 100)));
        assertEquals(List.of(0L, 1L, 3L), offsets(before));
        assertEquals("a", payload(await(adapter.readByKey("orders", "k1")).orElseThrow()), "deleted stays deleted");
        assertEquals(List.of(1L, 3L), offsets(await(adapter.readByTag("orders", "t2", 0, 10))));
        assertEquals(OptionalLong.of(2), await(adapter.getOffsetByTimestamp("orders", 301)));
        assertEquals(OptionalLong.empty(), await(adapter.getOffsetByTimestamp("orders", 501)));
        assertEquals(OptionalLong.of(3), await(adapter.getOffsetByGroup("g", "orders")));
        assertEquals(4L, await(adapter.write("orders", rec(600, "e"))), "offsets continue after the reopen");
        assertEquals(OptionalLong.of(4), await(adapter.getOffsetByTimestamp("orders", 501)));
    }

    @Test
    void aDeletedShardStaysDeletedAndItsNameCanBeReused() throws Exception {
        createShard("s");
        writeN("s", 3);
        await(adapter.commitOffset("g", "s", 2));
        await(adapter.deleteShard("s"));
        reopen();
        assertFails(ErrorCode.SHARD_NOT_FOUND, adapter.readByOffset("s", 0, 10));
        createShard("s");
        reopen();
        assertEquals(List.of(), await(adapter.readByOffset("s", 0, 10)));
        assertEquals(OptionalLong.empty(), await(adapter.getOffsetByGroup("g", "s")));
        assertEquals(0L, await(adapter.write("s", rec(1, "x"))));
    }

    @Test
    void writesInterleavedWithReopensKeepEveryRecord() throws Exception {
        createShard("s");
        int expected = 0;
        for (int round = 0; round < 3; round++) {
            List<Long> offsets = writeN("s", 5);
            assertEquals(expected, offsets.get(0));
            expected += 5;
            await(adapter.write("s", rec(2000, "keyed").withKey("k" + round)));
            expected += 1;
            reopen();
        }
        assertEquals(expected, await(adapter.readByOffset("s", 0, 100)).size());
        for (int round = 0; round < 3; round++) {
            Optional<StoredRecord> r = await(adapter.readByKey("s", "k" + round));
            assertEquals((round + 1) * 6L - 1, r.orElseThrow().offset());
        }
    }
}
