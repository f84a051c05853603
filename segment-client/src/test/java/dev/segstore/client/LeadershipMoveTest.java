package dev.segstore.client;

import dev.segstore.adapter.NewRecord;
import dev.segstore.protocol.MetaMethods;
import dev.segstore.protocol.NodeMethods;
import dev.segstore.protocol.meta.DescribeClusterResponse;
import dev.segstore.protocol.meta.Empty;
import dev.segstore.protocol.meta.GetRouteRequest;
import dev.segstore.protocol.meta.Segment;
import dev.segstore.protocol.meta.StorageNode;
import dev.segstore.protocol.node.ProduceRequest;
import dev.segstore.protocol.node.ProduceResponse;
import dev.segstore.protocol.rpc.RpcException;
import dev.segstore.protocol.rpc.RpcHandler;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What the client does when a segment's leadership moves to a follower (a controlled shutdown hands it over): it
 * follows the new leader that the refusal names without reading the route again, and it has a connection open to
 * that follower already, so the retried writes go out at once.
 */
@Timeout(60)
class LeadershipMoveTest {
    /** Segment 0 of shard "s" (id 7), open, on nodes 1 and 2, led by {@code leader} in {@code epoch}. */
    private static Segment segment(int leader, int epoch) {
        return ScriptedServer.segment(0, 0, -1).toBuilder().clearReplicas().addReplicas(1).addReplicas(2)
                .clearIsr().addIsr(1).addIsr(2).setLeader(leader).setLeaderEpoch(epoch).build();
    }

    /** The meta-service (on node 1's server) describing node 1 there and node 2 at {@code node2}. */
    private static RpcHandler<Empty> twoNodes(int[] node1Port, ScriptedServer node2) {
        return RpcHandler.of(MetaMethods.DESCRIBE_CLUSTER, Empty.parser(), r -> CompletableFuture.completedFuture(
                DescribeClusterResponse.newBuilder()
                        .addNodes(StorageNode.newBuilder().setNodeId(1).setHost("127.0.0.1").setPort(node1Port[0]))
                        .addNodes(StorageNode.newBuilder().setNodeId(2).setHost("127.0.0.1").setPort(node2.port())).build()));
    }

    /**
     * Node 1 refuses: node 2 leads in epoch 1. The meta-service's route still says node 1 in epoch 0 (its answer lags,
     * or a read lands before the change): re-reading the route, as the client did, sends every retry back to node 1
     * until the request timeout (NOT_LEADER after 1 s). Following the hint, the write reaches node 2 at once.
     */
    @Test
    void aWriteRefusedByADeposedLeaderGoesToTheLeaderItNamesWithoutReadingTheRouteAgain() throws Exception {
        List<ProduceRequest> atNode1 = new CopyOnWriteArrayList<>();
        List<ProduceRequest> atNode2 = new CopyOnWriteArrayList<>();
        AtomicInteger routeReads = new AtomicInteger();
        int[] node1Port = new int[1];
        try (ScriptedServer node2 = ScriptedServer.start(RpcHandler.of(NodeMethods.PRODUCE, ProduceRequest.parser(), r -> {
                 atNode2.add(r);
                 return CompletableFuture.completedFuture(ProduceResponse.newBuilder().setBaseOffset(5).setLastOffset(5).build());
             }));
             ScriptedServer node1 = ScriptedServer.start(twoNodes(node1Port, node2),
                     RpcHandler.of(MetaMethods.GET_ROUTE, GetRouteRequest.parser(), r -> {
                         routeReads.incrementAndGet();
                         return CompletableFuture.completedFuture(ScriptedServer.route(segment(1, 0)));
                     }),
                     RpcHandler.of(NodeMethods.PRODUCE, ProduceRequest.parser(), r -> {
                         atNode1.add(r);
                         return CompletableFuture.failedFuture(new RpcException(6, "leadership moved to node 2 in epoch 1",
                                 node2.address(), 1, false));
                     }))) {
            node1Port[0] = node1.port();
            try (SegmentStorageAdapter adapter = node1.adapter(1_000, 300)) {
                long offset = adapter.write("s", NewRecord.of(1, "x".getBytes(StandardCharsets.UTF_8))).get(30, TimeUnit.SECONDS);
                assertEquals(5, offset);
                assertEquals(1, atNode1.size(), "one attempt at the deposed leader: " + atNode1.size());
                assertEquals(1, atNode2.size(), "the retry went to the leader the refusal named");
                ProduceRequest retry = atNode2.get(0);
                assertEquals(atNode1.get(0).getBaseSequence(), retry.getBaseSequence(), "the retry keeps its sequence");
                assertTrue(retry.getMayBeDuplicate(), "the first attempt's outcome is unknown: the retry says it may be a duplicate");
                // The background read of the whole route gave the older epoch: the hint is kept, later writes go to node 2.
                Await.until("the background route read", 10_000, () -> routeReads.get() >= 2);
                adapter.write("s", NewRecord.of(1, "y".getBytes(StandardCharsets.UTF_8))).get(30, TimeUnit.SECONDS);
                assertEquals(2, atNode2.size(), "a route older than the hint does not replace it");
                assertEquals(1, atNode1.size());
            }
        }
    }

