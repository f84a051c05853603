package dev.segstore.node.server;

import dev.segstore.adapter.ErrorCode;
import dev.segstore.log.FileSlice;
import dev.segstore.node.replica.Partition;
import dev.segstore.node.replica.ReplicaException;
import dev.segstore.node.replica.Tombstones;
import dev.segstore.protocol.node.FetchManyRequest;
import dev.segstore.protocol.node.FetchManyResponse;
import dev.segstore.protocol.node.FetchManyResult;
import dev.segstore.protocol.node.FetchRequest;
import dev.segstore.protocol.node.FetchResponse;
import dev.segstore.protocol.node.SegmentRef;
import dev.segstore.protocol.rpc.Attachment;
import dev.segstore.protocol.rpc.Reply;
import dev.segstore.protocol.rpc.RpcException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.WritableByteChannel;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The leader side of node.FetchMany on a stand-in for the node's segments: one entry's error leaves the others alone. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class FetchManyHandlerTest {
    private final ShardOwners owners = new ShardOwners(2, "test-owner");
    /** Per shard id: the epoch the stand-in leader is in; a fetch in another epoch fails FENCED_EPOCH. */
    private final Map<Long, Integer> epochs = new ConcurrentHashMap<>();
    /** Per shard id: the tombstones the next fetch brings (news). */
    private final Map<Long, List<Long>> tombstones = new ConcurrentHashMap<>();
    /** Per shard id: the future a held call waits on for news of that segment. */
    private final Map<Long, CompletableFuture<Void>> news = new ConcurrentHashMap<>();
    /** Per shard id: the offsets the leader counted as that follower's progress. */
    private final Map<Long, List<Long>> counted = new ConcurrentHashMap<>();

    private final FetchManyHandler handler = new FetchManyHandler(new FetchManyHandler.Leader() {
        @Override
        public Partition.FollowerFetch slice(FetchRequest r, int maxBytes, boolean heldAgain) {
            long shard = r.getSegment().getShardId();
            int epoch = epochs.get(shard);
            if (r.getLeaderEpoch() != epoch) {
                throw new ReplicaException(ErrorCode.FENCED_EPOCH, shard + ": fetch in epoch " + r.getLeaderEpoch() + ", leader is in " + epoch, 1, epoch);
            }
            counted.computeIfAbsent(shard, k -> new java.util.concurrent.CopyOnWriteArrayList<>()).add(r.getOffset());
            List<Long> t = tombstones.getOrDefault(shard, List.of());
            return new Partition.FollowerFetch(FileSlice.empty(r.getOffset()), 10 * shard, 10 * shard,
                    new Tombstones.Slice(0, t, t.size(), 0));
        }

        @Override
        public CompletableFuture<Void> news(FetchRequest r) {
            return news.computeIfAbsent(r.getSegment().getShardId(), k -> new CompletableFuture<>());
        }

        @Override
        public Reply reply(FetchRequest r, Partition.FollowerFetch f) {
            return FetchManyHandlerTest.stubReply(f);
        }
    }, owners, FetchManyHandlerTest::wire, 200, 8_000);

    /** The stand-in leader's answer to a follower fetch: its watermarks and tombstones, no batches. */
    static Reply stubReply(Partition.FollowerFetch f) {
        return new Reply(FetchResponse.newBuilder().setHighWatermark(f.highWatermark()).setLogEndOffset(f.leaderLogEnd())
                .addAllTombstones(f.tombstones().offsets()).build(), new FetchManyHandler.Concatenated(List.of()));
    }

    /** As the node turns a failure into its wire error. */
    static RpcException wire(Throwable t) {
        Throwable e = t instanceof java.util.concurrent.CompletionException && t.getCause() != null ? t.getCause() : t;
        if (e instanceof RpcException re) {
            return re;
        }
        ReplicaException re = (ReplicaException) e;
        return new RpcException(re.code().code(), re.getMessage(), "", re.leaderEpoch(), re.isNotApplied(), re.isRolling());
    }

    @AfterEach
    void stop() {
        owners.close();
    }

    private static FetchRequest fetch(long shard, int epoch, long offset) {
        return FetchRequest.newBuilder().setSegment(SegmentRef.newBuilder().setShardId(shard).setSequence(0)).setReplicaId(2)
                .setLeaderEpoch(epoch).setOffset(offset).setMaxBytes(1 << 20).setMaxWaitMs(10_000).build();
    }

    private static FetchManyRequest call(boolean wake, FetchRequest... fetches) {
        return FetchManyRequest.newBuilder().setReplicaId(2).setMaxWaitMs(10_000).setWakeHeld(wake).addAllFetches(List.of(fetches)).build();
    }

    private void awaitHeld(long... shards) {
        InJvmCluster.waitFor("the call to wait for news of every segment", 10_000, () -> {
            for (long s : shards) {
                if (!news.containsKey(s)) {
                    return false;
                }
            }
            return true;
        });
    }

    @Test
    void aSegmentWhoseEpochChangesWhileTheCallIsHeldGetsItsErrorAndTheOthersTheirAnswers() throws Exception {
        epochs.put(1L, 3);
        epochs.put(2L, 3);
        epochs.put(3L, 3);
        CompletableFuture<Reply> answer = handler.handle(call(false, fetch(1, 3, 5), fetch(2, 3, 6), fetch(3, 3, 7)));
        awaitHeld(1, 2, 3);
        assertFalse(answer.isDone(), "nothing new: the call is held");
        // Segment 2's leader moves to epoch 4 (as Partition does, the change wakes the held fetches); segment 3 has a delete.
        epochs.put(2L, 4);
        tombstones.put(3L, List.of(42L));
        news.get(2L).complete(null);
        List<FetchManyResult> results = ((FetchManyResponse) answer.get(10, TimeUnit.SECONDS).message()).getResultsList();
        assertEquals(3, results.size());
        assertFalse(results.get(0).hasError());
        assertEquals(10, results.get(0).getResponse().getHighWatermark());
        assertTrue(results.get(1).hasError(), "segment 2 was fetched in epoch 3, its leader is in 4");
        assertEquals(ErrorCode.FENCED_EPOCH.code(), results.get(1).getError().getCode());
        assertEquals(4, results.get(1).getError().getLeaderEpoch());
        assertFalse(results.get(2).hasError());
        assertEquals(List.of(42L), results.get(2).getResponse().getTombstonesList());
        assertEquals(30, results.get(2).getResponse().getHighWatermark());
        // The stale entry's offset was never counted as progress (once for 1 and 3 before the hold, once after).
        assertEquals(List.of(6L), counted.get(2L));
        assertEquals(List.of(5L, 5L), counted.get(1L));
    }

    @Test
    void anEntryThatFailsIsAnsweredAtOnceWithTheOthers() throws Exception {
        epochs.put(1L, 3);
        epochs.put(2L, 5);
        FetchManyResponse r = (FetchManyResponse) handler.handle(call(false, fetch(1, 3, 0), fetch(2, 3, 0))).get(5, TimeUnit.SECONDS).message();
        assertFalse(r.getResults(0).hasError());
        assertEquals(ErrorCode.FENCED_EPOCH.code(), r.getResults(1).getError().getCode());
        assertTrue(news.isEmpty(), "not held");
    }

    @Test
    void aWakingCallAnswersTheHeldCallOfItsFollowerNodeAndIsNotHeldItself() throws Exception {
        epochs.put(1L, 3);
        epochs.put(2L, 3);
        CompletableFuture<Reply> held = handler.handle(call(false, fetch(1, 3, 0)));
        awaitHeld(1);
        assertFalse(held.isDone());
        FetchManyResponse woke = (FetchManyResponse) handler.handle(call(true, fetch(2, 3, 0))).get(5, TimeUnit.SECONDS).message();
        assertFalse(woke.getResults(0).hasError());
        FetchManyResponse first = (FetchManyResponse) held.get(5, TimeUnit.SECONDS).message();
        assertEquals(10, first.getResults(0).getResponse().getHighWatermark());
    }

    @Test
    void consumerFetchesAreRefused() throws Exception {
        epochs.put(1L, 3);
        FetchManyResponse r = (FetchManyResponse) handler.handle(call(false, fetch(1, 3, 0).toBuilder().setReplicaId(-1).build()))
                .get(5, TimeUnit.SECONDS).message();
        assertEquals(ErrorCode.INVALID_ARGUMENT.code(), r.getResults(0).getError().getCode());
    }

    /** An attachment that sends at most {@code chunk} bytes a call, as a socket that takes little at a time. */
    private static Attachment bytes(byte[] b) {
        return new Attachment() {
            @Override
            public int length() {
                return b.length;
            }

            @Override
            public long transferTo(long from, long count, WritableByteChannel target) throws java.io.IOException {
                return target.write(ByteBuffer.wrap(b, (int) from, (int) Math.min(count, 2)));
            }

            @Override
            public void release() {
            }
        };
    }

    @Test
    void concatenatedAttachmentsSendEachPartInOrderThroughPartialWrites() throws Exception {
        FetchManyHandler.Concatenated all = new FetchManyHandler.Concatenated(List.of(bytes(new byte[]{1, 2, 3}), bytes(new byte[0]),
                bytes(new byte[]{4, 5, 6, 7, 8})));
        assertEquals(8, all.length());
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        WritableByteChannel target = Channels.newChannel(out);
        long done = 0;
        while (done < all.length()) {
            long n = all.transferTo(done, all.length() - done, target);
            assertTrue(n > 0);
            done += n;
        }
        assertArrayEquals(new byte[]{1, 2, 3, 4, 5, 6, 7, 8}, out.toByteArray());
    }
}
