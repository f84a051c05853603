package dev.segstore.adapter.testkit;

import dev.segstore.adapter.ErrorCode;
import dev.segstore.adapter.Header;
import dev.segstore.adapter.Limits;
import dev.segstore.adapter.NewRecord;
import dev.segstore.adapter.StoredRecord;
import dev.segstore.adapter.ShardConfig;
import dev.segstore.adapter.ShardFilter;
import dev.segstore.adapter.ShardInfo;
import dev.segstore.adapter.StorageAdapter;
import dev.segstore.adapter.StorageException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

import static dev.segstore.adapter.testkit.Futures.assertFails;
import static dev.segstore.adapter.testkit.Futures.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The adapter contract as tests. Every engine runs it: subclass, implement {@link #openAdapter()} to give a
 * fresh, empty adapter, and the whole contract of docs/adapter-contract.md runs against it. Engines that
 * keep data across restarts extend {@link PersistentStorageAdapterConformance} instead.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
public abstract class StorageAdapterConformance {
    protected StorageAdapter adapter;

    /** A new adapter over empty storage. */
    protected abstract StorageAdapter openAdapter() throws Exception;

    /** The {@code storage_type} written into shard configs by this suite. */
    protected String storageType() {
        return "memory";
    }

    @BeforeEach
    void openForTest() throws Exception {
        adapter = openAdapter();
    }

    @AfterEach
    void closeAfterTest() {
        if (adapter != null) {
            adapter.close();
        }
    }

    // ---------------------------------------------------------------- helpers

    protected ShardConfig config(String name) {
        return ShardConfig.of(name, storageType());
    }

    protected String createShard(String name) {
        await(adapter.createShard(config(name)));
        return name;
    }

    protected static NewRecord rec(long timestamp, String payload) {
        return NewRecord.of(timestamp, payload.getBytes(StandardCharsets.UTF_8));
    }

    protected static String payload(StoredRecord r) {
        return new String(r.payload(), StandardCharsets.UTF_8);
    }

    protected static List<String> payloads(List<StoredRecord> records) {
        return records.stream().map(StorageAdapterConformance::payload).toList();
    }

    protected static List<Long> offsets(List<StoredRecord> records) {
        return records.stream().map(StoredRecord::offset).toList();
    }

    /** Writes "p0".."p{n-1}" with timestamps 1000, 1001, ...; returns the offsets. */
    protected List<Long> writeN(String shard, int n) {
        List<NewRecord> batch = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            batch.add(rec(1000 + i, "p" + i));
        }
        return await(adapter.batchWrite(shard, batch));
    }

    // ---------------------------------------------------------------- shards

    @Test
    void createdShardIsListedEmpty() {
        ShardConfig cfg = config("orders").withReplication(3, 2).withSegmentBytes(1 << 20).withRetentionMs(60_000);
        await(adapter.createShard(cfg));
        List<ShardInfo> shards = await(adapter.listShards(ShardFilter.all()));
        assertEquals(1, shards.size());
        assertEquals(cfg, shards.get(0).config());
        assertEquals(0, shards.get(0).logEndOffset());
        assertTrue(shards.get(0).createdAtMs() > 0);
    }

    @Test
    void creatingAnExistingShardFails() {
        createShard("s");
        writeN("s", 3);
        assertFails(ErrorCode.SHARD_EXISTS, adapter.createShard(config("s")));
        assertEquals(3, await(adapter.readByOffset("s", 0, 10)).size(), "the existing shard is untouched");
    }

    @Test
    void deletingAMissingShardFails() {
        assertFails(ErrorCode.SHARD_NOT_FOUND, adapter.deleteShard("nope"));
    }

    @Test
    void listShardsFiltersByPrefixAndSortsByName() {
        for (String n : List.of("b.2", "a.1", "b.1", "c", "b")) {
            createShard(n);
        }
        assertEquals(List.of("a.1", "b", "b.1", "b.2", "c"),
                await(adapter.listShards(ShardFilter.all())).stream().map(ShardInfo::name).toList());
        assertEquals(List.of("b.1", "b.2"),
                await(adapter.listShards(ShardFilter.prefix("b."))).stream().map(ShardInfo::name).toList());
        assertEquals(List.of(), await(adapter.listShards(ShardFilter.prefix("x"))));
    }

    @Test
    void listShardsReportsLogEndOffset() {
        createShard("s");
        writeN("s", 5);
        await(adapter.deleteByOffset("s", 4));
        assertEquals(5, await(adapter.listShards(ShardFilter.all())).get(0).logEndOffset(),
                "deletes do not move the log end offset");
    }

    @Test
    void deletingAShardRemovesRecordsIndexesAndGroupOffsets() {
        createShard("s");
        await(adapter.write("s", rec(5, "a").withKey("k").withTags("t")));
        await(adapter.commitOffset("g", "s", 1));
        await(adapter.deleteShard("s"));

        assertEquals(List.of(), await(adapter.listShards(ShardFilter.all())));
        assertFails(ErrorCode.SHARD_NOT_FOUND, adapter.readByOffset("s", 0, 10));
        assertFails(ErrorCode.SHARD_NOT_FOUND, adapter.getOffsetByGroup("g", "s"));

        // A new shard of the same name starts from nothing.
        createShard("s");
        assertEquals(List.of(), await(adapter.readByOffset("s", 0, 10)));
        assertEquals(Optional.empty(), await(adapter.readByKey("s", "k")));
        assertEquals(List.of(), await(adapter.readByTag("s", "t", 0, 10)));
        assertEquals(OptionalLong.empty(), await(adapter.getOffsetByTimestamp("s", 0)));
        assertEquals(OptionalLong.empty(), await(adapter.getOffsetByGroup("g", "s")));
        assertEquals(0L, await(adapter.write("s", rec(1, "b"))), "offsets restart at 0");
    }

    @Test
    void deletingOneShardLeavesOthersAlone() {
        createShard("a");
        createShard("b");
        writeN("a", 2);
        writeN("b", 3);
        await(adapter.commitOffset("g", "b", 2));
        await(adapter.deleteShard("a"));
        assertEquals(3, await(adapter.readByOffset("b", 0, 10)).size());
        assertEquals(OptionalLong.of(2), await(adapter.getOffsetByGroup("g", "b")));
    }

    @Test
    void everyOperationOnAMissingShardFailsWithShardNotFound() {
        String s = "missing";
        List<CompletableFuture<?>> calls = List.of(
                adapter.write(s, rec(1, "x")),
                adapter.batchWrite(s, List.of(rec(1, "x"))),
                adapter.readByOffset(s, 0, 1),
                adapter.readByTag(s, "t", 0, 1),
                adapter.readByKey(s, "k"),
                adapter.deleteByOffset(s, 0),
                adapter.deleteByKey(s, "k"),
                adapter.getOffsetByTimestamp(s, 0),
                adapter.getOffsetByGroup("g", s),
                adapter.commitOffset("g", s, 0),
                adapter.deleteShard(s));
        for (CompletableFuture<?> call : calls) {
            StorageException e = assertFails(ErrorCode.SHARD_NOT_FOUND, call);
            assertTrue(e.getMessage().contains(s), "message names the shard: " + e.getMessage());
            assertFalse(e.retriable());
        }
    }

    // ---------------------------------------------------------------- write and read

    @Test
    void offsetsAreDenseFromZero() {
        createShard("s");
        assertEquals(0L, await(adapter.write("s", rec(1, "a"))));
        assertEquals(1L, await(adapter.write("s", rec(1, "b"))));
        assertEquals(List.of(2L, 3L, 4L), await(adapter.batchWrite("s", List.of(rec(1, "c"), rec(1, "d"), rec(1, "e")))));
        assertEquals(5L, await(adapter.write("s", rec(1, "f"))));
        assertEquals(List.of("a", "b", "c", "d", "e", "f"), payloads(await(adapter.readByOffset("s", 0, 100))));
    }

    @Test
    void shardsHaveIndependentOffsets() {
        createShard("a");
        createShard("b");
        writeN("a", 3);
        assertEquals(0L, await(adapter.write("b", rec(1, "x"))));
    }

    @Test
    void aRecordReadsBackWithEveryField() {
        createShard("s");
        byte[] allBytes = new byte[256];
        for (int i = 0; i < 256; i++) {
            allBytes[i] = (byte) i;
        }
        NewRecord written = new NewRecord("key-é-😀", Set.of("red", "blue"), 1_700_000_000_123L,
                List.of(new Header("h1", "v1"), new Header("h1", "v2"), new Header("empty", "")), allBytes);
        long offset = await(adapter.write("s", written));
        StoredRecord read = await(adapter.readByOffset("s", offset, 1)).get(0);
        assertEquals(StoredRecord.of(offset, written), read);
        assertArrayEquals(allBytes, read.payload());
        assertEquals(List.of(new Header("h1", "v1"), new Header("h1", "v2"), new Header("empty", "")),
                read.headers(), "header order and duplicates are kept");
    }

    @Test
    void anEmptyPayloadAndNoKeyAreFine() {
        createShard("s");
        long offset = await(adapter.write("s", NewRecord.of(0, new byte[0])));
        StoredRecord read = await(adapter.readByOffset("s", offset, 1)).get(0);
        assertEquals(0, read.payload().length);
        assertEquals(null, read.key());
        assertEquals(Set.of(), read.tags());
    }

    @Test
    void aReadPastTheEndIsEmpty() {
        createShard("s");
        assertEquals(List.of(), await(adapter.readByOffset("s", 0, 10)), "empty shard");
        writeN("s", 3);
        assertEquals(List.of(), await(adapter.readByOffset("s", 3, 10)), "at the end");
        assertEquals(List.of(), await(adapter.readByOffset("s", 1_000_000, 10)), "far past the end");
        assertEquals(List.of(), await(adapter.readByTag("s", "t", 1_000_000, 10)));
    }

    @Test
    void readsHonourOffsetAndLimit() {
        createShard("s");
        writeN("s", 10);
        assertEquals(List.of(3L, 4L, 5L), offsets(await(adapter.readByOffset("s", 3, 3))));
        assertEquals(List.of(8L, 9L), offsets(await(adapter.readByOffset("s", 8, 5))));
        assertEquals(List.of(0L), offsets(await(adapter.readByOffset("s", 0, 1))));
    }

    @Test
    void theLargestLimitIsAccepted() {
        createShard("s");
        writeN("s", 3);
        assertEquals(3, await(adapter.readByOffset("s", 0, Limits.MAX_READ_LIMIT)).size());
    }

    @Test
    void aRecordAtTheSizeLimitIsAccepted() {
        createShard("s");
        byte[] big = new byte[Limits.MAX_RECORD_BYTES - 1];
        long offset = await(adapter.write("s", NewRecord.of(1, big).withKey("k")));
        assertEquals(big.length, await(adapter.readByOffset("s", offset, 1)).get(0).payload().length);
    }

    // ---------------------------------------------------------------- deletes

    @Test
    void aDeletedRecordIsNeverReturnedAgain() {
        createShard("s");
        await(adapter.write("s", rec(10, "a").withKey("k").withTags("t")));
        await(adapter.write("s", rec(20, "b").withKey("k").withTags("t")));
        assertTrue(await(adapter.deleteByOffset("s", 1)));

        assertEquals(List.of("a"), payloads(await(adapter.readByOffset("s", 0, 10))));
        assertEquals(List.of(), await(adapter.readByOffset("s", 1, 10)));
        assertEquals(List.of("a"), payloads(await(adapter.readByTag("s", "t", 0, 10))));
        assertEquals("a", payload(await(adapter.readByKey("s", "k")).orElseThrow()),
                "the newest live record with the key");
    }

    @Test
    void deletingTwiceSaysSoAndOffsetsAreNotReused() {
        createShard("s");
        writeN("s", 3);
        assertTrue(await(adapter.deleteByOffset("s", 2)));
        assertFalse(await(adapter.deleteByOffset("s", 2)));
        assertEquals(3L, await(adapter.write("s", rec(1, "next"))), "a deleted offset is a hole, not reused");
    }

    @Test
    void deletingAnOffsetNeverWrittenFails() {
        createShard("s");
        assertFails(ErrorCode.OFFSET_OUT_OF_RANGE, adapter.deleteByOffset("s", 0));
        writeN("s", 2);
        StorageException e = assertFails(ErrorCode.OFFSET_OUT_OF_RANGE, adapter.deleteByOffset("s", 2));
        assertTrue(e.getMessage().contains("2"), e.getMessage());
    }

    @Test
    void readsSkipHolesAndStillFillTheLimit() {
        createShard("s");
        writeN("s", 10);
        for (long o : List.of(1L, 2L, 5L)) {
            await(adapter.deleteByOffset("s", o));
        }
        assertEquals(List.of(0L, 3L, 4L, 6L), offsets(await(adapter.readByOffset("s", 0, 4))));
        assertEquals(List.of(3L, 4L), offsets(await(adapter.readByOffset("s", 1, 2))));
    }

    @Test
    void deleteByKeyDeletesEveryLiveRecordWithTheKey() {
        createShard("s");
        await(adapter.write("s", rec(1, "a1").withKey("a")));
        await(adapter.write("s", rec(1, "b1").withKey("b")));
        await(adapter.write("s", rec(1, "a2").withKey("a").withTags("t")));
        await(adapter.write("s", rec(1, "a3").withKey("a")));
        await(adapter.deleteByOffset("s", 3));

        assertEquals(2L, await(adapter.deleteByKey("s", "a")));
        assertEquals(Optional.empty(), await(adapter.readByKey("s", "a")));
        assertEquals(List.of("b1"), payloads(await(adapter.readByOffset("s", 0, 10))));
        assertEquals(List.of(), await(adapter.readByTag("s", "t", 0, 10)));
        assertEquals(0L, await(adapter.deleteByKey("s", "a")), "nothing left to delete");
        assertEquals(0L, await(adapter.deleteByKey("s", "never")));
        assertEquals("b1", payload(await(adapter.readByKey("s", "b")).orElseThrow()));
    }

    // ---------------------------------------------------------------- keys and tags

    @Test
    void readByKeyReturnsTheNewestLiveRecord() {
        createShard("s");
        await(adapter.write("s", rec(1, "v1").withKey("k")));
        await(adapter.write("s", rec(1, "other").withKey("k2")));
        await(adapter.write("s", rec(1, "v2").withKey("k")));
        assertEquals("v2", payload(await(adapter.readByKey("s", "k")).orElseThrow()));
        assertEquals(2L, await(adapter.readByKey("s", "k")).orElseThrow().offset());
        await(adapter.deleteByOffset("s", 2));
        assertEquals("v1", payload(await(adapter.readByKey("s", "k")).orElseThrow()));
        assertEquals(Optional.empty(), await(adapter.readByKey("s", "unknown")));
    }

    @Test
    void keysThatArePrefixesOfEachOtherDoNotMix() {
        createShard("s");
        await(adapter.write("s", rec(1, "ab").withKey("ab")));
        await(adapter.write("s", rec(1, "a").withKey("a")));
        await(adapter.write("s", rec(1, "abc").withKey("abc")));
        assertEquals("a", payload(await(adapter.readByKey("s", "a")).orElseThrow()));
        assertEquals("ab", payload(await(adapter.readByKey("s", "ab")).orElseThrow()));
        assertEquals(1L, await(adapter.deleteByKey("s", "a")));
        assertEquals("abc", payload(await(adapter.readByKey("s", "abc")).orElseThrow()));
    }

    @Test
    void readByTagReturnsTaggedRecordsFromTheOffsetInOrder() {
        createShard("s");
        await(adapter.write("s", rec(1, "0").withTags("x")));
        await(adapter.write("s", rec(1, "1").withTags("y")));
        await(adapter.write("s", rec(1, "2").withTags("x", "y")));
        await(adapter.write("s", rec(1, "3")));
        await(adapter.write("s", rec(1, "4").withTags("x")));
        await(adapter.write("s", rec(1, "5").withTags("xx")));
        assertEquals(List.of(0L, 2L, 4L), offsets(await(adapter.readByTag("s", "x", 0, 10))));
        assertEquals(List.of(2L, 4L), offsets(await(adapter.readByTag("s", "x", 1, 10))));
        assertEquals(List.of(2L), offsets(await(adapter.readByTag("s", "x", 1, 1))));
        assertEquals(List.of(1L, 2L), offsets(await(adapter.readByTag("s", "y", 0, 10))));
        assertEquals(List.of(5L), offsets(await(adapter.readByTag("s", "xx", 0, 10))));
        assertEquals(List.of(), await(adapter.readByTag("s", "z", 0, 10)));
        assertEquals(Set.of("x", "y"), await(adapter.readByTag("s", "y", 2, 1)).get(0).tags());
    }

    // ---------------------------------------------------------------- timestamps

    @Test
    void offsetByTimestampIsTheFirstOffsetAtOrAfterTheTime() {
        createShard("s");
        assertEquals(OptionalLong.empty(), await(adapter.getOffsetByTimestamp("s", 0)), "empty shard");
        await(adapter.batchWrite("s", List.of(rec(100, "a"), rec(200, "b"), rec(200, "c"), rec(300, "d"))));
        assertEquals(OptionalLong.of(0), await(adapter.getOffsetByTimestamp("s", 0)));
        assertEquals(OptionalLong.of(0), await(adapter.getOffsetByTimestamp("s", 100)));
        assertEquals(OptionalLong.of(1), await(adapter.getOffsetByTimestamp("s", 101)));
        assertEquals(OptionalLong.of(1), await(adapter.getOffsetByTimestamp("s", 200)));
        assertEquals(OptionalLong.of(3), await(adapter.getOffsetByTimestamp("s", 250)));
        assertEquals(OptionalLong.of(3), await(adapter.getOffsetByTimestamp("s", 300)));
        assertEquals(OptionalLong.empty(), await(adapter.getOffsetByTimestamp("s", 301)), "past the end");
    }

    @Test
    void offsetByTimestampHandlesTimestampsOutOfOrder() {
        createShard("s");
        await(adapter.batchWrite("s", List.of(rec(50, "a"), rec(10, "b"), rec(80, "c"), rec(60, "d"), rec(90, "e"))));
        assertEquals(OptionalLong.of(0), await(adapter.getOffsetByTimestamp("s", 10)));
        assertEquals(OptionalLong.of(0), await(adapter.getOffsetByTimestamp("s", 50)));
        assertEquals(OptionalLong.of(2), await(adapter.getOffsetByTimestamp("s", 55)), "60 comes later than 80");
        assertEquals(OptionalLong.of(2), await(adapter.getOffsetByTimestamp("s", 80)));
        assertEquals(OptionalLong.of(4), await(adapter.getOffsetByTimestamp("s", 81)));
    }

    @Test
    void offsetByTimestampCountsDeletedOffsets() {
        createShard("s");
        writeN("s", 3); // timestamps 1000, 1001, 1002
        await(adapter.deleteByOffset("s", 1));
        assertEquals(OptionalLong.of(1), await(adapter.getOffsetByTimestamp("s", 1001)));
        assertEquals(List.of(2L), offsets(await(adapter.readByOffset("s", 1, 10))), "and a read from there skips it");
    }

    // ---------------------------------------------------------------- consumer groups

    @Test
    void aGroupWithNoCommitHasNoOffset() {
        createShard("s");
        assertEquals(OptionalLong.empty(), await(adapter.getOffsetByGroup("g", "s")));
    }

    @Test
    void theLastCommitWinsAndMayMoveBack() {
        createShard("s");
        writeN("s", 10);
        await(adapter.commitOffset("g", "s", 7));
        assertEquals(OptionalLong.of(7), await(adapter.getOffsetByGroup("g", "s")));
        await(adapter.commitOffset("g", "s", 9));
        assertEquals(OptionalLong.of(9), await(adapter.getOffsetByGroup("g", "s")));
        await(adapter.commitOffset("g", "s", 2));
        assertEquals(OptionalLong.of(2), await(adapter.getOffsetByGroup("g", "s")));
    }

    @Test
    void groupsAndShardsAreIndependent() {
        createShard("s1");
        createShard("s2");
        await(adapter.commitOffset("g1", "s1", 1));
        await(adapter.commitOffset("g2", "s1", 2));
        await(adapter.commitOffset("g1", "s2", 3));
        assertEquals(OptionalLong.of(1), await(adapter.getOffsetByGroup("g1", "s1")));
        assertEquals(OptionalLong.of(2), await(adapter.getOffsetByGroup("g2", "s1")));
        assertEquals(OptionalLong.of(3), await(adapter.getOffsetByGroup("g1", "s2")));
        assertEquals(OptionalLong.empty(), await(adapter.getOffsetByGroup("g2", "s2")));
        assertEquals(OptionalLong.empty(), await(adapter.getOffsetByGroup("g", "s1")), "g is not a prefix match");
    }

    // ---------------------------------------------------------------- validation

    @ParameterizedTest
    @ValueSource(strings = {"", "..", ".", ".hidden", "a..b", "a/b", "../etc", "a\\b", "a b", "tab\t", "é", "a:b",
            "-lead", "_lead", "nul\0"})
    void invalidShardNamesAreRejectedEverywhere(String bad) {
        List<CompletableFuture<?>> calls = List.of(
                adapter.createShard(config(bad)),
                adapter.deleteShard(bad),
                adapter.write(bad, rec(1, "x")),
                adapter.batchWrite(bad, List.of(rec(1, "x"))),
                adapter.readByOffset(bad, 0, 1),
                adapter.readByTag(bad, "t", 0, 1),
                adapter.readByKey(bad, "k"),
                adapter.deleteByOffset(bad, 0),
                adapter.deleteByKey(bad, "k"),
                adapter.getOffsetByTimestamp(bad, 0),
                adapter.getOffsetByGroup("g", bad),
                adapter.commitOffset("g", bad, 0));
        for (CompletableFuture<?> call : calls) {
            StorageException e = assertFails(ErrorCode.INVALID_ARGUMENT, call);
            assertTrue(e.getMessage().contains("shard"), "names the argument: " + e.getMessage());
        }
        assertEquals(List.of(), await(adapter.listShards(ShardFilter.all())), "nothing was created");
    }

    @Test
    void nullAndOverlongNamesAreRejected() {
        assertFails(ErrorCode.INVALID_ARGUMENT, adapter.readByOffset(null, 0, 1));
        assertFails(ErrorCode.INVALID_ARGUMENT, adapter.createShard(null));
        String longest = "a".repeat(Limits.MAX_NAME_LENGTH);
        await(adapter.createShard(config(longest)));
        assertFails(ErrorCode.INVALID_ARGUMENT, adapter.createShard(config(longest + "a")));
        assertFails(ErrorCode.INVALID_ARGUMENT, adapter.getOffsetByGroup(null, longest));
        assertFails(ErrorCode.INVALID_ARGUMENT, adapter.commitOffset("a/b", longest, 0));
        assertFails(ErrorCode.INVALID_ARGUMENT, adapter.commitOffset(longest + "a", longest, 0));
    }

    @Test
    void invalidOffsetsLimitsAndTimestampsAreRejected() {
        createShard("s");
        assertTrue(assertFails(ErrorCode.INVALID_ARGUMENT, adapter.readByOffset("s", -1, 1)).getMessage().contains("offset"));
        assertTrue(assertFails(ErrorCode.INVALID_ARGUMENT, adapter.readByOffset("s", 0, 0)).getMessage().contains("limit"));
        assertFails(ErrorCode.INVALID_ARGUMENT, adapter.readByOffset("s", 0, Limits.MAX_READ_LIMIT + 1));
        assertFails(ErrorCode.INVALID_ARGUMENT, adapter.readByOffset("s", 0, -5));
        assertFails(ErrorCode.INVALID_ARGUMENT, adapter.readByTag("s", "t", -1, 1));
        assertFails(ErrorCode.INVALID_ARGUMENT, adapter.readByTag("s", "t", 0, 0));
        assertFails(ErrorCode.INVALID_ARGUMENT, adapter.deleteByOffset("s", -1));
        assertFails(ErrorCode.INVALID_ARGUMENT, adapter.commitOffset("g", "s", -1));
        assertTrue(assertFails(ErrorCode.INVALID_ARGUMENT, adapter.getOffsetByTimestamp("s", -1)).getMessage()
                .contains("timestamp"));
        assertFails(ErrorCode.INVALID_ARGUMENT, adapter.write("s", rec(-1, "x")));
    }

    @Test
    void invalidKeysAndTagsAreRejected() {
        createShard("s");
        assertFails(ErrorCode.INVALID_ARGUMENT, adapter.readByKey("s", ""));
        assertFails(ErrorCode.INVALID_ARGUMENT, adapter.readByKey("s", null));
        assertFails(ErrorCode.INVALID_ARGUMENT, adapter.deleteByKey("s", ""));
        assertFails(ErrorCode.INVALID_ARGUMENT, adapter.readByTag("s", "", 0, 1));
        assertFails(ErrorCode.INVALID_ARGUMENT, adapter.readByTag("s", null, 0, 1));
        assertFails(ErrorCode.INVALID_ARGUMENT, adapter.write("s", rec(1, "x").withKey("")));
        assertFails(ErrorCode.INVALID_ARGUMENT, adapter.write("s", rec(1, "x").withKey("\uD800lone")));
        assertFails(ErrorCode.INVALID_ARGUMENT, adapter.write("s", rec(1, "x").withKey("k".repeat(Limits.MAX_KEY_BYTES + 1))));
        assertFails(ErrorCode.INVALID_ARGUMENT, adapter.write("s", rec(1, "x").withTags("")));
        assertFails(ErrorCode.INVALID_ARGUMENT, adapter.write("s", rec(1, "x").withTags("t".repeat(Limits.MAX_TAG_BYTES + 1))));
        assertFails(ErrorCode.INVALID_ARGUMENT, adapter.write("s", rec(1, "x").withHeaders(new Header("", "v"))));
        String[] tooManyTags = new String[Limits.MAX_TAGS + 1];
        for (int i = 0; i < tooManyTags.length; i++) {
            tooManyTags[i] = "t" + i;
        }
        assertFails(ErrorCode.INVALID_ARGUMENT, adapter.write("s", rec(1, "x").withTags(tooManyTags)));
        assertEquals(List.of(), await(adapter.readByOffset("s", 0, 10)), "nothing was written");
    }

    @Test
    void oversizeRecordsAndBatchesAreRejected() {
        createShard("s");
        StorageException e = assertFails(ErrorCode.RECORD_TOO_LARGE,
                adapter.write("s", NewRecord.of(1, new byte[Limits.MAX_RECORD_BYTES + 1])));
        assertTrue(e.getMessage().contains(String.valueOf(Limits.MAX_RECORD_BYTES)), e.getMessage());
        assertFails(ErrorCode.RECORD_TOO_LARGE,
                adapter.write("s", NewRecord.of(1, new byte[Limits.MAX_RECORD_BYTES]).withKey("k")));
        List<NewRecord> big = Collections.nCopies(17, NewRecord.of(1, new byte[Limits.MAX_RECORD_BYTES / 1024 * 1000]));
        assertFails(ErrorCode.RECORD_TOO_LARGE, adapter.batchWrite("s", big));
        assertEquals(List.of(), await(adapter.readByOffset("s", 0, 10)), "nothing was written");
    }

    @Test
    void badBatchesAreRejectedWhole() {
        createShard("s");
        assertTrue(assertFails(ErrorCode.INVALID_ARGUMENT, adapter.batchWrite("s", List.of())).getMessage()
                .contains("at least one"));
        assertFails(ErrorCode.INVALID_ARGUMENT, adapter.batchWrite("s", null));
        List<NewRecord> withBadOne = new ArrayList<>(List.of(rec(1, "ok"), rec(1, "ok")));
        withBadOne.add(rec(-5, "bad"));
        StorageException e = assertFails(ErrorCode.INVALID_ARGUMENT, adapter.batchWrite("s", withBadOne));
        assertTrue(e.getMessage().contains("records[2]"), "names the record: " + e.getMessage());
        List<NewRecord> withNull = new ArrayList<>();
        withNull.add(rec(1, "ok"));
        withNull.add(null);
        assertFails(ErrorCode.INVALID_ARGUMENT, adapter.batchWrite("s", withNull));
        assertFails(ErrorCode.INVALID_ARGUMENT, adapter.write("s", null));
        assertFails(ErrorCode.INVALID_ARGUMENT,
                adapter.batchWrite("s", Collections.nCopies(Limits.MAX_BATCH_RECORDS + 1, rec(1, "x"))));
        assertEquals(List.of(), await(adapter.readByOffset("s", 0, 10)), "no part of a rejected batch is stored");
        assertEquals(0L, await(adapter.write("s", rec(1, "first"))));
    }

    @Test
    void invalidShardConfigsAreRejected() {
        ShardConfig ok = config("s");
        List<Function<ShardConfig, ShardConfig>> breakers = List.of(
                c -> c.withReplication(0, 1),
                c -> c.withReplication(Limits.MAX_REPLICA_COUNT + 1, 1),
                c -> c.withReplication(3, 0),
                c -> c.withReplication(3, 4),
                c -> c.withSegmentBytes(Limits.MIN_SEGMENT_BYTES - 1),
                c -> c.withSegmentBytes(Limits.MAX_SEGMENT_BYTES + 1),
                c -> c.withRetentionMs(0),
                c -> c.withRetentionMs(-2),
                c -> new ShardConfig(c.name(), 3, 2, c.segmentBytes(), -1, "Bad Type"),
                c -> new ShardConfig(c.name(), 3, 2, c.segmentBytes(), -1, null));
        for (Function<ShardConfig, ShardConfig> breaker : breakers) {
            ShardConfig bad = breaker.apply(ok);
            StorageException e = assertFails(ErrorCode.INVALID_ARGUMENT, adapter.createShard(bad));
            assertTrue(e.getMessage().contains("config."), "names the field: " + e.getMessage());
        }
        assertEquals(List.of(), await(adapter.listShards(ShardFilter.all())));
        assertFails(ErrorCode.INVALID_ARGUMENT, adapter.listShards(ShardFilter.prefix("a/")));
        assertFails(ErrorCode.INVALID_ARGUMENT, adapter.listShards(null));
    }

    // ---------------------------------------------------------------- concurrency and close

    @Test
    void concurrentWritersGetDenseUniqueOffsets() throws Exception {
        createShard("s");
        int writers = 4;
        int perWriter = 250;
        ExecutorService pool = Executors.newFixedThreadPool(writers);
        Set<Long> seen = ConcurrentHashMap.newKeySet();
        ConcurrentHashMap<Long, String> payloadAt = new ConcurrentHashMap<>();
        try {
            List<Future<?>> done = new ArrayList<>();
            for (int w = 0; w < writers; w++) {
                int writer = w;
                done.add(pool.submit(() -> {
                    List<CompletableFuture<?>> pending = new ArrayList<>();
                    for (int i = 0; i < perWriter; i++) {
                        String p = writer + "-" + i;
                        if (i % 5 == 0) {
                            List<NewRecord> batch = List.of(rec(i, p + "a"), rec(i, p + "b"));
                            pending.add(adapter.batchWrite("s", batch).thenAccept(offs -> {
                                assertEquals(offs.get(0) + 1, offs.get(1), "a batch is contiguous");
                                for (int k = 0; k < 2; k++) {
                                    assertTrue(seen.add(offs.get(k)), "offset handed out twice: " + offs.get(k));
                                    payloadAt.put(offs.get(k), p + (k == 0 ? "a" : "b"));
                                }
                            }));
                        } else {
                            pending.add(adapter.write("s", rec(i, p)).thenAccept(o -> {
                                assertTrue(seen.add(o), "offset handed out twice: " + o);
                                payloadAt.put(o, p);
                            }));
                        }
                    }
                    pending.forEach(Futures::await);
                }));
            }
            for (Future<?> f : done) {
                f.get(Futures.CALL_TIMEOUT_SECONDS, TimeUnit.SECONDS);
            }
        } finally {
            pool.shutdownNow();
        }
        int total = writers * (perWriter + perWriter / 5);
        assertEquals(total, seen.size());
        Set<Long> expected = new HashSet<>();
        for (long o = 0; o < total; o++) {
            expected.add(o);
        }
        assertEquals(expected, seen, "offsets are exactly 0..n-1");
        List<StoredRecord> all = new ArrayList<>();
        while (all.size() < total) {
            all.addAll(await(adapter.readByOffset("s", all.size(), 100)));
        }
        for (StoredRecord r : all) {
            assertEquals(payloadAt.get(r.offset()), payload(r), "record at " + r.offset());
        }
    }

    @Test
    void aClosedAdapterRefusesEveryCall() {
        createShard("s");
        adapter.close();
        adapter.close(); // harmless
        assertFails(ErrorCode.CLOSED, adapter.write("s", rec(1, "x")));
        assertFails(ErrorCode.CLOSED, adapter.readByOffset("s", 0, 1));
        assertFails(ErrorCode.CLOSED, adapter.createShard(config("t")));
        assertFails(ErrorCode.CLOSED, adapter.listShards(ShardFilter.all()));
        assertFails(ErrorCode.CLOSED, adapter.commitOffset("g", "s", 0));
    }
}
