package dev.segstore.it.raft;

import com.alipay.sofa.jraft.error.RemotingException;
import com.alipay.sofa.jraft.option.RpcOptions;
import com.alipay.sofa.jraft.rpc.InvokeCallback;
import com.alipay.sofa.jraft.rpc.InvokeContext;
import com.alipay.sofa.jraft.rpc.RpcClient;
import com.alipay.sofa.jraft.rpc.RpcRequests;
import com.alipay.sofa.jraft.util.Endpoint;
import com.alipay.sofa.jraft.util.RpcFactoryHelper;
import dev.segstore.client.MetaClient;
import dev.segstore.meta.server.MetaConfig;
import dev.segstore.meta.server.MetaPeer;
import dev.segstore.meta.server.MetaServer;
import dev.segstore.node.server.InJvmCluster;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Meta <-> meta Raft links cut in jraft's transport ({@link FaultyRaftRpcFactory}, {@link RaftLinkFaults}): the
 * wrapper alone against a scripted client, then a real 3-node meta-service group in the JVM (election timeout
 * 300 ms) whose leader is partitioned from the two others, and a one-way cut between the leader and a follower.
 * Metadata commands are storage-node registrations of made-up node ids (Raft commands the meta-service takes
 * without any storage node running).
 */
class RaftLinkFaultsTest {
    private static final long DEADLINE_MS = 20_000;
    private static final int ELECTION_MS = 300;

    @AfterEach
    void healAll() {
        RaftLinkFaults.healAll();
    }

    @Test
    void jraftTakesTheFaultyTransportOfTheTestClassPath() {
        assertInstanceOf(FaultyRaftRpcFactory.class, RpcFactoryHelper.rpcFactory(),
                "META-INF/services/com.alipay.sofa.jraft.rpc.RaftRpcFactory of integration-tests' test resources");
    }

    @Test
    void aCutLinkFailsItsRequestsAtOnceAndPassesEverythingElseUnchanged() throws Exception {
        List<Object> passed = new ArrayList<>();
        RpcClient client = new FaultyRaftRpcFactory.LinkFaultClient(new Recording(passed));
        Endpoint b = new Endpoint("127.0.0.1", 2);
        Object aToB = vote("127.0.0.1:1", "127.0.0.1:2::100");
        Object bToA = vote("127.0.0.1:2", "127.0.0.1:1");
        Object ping = RpcRequests.PingRequest.newBuilder().setSendTimestamp(1).build();
        InvokeCallback never = (result, err) -> {
            throw new AssertionError("the callback of a cut request must not run on the caller's stack");
        };

        client.invokeAsync(b, aToB, null, never, 1_000);
        assertSame(aToB, passed.get(0), "no rule: the request reaches bolt as it is");

        RaftLinkFaults.cut("127.0.0.1:1", "127.0.0.1:2");
        RemotingException lost = assertThrows(RemotingException.class, () -> client.invokeAsync(b, aToB, null, never, 1_000));
        assertTrue(lost.getMessage().contains("127.0.0.1:1 -> 127.0.0.1:2"), lost.getMessage());
        assertThrows(RemotingException.class, () -> client.invokeSync(b, aToB, null, 1_000));
        client.invokeAsync(b, bToA, null, never, 1_000);
        client.invokeSync(b, ping, null, 1_000);
        assertEquals(List.of(aToB, bToA, ping), passed, "only A -> B is cut: B -> A and requests naming no peers pass");

        RaftLinkFaults.heal("127.0.0.1:1", "127.0.0.1:2");
        client.invokeAsync(b, aToB, null, never, 1_000);
        assertEquals(4, passed.size());
    }

    @Test
    void theControlFileSetsTheRulesOfAProcess() throws Exception {
        Path file = Files.createTempDirectory("raft-links-").resolve(RaftLinkFaults.CONTROL);
        RaftLinkFaults.write(file, RaftLinkFaults.partition("127.0.0.1:1", List.of("127.0.0.1:2")));
        assertEquals(java.util.Set.of(new RaftLinkFaults.Link("127.0.0.1:1", "127.0.0.1:2"),
                new RaftLinkFaults.Link("127.0.0.1:2", "127.0.0.1:1")), RaftLinkFaults.read(file));
        RaftLinkFaults.write(file, List.of());
        assertTrue(RaftLinkFaults.read(file).isEmpty());
    }

