package dev.segstore.client;

import dev.segstore.adapter.StoredRecord;
import dev.segstore.log.AppendRecord;
import dev.segstore.log.format.RecordBatch;
import dev.segstore.protocol.MetaMethods;
import dev.segstore.protocol.NodeMethods;
import dev.segstore.protocol.meta.DescribeClusterResponse;
import dev.segstore.protocol.meta.DurabilityMode;
import dev.segstore.protocol.meta.Empty;
import dev.segstore.protocol.meta.GetRouteRequest;
import dev.segstore.protocol.meta.Segment;
import dev.segstore.protocol.meta.SegmentStatus;
import dev.segstore.protocol.meta.Shard;
import dev.segstore.protocol.meta.ShardRoute;
import dev.segstore.protocol.meta.StorageNode;
import dev.segstore.protocol.node.FetchRequest;
import dev.segstore.protocol.node.FetchResponse;
import dev.segstore.protocol.node.IndexReadRequest;
import dev.segstore.protocol.node.TimestampRequest;
import dev.segstore.protocol.node.TimestampResponse;
import dev.segstore.protocol.rpc.Attachment;
import dev.segstore.protocol.rpc.Reply;
import dev.segstore.protocol.rpc.RpcHandler;
import dev.segstore.protocol.rpc.RpcServer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.LongStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Tag and timestamp reads of a sealed segment go to a random ISR member; a follower that has not caught up with
 * the seal (its high watermark below the sealed end) answers for what it holds only, so the client must ask the
 * leader for the rest instead of going on into the next segment past a gap. Two scripted storage nodes: node 1
 * (also the meta-service) leads segment 0, sealed at 10, and holds it all; node 2, in the ISR, holds [0, 5).
 * Every record has the tag "t" and timestamp 100 + offset; segment 1 (open, node 1) holds offset 10.
 */
@Timeout(60)
class SealedReplicaReadsTest {
    private static final int READS = 40; // each picks node 2 with probability 1/2: all miss it with 2^-40

    private static Segment segment(long sequence, long start, long end, int leader) {
        return Segment.newBuilder().setShard("s").setShardId(7).setSequence(sequence).setStartOffset(start).setEndOffset(end)
                .setStatus(end < 0 ? SegmentStatus.OPEN : SegmentStatus.SEALED).addReplicas(1).addReplicas(2).setLeader(leader)
                .addIsr(1).addIsr(2).build();
    }

    private static final ShardRoute ROUTE = ShardRoute.newBuilder().setShard(Shard.newBuilder().setName("s").setShardId(7))
            .addSegments(segment(0, 0, 10, 1)).addSegments(segment(1, 10, -1, 1)).build();

    /**
     * A route older than a leader change of sealed segment 0: it names node 2, the replica behind the seal, as the
     * leader (node 2 led the segment, lost it, and came back with its watermark short of the seal; node 1 holds
     * everything). Found by the fault schedules: the "leader" asked after a short answer was the same replica.
     */
    private static final ShardRoute ROUTE_BEHIND_LEADER = ShardRoute.newBuilder().setShard(Shard.newBuilder().setName("s").setShardId(7))
            .addSegments(segment(0, 0, 10, 2)).addSegments(segment(1, 10, -1, 1)).build();

    private static dev.segstore.protocol.node.Record rec(long offset) {
        return dev.segstore.protocol.node.Record.newBuilder().setOffset(offset).addTags("t").setTimestamp(100 + offset).build();
    }

    /** What node {@code node} holds of segment {@code sequence}: its high watermark. */
    private static long hw(int node, long sequence) {
        return sequence == 1 ? 11 : node == 1 ? 10 : 5;
    }

    /** A consumer fetch: the records node {@code node} holds from the offset, one batch, as the attachment. */
    private static CompletableFuture<Reply> fetch(int node, FetchRequest r) {
        long seq = r.getSegment().getSequence();
        long hw = hw(node, seq);
        long from = Math.max(r.getOffset(), seq == 0 ? 0 : 10);
        long to = Math.min(hw, from + Math.max(1, r.getMaxRecords()));
        FetchResponse.Builder b = FetchResponse.newBuilder().setHighWatermark(hw).setSealed(seq == 0).setSealedEnd(seq == 0 ? 10 : 0)
                .setNextOffset(Math.max(from, Math.min(to, hw)));
        ByteBuffer bytes = ByteBuffer.allocate(0);
        if (to > from) {
            List<AppendRecord> records = LongStream.range(from, to)
                    .mapToObj(o -> new AppendRecord(null, List.of("t"), 100 + o, List.of(), ("p" + o).getBytes(StandardCharsets.UTF_8))).toList();
            bytes = RecordBatch.encode(from, 0, -1, -1, records);
        }
        return CompletableFuture.completedFuture(new Reply(b.build(), attachment(bytes)));
    }

