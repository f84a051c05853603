package dev.segstore.node.server;

import dev.segstore.client.MetaClient;
import dev.segstore.log.DirectoryConfig;
import dev.segstore.log.LogConfig;
import dev.segstore.meta.server.MetaConfig;
import dev.segstore.meta.server.MetaPeer;
import dev.segstore.meta.server.MetaServer;
import dev.segstore.protocol.meta.DescribeClusterResponse;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/**
 * A storage node started before the meta-service can elect a leader (a cluster started all at once on a busy
 * machine) must wait for it, not exit: the node once made one registration call, gave up after the meta
 * client's 10 s deadline and its process ended, which left a cluster of processes one node short for good.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class NodeStartupTest {

    @Test
    void aNodeStartedBeforeTheMetaServiceKeepsTryingAndRegistersOnceItIsUp(@TempDir Path dir) throws Exception {
        // The meta ports stay bound (not listening: connections are refused) until the group starts, so that
        // nothing else takes them in the meantime, the storage node's own port included.
        List<SocketChannel> reserved = new ArrayList<>();
        for (int i = 0; i < 6; i++) {
            reserved.add(SocketChannel.open().bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0)));
        }
        List<MetaPeer> peers = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            peers.add(new MetaPeer("127.0.0.1", port(reserved.get(2 * i)), port(reserved.get(2 * i + 1))));
        }
        List<String> metaAddresses = peers.stream().map(MetaPeer::rpcAddress).toList();
        List<MetaServer> metas = new ArrayList<>();
        StorageNode node = StorageNode.start(new NodeConfig(1, "127.0.0.1", 0, dir.resolve("node-1"), metaAddresses, 200, 1_000,
                DirectoryConfig.DEFAULT, LogConfig.DEFAULT, NodeConfig.DEFAULT_OWNER_THREADS, 0));
        try (MetaClient client = new MetaClient(metaAddresses, 2_000, 60_000)) {
            // Nothing listens at the meta addresses yet: an attempt fails once the meta client's deadline passes.
            InJvmCluster.waitFor("a failed registration", 60_000, () -> node.registrationFailures() >= 1);
            assertFalse(node.registered());

            for (SocketChannel r : reserved) {
                r.close();
            }
            for (int i = 0; i < 3; i++) {
                metas.add(MetaServer.start(new MetaConfig(peers.get(i), peers, dir.resolve("meta-" + i), 600, 300, 2_000, 0)));
            }
            InJvmCluster.waitFor("the node to register", 60_000, node::registered);

            DescribeClusterResponse cluster = client.describeCluster().get(30, TimeUnit.SECONDS);
            assertEquals(1, cluster.getNodesCount(), cluster.toString());
            assertEquals(1, cluster.getNodes(0).getNodeId());
            assertEquals(node.port(), cluster.getNodes(0).getPort(), "the node registered the port it serves on");
        } finally {
            for (SocketChannel r : reserved) {
                r.close();
            }
            node.close();
            metas.forEach(MetaServer::close);
        }
    }

    private static int port(SocketChannel c) throws java.io.IOException {
        return ((InetSocketAddress) c.getLocalAddress()).getPort();
    }
}