    private static Object vote(String from, String to) {
        return RpcRequests.RequestVoteRequest.newBuilder().setGroupId("g").setServerId(from).setPeerId(to).setTerm(1)
                .setLastLogTerm(0).setLastLogIndex(0).setPreVote(true).build();
    }

    @Test
    @Timeout(value = 120, unit = TimeUnit.SECONDS)
    void aMetaLeaderCutFromBothOthersIsReplacedAndRejoinsWhenHealed() throws Exception {
        try (MetaGroup group = new MetaGroup(); MetaClient client = group.client()) {
            int old = group.awaitLeader();
            List<Integer> others = group.others(old);
            Object fault = new Object();
            RaftLinkFaults.cut(fault, RaftLinkFaults.partition(group.raft(old), others.stream().map(group::raft).toList()));

            InJvmCluster.waitFor("a new meta leader among " + others + " after meta node " + old + "'s Raft links were cut",
                    DEADLINE_MS, () -> others.stream().anyMatch(i -> group.server(i).isLeader()));
            InJvmCluster.waitFor("meta node " + old + ", cut off, to step down", DEADLINE_MS, () -> !group.server(old).isLeader());
            client.registerNode(7, "127.0.0.1", 10_007).get(DEADLINE_MS, TimeUnit.MILLISECONDS);
            int now = others.stream().filter(i -> group.server(i).isLeader()).findFirst().orElseThrow();
            assertTrue(group.server(now).state().node(7).isPresent(), "the new leader applied the registration");
            assertTrue(group.server(old).state().node(7).isEmpty(), "the cut-off node cannot have it");

            RaftLinkFaults.lift(fault);
            InJvmCluster.waitFor("meta node " + old + " to rejoin: follow a leader and apply the registration", DEADLINE_MS,
                    () -> group.server(old).state().node(7).isPresent() && !group.server(old).raft().leaderHint().isEmpty());
            client.registerNode(8, "127.0.0.1", 10_008).get(DEADLINE_MS, TimeUnit.MILLISECONDS);
            InJvmCluster.waitFor("every meta node to apply a registration after the heal", DEADLINE_MS,
                    () -> group.all().stream().allMatch(i -> group.server(i).state().node(8).isPresent()));
        }
    }

    @Test
    @Timeout(value = 120, unit = TimeUnit.SECONDS)
    void oneWayTheFollowerLosesTheLeaderTheOtherWayItKeepsIt() throws Exception {
        try (MetaGroup group = new MetaGroup(); MetaClient client = group.client()) {
            int leader = group.awaitLeader();
            int follower = group.others(leader).get(0);
            int other = group.others(leader).get(1);
            Object fault = new Object();
            // The leader's requests to the follower are lost; the follower's requests to the leader pass.
            RaftLinkFaults.cut(fault, List.of(new RaftLinkFaults.Link(group.raft(leader), group.raft(follower))));
            InJvmCluster.waitFor("meta node " + follower + " to lose its leader (no append entries from " + leader + ")",
                    DEADLINE_MS, () -> group.server(follower).raft().leaderHint().isEmpty());
            client.registerNode(7, "127.0.0.1", 10_007).get(DEADLINE_MS, TimeUnit.MILLISECONDS);
            InJvmCluster.waitFor("meta node " + other + " to apply the registration", DEADLINE_MS,
                    () -> group.server(other).state().node(7).isPresent());
            assertTrue(group.server(follower).state().node(7).isEmpty(), "the leader's entries do not reach meta node " + follower);
            assertTrue(group.server(leader).isLeader(), "a follower that cannot hear the leader does not depose it (pre-vote)");

            // The other way: the follower's requests to the leader are lost, the leader's entries reach it.
            RaftLinkFaults.lift(fault);
            RaftLinkFaults.cut(fault, List.of(new RaftLinkFaults.Link(group.raft(follower), group.raft(leader))));
            client.registerNode(8, "127.0.0.1", 10_008).get(DEADLINE_MS, TimeUnit.MILLISECONDS);
            InJvmCluster.waitFor("meta node " + follower + " to follow again and apply both registrations", DEADLINE_MS,
                    () -> group.server(follower).state().node(8).isPresent() && group.server(follower).state().node(7).isPresent()
                            && !group.server(follower).raft().leaderHint().isEmpty());
            assertFalse(RaftLinkFaults.cutLinks().isEmpty());
        }
    }