    private static Attachment attachment(ByteBuffer bytes) {
        return new Attachment() {
            @Override
            public int length() {
                return bytes.remaining();
            }

            @Override
            public long transferTo(long from, long count, WritableByteChannel target) throws IOException {
                ByteBuffer d = bytes.duplicate();
                d.position(bytes.position() + (int) from);
                d.limit(d.position() + (int) Math.min(count, bytes.remaining() - from));
                return target.write(d);
            }

            @Override
            public void release() {
            }
        };
    }

    private static RpcServer node(int node, AtomicInteger asked, InetSocketAddress[] addresses, ShardRoute route) {
        return new RpcServer(1, 1 << 20)
                .register(RpcHandler.of(NodeMethods.FETCH, FetchRequest.parser(), r -> {
                    asked.incrementAndGet();
                    return fetch(node, r);
                }))
                .register(RpcHandler.of(NodeMethods.READ_BY_TAG, IndexReadRequest.parser(), r -> {
                    asked.incrementAndGet();
                    long seq = r.getSegment().getSequence();
                    long hw = hw(node, seq);
                    FetchResponse.Builder b = FetchResponse.newBuilder().setHighWatermark(hw).setSealed(seq == 0).setSealedEnd(seq == 0 ? 10 : 0);
                    LongStream.range(Math.max(r.getFromOffset(), seq == 0 ? 0 : 10), hw).limit(r.getLimit()).forEach(o -> b.addRecords(rec(o)));
                    return CompletableFuture.completedFuture(b.build());
                }))
                .register(RpcHandler.of(NodeMethods.READ_BY_KEY, IndexReadRequest.parser(), r -> {
                    asked.incrementAndGet(); // key "k<offset>" is at that offset only
                    long seq = r.getSegment().getSequence();
                    long hw = hw(node, seq);
                    long at = Long.parseLong(r.getTerm().substring(1));
                    FetchResponse.Builder b = FetchResponse.newBuilder().setHighWatermark(hw).setSealed(seq == 0).setSealedEnd(seq == 0 ? 10 : 0);
                    if (at >= (seq == 0 ? 0 : 10) && at < hw && (seq == 1 || at < 10)) {
                        b.addRecords(rec(at).toBuilder().setKey(r.getTerm()));
                    }
                    return CompletableFuture.completedFuture(b.build());
                }))
                .register(RpcHandler.of(NodeMethods.OFFSET_FOR_TIMESTAMP, TimestampRequest.parser(), r -> {
                    asked.incrementAndGet();
                    long seq = r.getSegment().getSequence();
                    long hw = hw(node, seq);
                    long first = Math.max(r.getTimestamp() - 100, seq == 0 ? 0 : 10);
                    TimestampResponse.Builder b = TimestampResponse.newBuilder().setHighWatermark(hw).setSealed(seq == 0)
                            .setSealedEnd(seq == 0 ? 10 : 0);
                    if (first < hw) {
                        b.setFound(true).setOffset(first);
                    }
                    return CompletableFuture.completedFuture(b.build());
                }))
                .register(RpcHandler.of(MetaMethods.GET_ROUTE, GetRouteRequest.parser(), r -> CompletableFuture.completedFuture(route)))
                .register(RpcHandler.of(MetaMethods.DESCRIBE_CLUSTER, Empty.parser(), r -> CompletableFuture.completedFuture(
                        DescribeClusterResponse.newBuilder()
                                .addNodes(StorageNode.newBuilder().setNodeId(1).setHost("127.0.0.1").setPort(addresses[1].getPort()))
                                .addNodes(StorageNode.newBuilder().setNodeId(2).setHost("127.0.0.1").setPort(addresses[2].getPort()))
                                .build())));
    }

    @FunctionalInterface
    private interface ThrowingConsumer<T> {
        void accept(T t) throws Exception;
    }

    private void withNodes(ThrowingConsumer<SegmentStorageAdapter> test, AtomicInteger askedFollower) throws Exception {
        withNodes(ROUTE, test, askedFollower);
    }

