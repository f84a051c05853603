package dev.segstore.client;

import dev.segstore.adapter.NewRecord;
import dev.segstore.protocol.MetaMethods;
import dev.segstore.protocol.NodeMethods;
import dev.segstore.protocol.meta.DescribeClusterResponse;
import dev.segstore.protocol.meta.Empty;
import dev.segstore.protocol.meta.Segment;
import dev.segstore.protocol.meta.StorageNode;
import dev.segstore.protocol.node.ProduceRequest;
import dev.segstore.protocol.node.ProduceResponse;
import dev.segstore.protocol.rpc.RpcHandler;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.charset.StandardCharsets;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * When a segment's leadership moves to a follower (a controlled shutdown hands it over), the client has a connection
 * open to that follower already, so the retried writes go out at once instead of waiting for a connect.
 */
@Timeout(60)
class ReplicaConnectionsTest {
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
