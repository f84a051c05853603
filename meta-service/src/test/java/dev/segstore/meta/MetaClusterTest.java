package dev.segstore.meta;

import dev.segstore.adapter.ErrorCode;
import dev.segstore.client.MetaClient;
import dev.segstore.protocol.MetaMethods;
import dev.segstore.protocol.meta.DescribeClusterResponse;
import dev.segstore.protocol.meta.Empty;
import dev.segstore.protocol.meta.GroupOffset;
import dev.segstore.protocol.meta.NodeAssignments;
import dev.segstore.protocol.meta.NodeState;
import dev.segstore.protocol.meta.ProposeIsrRequest;
import dev.segstore.protocol.meta.Segment;
import dev.segstore.protocol.meta.ShardRoute;
import dev.segstore.protocol.meta.ShardSettings;
import dev.segstore.protocol.rpc.RpcClient;
import dev.segstore.protocol.rpc.RpcException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A real 3-node meta-service group (sofa-jraft) on loopback, in this JVM. */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class MetaClusterTest {
    private static final ShardSettings THREE = ShardSettings.newBuilder().setReplicaCount(3).setMinInSyncReplicas(2).build();

    static <T> T await(CompletableFuture<T> f) throws Exception {
        try {
            return f.get(MetaTestCluster.DEADLINE_MS, TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof Exception ex) {
                throw ex;
            }
            throw e;
        }
    }

    static RpcException rpcFailure(CompletableFuture<?> f) {
        ExecutionException e = assertThrows(ExecutionException.class, () -> f.get(MetaTestCluster.DEADLINE_MS, TimeUnit.MILLISECONDS));
        assertTrue(e.getCause() instanceof RpcException, "expected an RPC error, got " + e.getCause());
        return (RpcException) e.getCause();
    }

    private static Map<Integer, Long> registerStorageNodes(MetaClient client, int n) throws Exception {
        Map<Integer, Long> incarnations = new ConcurrentHashMap<>();
        for (int id = 1; id <= n; id++) {
            NodeAssignments a = await(client.registerNode(id, "127.0.0." + (10 + id), 9000 + id));
            incarnations.put(id, a.getNode().getIncarnation());
        }
        return incarnations;
    }

    @Test
    void shardsSurviveTheLossOfTheRaftLeader() throws Exception {
        try (MetaTestCluster cluster = new MetaTestCluster(3, 60_000, 300); MetaClient client = cluster.client()) {
            int leader = cluster.awaitLeader();
            registerStorageNodes(client, 3);
            int[] leaderships = new int[4];
            for (int i = 0; i < 21; i++) {
                ShardRoute route = await(client.createShard("orders-" + i, THREE));
                assertEquals(3, route.getSegments(0).getReplicasCount());
                assertEquals(route.getSegments(0).getReplicas(0), route.getSegments(0).getLeader());
                leaderships[route.getSegments(0).getLeader()]++;
            }
            assertEquals(List.of(7, 7, 7), List.of(leaderships[1], leaderships[2], leaderships[3]), "leaders spread evenly");
            assertEquals(ErrorCode.SHARD_EXISTS.code(), rpcFailure(client.createShard("orders-0", THREE)).code());
            long start = System.nanoTime();
            cluster.stop(leader);
            int newLeader = cluster.awaitLeader();
            System.out.printf("new meta leader after %.0f ms%n", (System.nanoTime() - start) / 1e6);
            assertTrue(newLeader != leader);
            for (int i = 0; i < 21; i++) {
                assertEquals("orders-" + i, await(client.route("orders-" + i)).getShard().getName());
            }
            assertEquals(21, await(client.listShards("orders-")).getShardsCount());
            await(client.createShard("after-failover", THREE));
            await(client.commitOffsets(List.of(GroupOffset.newBuilder().setGroup("g").setShard("orders-3").setOffset(42).build())));
            assertEquals(42, await(client.offset("g", "orders-3")).getOffset());
            assertFalse(await(client.offset("other", "orders-3")).getFound());
        }
    }

    /**
     * A leader that is closed (SIGTERM: the launcher's shutdown hook closes it) hands leadership to another peer
     * before it stops: a new leader is ready long before the followers' election timeout (2 s here) would even
     * let them start an election. Writes go on on the new leader.
     */
    @Test
    void aClosingLeaderHandsLeadershipOverBeforeAnElectionTimeout() throws Exception {
        int electionTimeoutMs = 2_000;
        try (MetaTestCluster cluster = new MetaTestCluster(3, 60_000, 300, electionTimeoutMs); MetaClient client = cluster.client()) {
            int leader = cluster.awaitLeader();
            registerStorageNodes(client, 3);
            await(client.createShard("before", THREE));
            long start = System.nanoTime();
            cluster.stop(leader);
            int next = cluster.awaitLeader();
            double ms = (System.nanoTime() - start) / 1e6;
            System.out.printf("meta leader %d closed; node %d leads (ready) %.0f ms after the close began (election timeout %d ms)%n",
                    leader, next, ms, electionTimeoutMs);
            assertTrue(next != leader);
            assertTrue(ms < electionTimeoutMs / 2.0, "a new leader took " + ms + " ms: no hand-over, an election after the timeout");
            await(client.createShard("after", THREE));
            assertEquals(2, await(client.listShards("")).getShardsCount());
        }
    }

    @Test
    void aRestartedNodeCatchesUpFromSnapshotAndLog() throws Exception {
        try (MetaTestCluster cluster = new MetaTestCluster(3, 60_000, 300); MetaClient client = cluster.client()) {
            int leader = cluster.awaitLeader();
            Map<Integer, Long> incarnations = registerStorageNodes(client, 4);
            for (int i = 0; i < 30; i++) {
                await(client.createShard("a-" + i, THREE));
            }
            int follower = cluster.runningFollower().orElseThrow();
            CompletableFuture<Void> snap = new CompletableFuture<>();
            cluster.server(follower).raft().node().snapshot(status -> {
                if (status.isOk()) {
                    snap.complete(null);
                } else {
                    snap.completeExceptionally(new AssertionError(status.toString()));
                }
            });
            await(snap);
            for (int i = 0; i < 10; i++) {
                await(client.createShard("b-" + i, THREE));
            }
            cluster.stop(follower);
            for (int i = 0; i < 10; i++) {
                await(client.createShard("c-" + i, THREE)); // entries it misses while down
            }
            CompletableFuture<?> deleted = client.deleteShard("a-0");
            // The storage nodes here are only registered: say for them that they applied the delete, so it finishes.
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (!deleted.isDone()) {
                assertTrue(System.nanoTime() < deadline, "the delete was not answered");
                for (int id = 1; id <= 4; id++) {
                    NodeAssignments a = await(client.heartbeat(id, incarnations.get(id), false, 0));
                    await(client.heartbeat(id, incarnations.get(id), false, a.getMetadataVersion()));
                }
            }
            await(deleted);
            cluster.start(follower);
            byte[] expected = cluster.server(leader).state().snapshot().toByteArray();
            MetaTestCluster.waitFor("the restarted node to catch up", () ->
                    Arrays.equals(expected, cluster.server(follower).state().snapshot().toByteArray()));
            assertEquals(49, cluster.server(follower).state().shardCount());
        }
    }

    @Test
    void staleIsrProposalsAreRejected() throws Exception {
        try (MetaTestCluster cluster = new MetaTestCluster(3, 60_000, 300); MetaClient client = cluster.client()) {
            cluster.awaitLeader();
            registerStorageNodes(client, 3);
            Segment s = await(client.createShard("isr", THREE)).getSegments(0);
            List<Integer> shrunk = List.of(s.getLeader(), s.getIsr(1) == s.getLeader() ? s.getIsr(2) : s.getIsr(1));
            ProposeIsrRequest.Builder p = ProposeIsrRequest.newBuilder().setShard("isr").setSequence(0)
                    .setLeader(s.getLeader()).setLeaderEpoch(s.getLeaderEpoch()).setIsrVersion(s.getIsrVersion()).addAllNewIsr(shrunk);
            Segment after = await(client.proposeIsr(p.build())).getSegment();
            assertEquals(shrunk, after.getIsrList());
            assertEquals(1, after.getIsrVersion());
            // The same proposal again (a leader that lost the answer) learns that it committed: nothing changes.
            assertEquals(after, await(client.proposeIsr(p.build())).getSegment());
            // Another ISR based on version 0 is stale.
            int third = s.getIsrList().stream().filter(n -> !shrunk.contains(n)).findFirst().orElseThrow();
            assertEquals(ErrorCode.FENCED_EPOCH.code(), rpcFailure(client.proposeIsr(p.clone().clearNewIsr()
                    .addNewIsr(s.getLeader()).addNewIsr(third).build())).code());
            // A wrong epoch is stale too.
            assertEquals(ErrorCode.FENCED_EPOCH.code(), rpcFailure(client.proposeIsr(p.setIsrVersion(1).setLeaderEpoch(5).build())).code());
            // An ISR without the leader is invalid.
            assertEquals(ErrorCode.INVALID_ARGUMENT.code(), rpcFailure(client.proposeIsr(p.setLeaderEpoch(0).clearNewIsr()
                    .addNewIsr(shrunk.get(1)).build())).code());
        }
    }

    @Test
    void controllerFailoverDuringAnElectionLeavesOneLeaderAndOneEpoch() throws Exception {
        ScheduledExecutorService heartbeats = Executors.newSingleThreadScheduledExecutor();
        try (MetaTestCluster cluster = new MetaTestCluster(3, 2_500, 300); MetaClient client = cluster.client()) {
            int leader = cluster.awaitLeader();
            Map<Integer, Long> inc = registerStorageNodes(client, 3);
            List<String> ledByOne = new ArrayList<>();
            for (int i = 0; i < 12; i++) {
                ShardRoute r = await(client.createShard("e-" + i, THREE));
                if (r.getSegments(0).getLeader() == 1) {
                    ledByOne.add("e-" + i);
                }
            }
            assertFalse(ledByOne.isEmpty(), "placement gave node 1 some leaderships");
            // Nodes 2 and 3 keep heartbeating; node 1 goes silent.
            heartbeats.scheduleAtFixedRate(() -> {
                client.heartbeat(2, inc.get(2));
                client.heartbeat(3, inc.get(3));
            }, 0, 300, TimeUnit.MILLISECONDS);
            // Kill the controller while node 1's session is running out: the new controller starts its
            // session afresh and fences node 1 itself.
            MetaTestCluster.waitFor("node 1's session to be close to expiry", timeAfter(System.nanoTime(), 2_000));
            cluster.stop(leader);
            int newLeader = cluster.awaitLeader();
            MetaTestCluster.waitFor("node 1 to be fenced", () -> cluster.server(newLeader).state().node(1)
                    .map(n -> n.getState() == NodeState.FENCED).orElse(false));
            for (String shard : ledByOne) {
                Segment s = await(client.route(shard)).getSegments(0);
                assertTrue(s.getLeader() == 2 || s.getLeader() == 3, shard + " led by " + s.getLeader());
                assertEquals(1, s.getLeaderEpoch(), shard + ": exactly one leader change, one epoch bump");
                assertFalse(s.getIsrList().contains(1), shard + " ISR " + s.getIsrList());
            }
            // Every running replica of the group holds the same state.
            byte[] expected = cluster.server(newLeader).state().snapshot().toByteArray();
            for (int i = 0; i < cluster.size(); i++) {
                if (cluster.server(i) != null) {
                    int n = i;
                    MetaTestCluster.waitFor("replica " + n + " to agree", () -> Arrays.equals(expected, cluster.server(n).state().snapshot().toByteArray()));
                }
            }
            // Node 1 comes back: a heartbeat is refused until it registers again, then it gets its assignments.
            assertEquals(ErrorCode.FENCED_EPOCH.code(), rpcFailure(client.heartbeat(1, inc.get(1))).code());
            NodeAssignments back = await(client.registerNode(1, "127.0.0.11", 9001));
            assertEquals(NodeState.ALIVE, back.getNode().getState());
            assertFalse(back.getSegmentsList().isEmpty());
        } finally {
            heartbeats.shutdownNow();
        }
    }

    private static java.util.function.BooleanSupplier timeAfter(long startNanos, long ms) {
        return () -> System.nanoTime() - startNanos >= ms * 1_000_000L;
    }

    @Test
    void followersNameTheLeaderAndBadInputGetsClearErrors() throws Exception {
        try (MetaTestCluster cluster = new MetaTestCluster(3, 60_000, 300);
             MetaClient client = cluster.client();
             RpcClient raw = new RpcClient()) {
            int leader = cluster.awaitLeader();
            int follower = cluster.runningFollower().orElseThrow();
            String followerAddress = cluster.rpcAddresses().get(follower);
            MetaTestCluster.waitFor("the follower to know the leader", () -> !cluster.server(follower).raft().leaderHint().isEmpty());
            RpcException notLeader = rpcFailure(raw.call(followerAddress, MetaMethods.DESCRIBE_CLUSTER, Empty.getDefaultInstance(),
                    DescribeClusterResponse.parser(), 5_000));
            assertEquals(ErrorCode.NOT_LEADER.code(), notLeader.code());
            assertEquals(cluster.rpcAddresses().get(leader), notLeader.leaderHint());

            assertEquals(ErrorCode.INVALID_ARGUMENT.code(), rpcFailure(client.createShard("../etc", THREE)).code());
            assertEquals(ErrorCode.INVALID_ARGUMENT.code(), rpcFailure(client.createShard("ok", THREE.toBuilder().setReplicaCount(0).build())).code());
            assertEquals(ErrorCode.NOT_ENOUGH_REPLICAS.code(), rpcFailure(client.createShard("ok", THREE)).code(), "no storage nodes yet");
            assertEquals(ErrorCode.SHARD_NOT_FOUND.code(), rpcFailure(client.route("missing")).code());
            assertEquals(ErrorCode.INVALID_ARGUMENT.code(), rpcFailure(raw.call(cluster.rpcAddresses().get(leader), "meta.NoSuchMethod",
                    Empty.getDefaultInstance(), Empty.parser(), 5_000)).code());
            // A garbage frame closes that connection only; the server keeps serving.
            try (java.net.Socket s = new java.net.Socket("127.0.0.1", Integer.parseInt(cluster.rpcAddresses().get(leader).split(":")[1]))) {
                s.getOutputStream().write(new byte[] {0, 0, 0, 5, (byte) 0xFF, (byte) 0xFF, (byte) 0xFF, (byte) 0xFF, (byte) 0xFF});
                s.getOutputStream().flush();
                assertEquals(-1, s.getInputStream().read(), "connection closed");
            }
            DescribeClusterResponse d = await(client.describeCluster());
            assertEquals(cluster.rpcAddresses().get(leader), d.getLeader());
            assertEquals(3, d.getPeersCount());
        }
    }
}