    private void withNodes(ShardRoute route, ThrowingConsumer<SegmentStorageAdapter> test, AtomicInteger askedFollower) throws Exception {
        InetSocketAddress[] addresses = new InetSocketAddress[3];
        RpcServer leader = node(1, new AtomicInteger(), addresses, route);
        RpcServer follower = node(2, askedFollower, addresses, route);
        addresses[1] = leader.start("127.0.0.1", 0);
        addresses[2] = follower.start("127.0.0.1", 0);
        try (SegmentStorageAdapter adapter = new SegmentStorageAdapter(new SegmentStorageAdapter.Settings(
                List.of("127.0.0.1:" + addresses[1].getPort()), 20_000, 2_000, DurabilityMode.FSYNC))) {
            test.accept(adapter);
        } finally {
            leader.close();
            follower.close();
        }
    }

    @Test
    void aTagReadDoesNotSkipWhatAFollowerBehindTheSealLacks() throws Exception {
        AtomicInteger askedFollower = new AtomicInteger();
        withNodes(adapter -> {
            for (int i = 0; i < READS; i++) {
                List<Long> got = adapter.readByTag("s", "t", 0, 100).get(30, TimeUnit.SECONDS).stream().map(StoredRecord::offset).toList();
                assertEquals(LongStream.range(0, 11).boxed().toList(), got, "read " + i + ": every tagged record, without a gap");
            }
        }, askedFollower);
        assertTrue(askedFollower.get() > 0, "the follower was asked too (reads spread over the ISR)");
    }

    @Test
    void aTimestampLookUpDoesNotSkipWhatAFollowerBehindTheSealLacks() throws Exception {
        AtomicInteger askedFollower = new AtomicInteger();
        withNodes(adapter -> {
            for (int i = 0; i < READS; i++) {
                assertEquals(OptionalLong.of(7), adapter.getOffsetByTimestamp("s", 107).get(30, TimeUnit.SECONDS),
                        "read " + i + ": offset 7 is in segment 0, which the follower does not hold yet");
            }
        }, askedFollower);
        assertTrue(askedFollower.get() > 0, "the follower was asked too (reads spread over the ISR)");
    }

    @Test
    void anOffsetReadDoesNotStopShortWhereTheRoutesLeaderIsBehindTheSeal() throws Exception {
        AtomicInteger askedBehind = new AtomicInteger();
        withNodes(ROUTE_BEHIND_LEADER, adapter -> {
            for (int i = 0; i < READS; i++) {
                List<Long> got = adapter.readByOffset("s", 0, 100).get(30, TimeUnit.SECONDS).stream().map(StoredRecord::offset).toList();
                assertEquals(LongStream.range(0, 11).boxed().toList(), got, "read " + i + ": every record, none missing at the end of segment 0");
            }
        }, askedBehind);
        assertTrue(askedBehind.get() > 0, "the replica behind was asked too (reads spread over the ISR)");
    }

    @Test
    void aTagReadDoesNotSkipWhatTheRoutesLeaderBehindTheSealLacks() throws Exception {
        AtomicInteger askedBehind = new AtomicInteger();
        withNodes(ROUTE_BEHIND_LEADER, adapter -> {
            for (int i = 0; i < READS; i++) {
                List<Long> got = adapter.readByTag("s", "t", 0, 100).get(30, TimeUnit.SECONDS).stream().map(StoredRecord::offset).toList();
                assertEquals(LongStream.range(0, 11).boxed().toList(), got, "read " + i + ": every tagged record, without a gap");
            }
        }, askedBehind);
        assertTrue(askedBehind.get() > 0, "the replica behind was asked too (reads spread over the ISR)");
    }

    @Test
    void aTimestampLookUpDoesNotSkipWhatTheRoutesLeaderBehindTheSealLacks() throws Exception {
        AtomicInteger askedBehind = new AtomicInteger();
        withNodes(ROUTE_BEHIND_LEADER, adapter -> {
            for (int i = 0; i < READS; i++) {
                assertEquals(OptionalLong.of(7), adapter.getOffsetByTimestamp("s", 107).get(30, TimeUnit.SECONDS),
                        "read " + i + ": offset 7 is in segment 0, which node 2 does not hold yet");
            }
        }, askedBehind);
        assertTrue(askedBehind.get() > 0, "the replica behind was asked too (reads spread over the ISR)");
    }

    @Test
    void aKeyLookUpFindsWhatTheRoutesLeaderBehindTheSealLacks() throws Exception {
        AtomicInteger askedBehind = new AtomicInteger();
        withNodes(ROUTE_BEHIND_LEADER, adapter -> {
            for (int i = 0; i < READS; i++) {
                Optional<StoredRecord> got = adapter.readByKey("s", "k7").get(30, TimeUnit.SECONDS);
                assertEquals(Optional.of(7L), got.map(StoredRecord::offset), "read " + i + ": key k7 is at offset 7 of segment 0");
            }
        }, askedBehind);
        assertTrue(askedBehind.get() > 0, "the replica behind was asked");
    }
}
