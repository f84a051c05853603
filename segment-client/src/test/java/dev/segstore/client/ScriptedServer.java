package dev.segstore.client;

import dev.segstore.protocol.MetaMethods;
import dev.segstore.protocol.meta.DescribeClusterResponse;
import dev.segstore.protocol.meta.DurabilityMode;
import dev.segstore.protocol.meta.Empty;
import dev.segstore.protocol.meta.GetRouteRequest;
import dev.segstore.protocol.meta.Segment;
import dev.segstore.protocol.meta.SegmentStatus;
import dev.segstore.protocol.meta.Shard;
import dev.segstore.protocol.meta.ShardRoute;
import dev.segstore.protocol.meta.StorageNode;
import dev.segstore.protocol.rpc.RpcHandler;
import dev.segstore.protocol.rpc.RpcServer;

import java.net.InetSocketAddress;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.function.Supplier;

/**
 * One scripted server for client tests that plays the meta-service and storage node 1 at once: each test
 * registers the methods it scripts; the cluster description names this server as node 1, unless the test
 * registers its own. Shard "s" has id 7 in the routes {@link #route} builds.
 */
final class ScriptedServer implements AutoCloseable {
    private final RpcServer server;
    private final InetSocketAddress address;

    /** Starts a server answering {@code handlers}. */
    static ScriptedServer start(RpcHandler<?>... handlers) throws InterruptedException {
        return new ScriptedServer(0, handlers);
    }

    /** As {@link #start(RpcHandler[])}, on {@code port} (a server started again where another one was). */
    static ScriptedServer startOn(int port, RpcHandler<?>... handlers) throws InterruptedException {
        return new ScriptedServer(port, handlers);
    }

    private ScriptedServer(int port, RpcHandler<?>... handlers) throws InterruptedException {
        InetSocketAddress[] self = new InetSocketAddress[1];
        server = new RpcServer(1, 1 << 20);
        boolean describes = false;
        for (RpcHandler<?> h : handlers) {
            server.register(h);
            describes |= h.method().equals(MetaMethods.DESCRIBE_CLUSTER);
        }
        if (!describes) {
            server.register(RpcHandler.of(MetaMethods.DESCRIBE_CLUSTER, Empty.parser(), r -> CompletableFuture.completedFuture(
                    DescribeClusterResponse.newBuilder().addNodes(StorageNode.newBuilder().setNodeId(1)
                            .setHost("127.0.0.1").setPort(self[0].getPort())).build())));
        }
        self[0] = server.start("127.0.0.1", port);
        address = self[0];
    }

    int port() {
        return address.getPort();
    }

    /** "127.0.0.1:port" of this server. */
    String address() {
        return "127.0.0.1:" + address.getPort();
    }

    /** An adapter whose meta-service is this server. */
    SegmentStorageAdapter adapter(long requestTimeoutMs, long callTimeoutMs) {
        return adapter(requestTimeoutMs, callTimeoutMs, 0);
    }

    /** As {@link #adapter(long, long)}, with each shard's producer sequences starting at {@code firstSequence}. */
    SegmentStorageAdapter adapter(long requestTimeoutMs, long callTimeoutMs, int firstSequence) {
        return new SegmentStorageAdapter(new SegmentStorageAdapter.Settings(List.of(address()), requestTimeoutMs, callTimeoutMs,
                DurabilityMode.FSYNC), firstSequence);
    }

    /** Answers every route look-up with what {@code route} gives then. */
    static RpcHandler<GetRouteRequest> routes(Supplier<ShardRoute> route) {
        return RpcHandler.of(MetaMethods.GET_ROUTE, GetRouteRequest.parser(), r -> CompletableFuture.completedFuture(route.get()));
    }

    /** Answers every route look-up with shard "s" as one open segment, from offset 0. */
    static RpcHandler<GetRouteRequest> oneOpenSegment() {
        return routes(() -> route(segment(0, 0, -1)));
    }

    /** Segment {@code sequence} of shard "s" (id 7) on node 1: [start, end), open when {@code end < 0}. */
    static Segment segment(long sequence, long start, long end) {
        return Segment.newBuilder().setShard("s").setShardId(7).setSequence(sequence).setStartOffset(start).setEndOffset(end)
                .setStatus(end < 0 ? SegmentStatus.OPEN : SegmentStatus.SEALED).addReplicas(1).setLeader(1).addIsr(1).build();
    }

    /** A route of shard "s" (id 7). */
    static ShardRoute route(Segment... segments) {
        return ShardRoute.newBuilder().setShard(Shard.newBuilder().setName("s").setShardId(7)).addAllSegments(List.of(segments)).build();
    }

    @Override
    public void close() {
        server.close();
    }
}