    /** A hint that is not newer than the cached route (a node that lags) is not followed: the route is read again. */
    @Test
    void aRefusalNamingAnOlderEpochReadsTheRouteAgain() throws Exception {
        List<ProduceRequest> atNode2 = new CopyOnWriteArrayList<>();
        AtomicInteger routeReads = new AtomicInteger();
        AtomicInteger refusals = new AtomicInteger();
        int[] node1Port = new int[1];
        try (ScriptedServer node2 = ScriptedServer.start(RpcHandler.of(NodeMethods.PRODUCE, ProduceRequest.parser(), r -> {
                 atNode2.add(r);
                 return CompletableFuture.completedFuture(ProduceResponse.newBuilder().setBaseOffset(0).setLastOffset(0).build());
             }));
             ScriptedServer node1 = ScriptedServer.start(twoNodes(node1Port, node2),
                     RpcHandler.of(MetaMethods.GET_ROUTE, GetRouteRequest.parser(), r -> {
                         routeReads.incrementAndGet();
                         return CompletableFuture.completedFuture(ScriptedServer.route(segment(1, 3)));
                     }),
                     RpcHandler.of(NodeMethods.PRODUCE, ProduceRequest.parser(), r -> {
                         if (refusals.incrementAndGet() == 1) {
                             // node 1 has not learnt epoch 3 yet and names the leader of epoch 2
                             return CompletableFuture.failedFuture(new RpcException(6, "node 1 is not the leader", node2.address(), 2, false));
                         }
                         return CompletableFuture.completedFuture(ProduceResponse.newBuilder().setBaseOffset(0).setLastOffset(0).build());
                     }))) {
            node1Port[0] = node1.port();
            try (SegmentStorageAdapter adapter = node1.adapter(5_000, 1_000)) {
                adapter.write("s", NewRecord.of(1, "x".getBytes(StandardCharsets.UTF_8))).get(30, TimeUnit.SECONDS);
                assertEquals(0, atNode2.size(), "the hint of epoch 2 is older than the route's epoch 3: not followed");
                assertEquals(2, refusals.get(), "retried at node 1, the leader the route names");
                assertEquals(2, routeReads.get(), "the route was read again for the retry");
            }
        }
    }

    /**
     * After the first write the client holds a connection to the follower too (so a hand-over does not wait for a
     * connect), and connects again, while writes go on, once that follower's connection was lost (it restarted).
     */
    @Test
    void theClientKeepsAConnectionToEachReplicaOfTheOpenSegment() throws Exception {
        AtomicLong written = new AtomicLong();
        int[] node1Port = new int[1];
        ScriptedServer node2 = ScriptedServer.start();
        int node2Port = node2.port();
        String node2Address = node2.address();
        ScriptedServer again = null;
        try (ScriptedServer node1 = ScriptedServer.start(twoNodes(node1Port, node2),
                ScriptedServer.routes(() -> ScriptedServer.route(segment(1, 0))),
                RpcHandler.of(NodeMethods.PRODUCE, ProduceRequest.parser(), r -> {
                    long o = written.getAndIncrement();
                    return CompletableFuture.completedFuture(ProduceResponse.newBuilder().setBaseOffset(o).setLastOffset(o).build());
                }))) {
            node1Port[0] = node1.port();
            try (SegmentStorageAdapter adapter = node1.adapter(5_000, 1_000)) {
                adapter.write("s", NewRecord.of(1, "x".getBytes(StandardCharsets.UTF_8))).get(30, TimeUnit.SECONDS);
                Await.until("a connection to node 2, which no request went to", 10_000, () -> adapter.connectedTo(node2Address));
                node2.close();
                Await.until("the connection to node 2 to close", 10_000, () -> !adapter.connectedTo(node2Address));
                again = ScriptedServer.startOn(node2Port);
                long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
                while (!adapter.connectedTo(node2Address)) {
                    assertTrue(System.nanoTime() < end, "no connection to node 2 again within 20 s of writes");
                    adapter.write("s", NewRecord.of(1, "x".getBytes(StandardCharsets.UTF_8))).get(30, TimeUnit.SECONDS);
                }
            }
        } finally {
            node2.close();
            if (again != null) {
                again.close();
            }
        }
    }
}