    /** A bolt client stand-in that records what reaches it. */
    private record Recording(List<Object> passed) implements RpcClient {
        @Override
        public boolean init(RpcOptions opts) {
            return true;
        }

        @Override
        public void shutdown() {
        }

        @Override
        public boolean checkConnection(Endpoint endpoint) {
            return true;
        }

        @Override
        public boolean checkConnection(Endpoint endpoint, boolean createIfAbsent) {
            return true;
        }

        @Override
        public void closeConnection(Endpoint endpoint) {
        }

        @Override
        public void registerConnectEventListener(com.alipay.sofa.jraft.ReplicatorGroup replicatorGroup) {
        }

        @Override
        public Object invokeSync(Endpoint endpoint, Object request, InvokeContext ctx, long timeoutMs) {
            passed.add(request);
            return null;
        }

        @Override
        public void invokeAsync(Endpoint endpoint, Object request, InvokeContext ctx, InvokeCallback callback, long timeoutMs) {
            passed.add(request);
        }
    }

    /** Three meta-service nodes on loopback in this JVM, no storage node. */
    private static final class MetaGroup implements AutoCloseable {
        private final Path root = Files.createTempDirectory("raft-links-");
        private final List<MetaServer> servers = new ArrayList<>();
        private final List<MetaPeer> peers = new ArrayList<>();

        MetaGroup() throws Exception {
            // A port found free can be taken by another socket before we bind it: pick new ports and try again.
            for (int attempt = 1; servers.isEmpty(); attempt++) {
                peers.clear();
                for (int i = 0; i < 3; i++) {
                    peers.add(new MetaPeer("127.0.0.1", freePort(), freePort()));
                }
                try {
                    for (int i = 0; i < 3; i++) {
                        servers.add(MetaServer.start(new MetaConfig(peers.get(i), peers, root.resolve("a" + attempt + "-meta-" + i),
                                ELECTION_MS, 300, 60_000)));
                    }
                } catch (Exception e) {
                    servers.forEach(MetaServer::close);
                    servers.clear();
                    if (attempt == 3) {
                        throw e;
                    }
                }
            }
        }

        private static int freePort() throws java.io.IOException {
            try (ServerSocket s = new ServerSocket(0)) {
                return s.getLocalPort();
            }
        }

        MetaClient client() {
            return new MetaClient(peers.stream().map(MetaPeer::rpcAddress).toList(), 1_000, DEADLINE_MS);
        }

        MetaServer server(int i) {
            return servers.get(i);
        }

        String raft(int i) {
            return peers.get(i).raftAddress();
        }

        List<Integer> all() {
            return List.of(0, 1, 2);
        }

        List<Integer> others(int i) {
            return all().stream().filter(j -> j != i).toList();
        }

        /**
         * The leader, once both other meta nodes follow it: a follower that has not heard from a new leader yet shows
         * no leader, which a test that waits for a cut-off follower to lose its leader would take for the cut's effect
         * (and that follower may then win an election the cut was to keep it out of).
         */
        int awaitLeader() {
            int[] leader = {-1};
            InJvmCluster.waitFor("a meta leader that both other meta nodes follow", DEADLINE_MS, () -> {
                for (int i = 0; i < 3; i++) {
                    if (servers.get(i).isLeader()) {
                        String address = peers.get(i).rpcAddress();
                        leader[0] = i;
                        return others(i).stream().allMatch(j -> address.equals(servers.get(j).raft().leaderHint()));
                    }
                }
                return false;
            });
            return leader[0];
        }

        @Override
        public void close() throws Exception {
            RaftLinkFaults.healAll(); // closing hands leadership over, which a cut link would hold up
            servers.forEach(MetaServer::close);
            InJvmCluster.deleteTree(root);
        }
    }
}
