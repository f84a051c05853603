package dev.segstore.node.server;

import dev.segstore.meta.server.MetaConfig;
import dev.segstore.meta.server.MetaServer;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;

/**
 * {@code segstore-server --meta-config meta.properties --node-config node.properties}: combined mode (as Kafka's
 * KRaft combined mode): one process runs a meta-service node and a storage node, each with its own configuration
 * file, ports and data directory, exactly as {@code segstore-meta} and {@code segstore-node} would run them apart.
 * So a 3-machine cluster is 3 processes. The meta node starts first (a storage node registers with the group);
 * on SIGTERM the storage node hands its leaderships over and stops, then the meta node transfers its Raft
 * leadership and stops.
 */
@Command(name = "segstore-server", mixinStandardHelpOptions = true,
        description = "Runs a segstore meta-service node and a storage node in one process (combined mode).")
public final class CombinedServerMain implements Callable<Integer> {
    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(CombinedServerMain.class);
    @Option(names = "--meta-config", required = true, description = "the meta node's properties file (docs/configuration.md)")
    Path metaConfig;
    @Option(names = "--node-config", required = true, description = "the storage node's properties file (docs/configuration.md)")
    Path nodeConfig;

    @Override
    public Integer call() throws Exception {
        MetaConfig m = MetaConfig.load(metaConfig);
        NodeConfig n = NodeConfig.load(nodeConfig); // both read before anything starts: a bad file starts nothing
        LOG.info("Starting meta node with {}", m);
        MetaServer meta = MetaServer.start(m);
        StorageNode node;
        try {
            LOG.info("Starting storage node with {}", n);
            dev.segstore.log.io.LogFiles files = TestLogFiles.fromSettings(nodeConfig, n.dataDir());
            if (files != dev.segstore.log.io.RealLogFiles.INSTANCE) {
                LOG.warn("TEST ONLY: segment logs on the file layer {} ({})", files.getClass().getName(), TestLogFiles.KEY);
            }
            node = StorageNode.start(n, StorageNode.PeerFaults.NONE, files);
        } catch (Exception | Error e) {
            meta.close();
            throw e;
        }
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.shutdownGracefully(); // its leaderships move while the meta node still serves
            } finally {
                node.close();
                meta.close();
            }
            stopped.countDown();
        }, "server-shutdown"));
        stopped.await();
        return 0;
    }

    public static void main(String[] args) {
        CommandLine line = new CommandLine(new CombinedServerMain());
        line.setExecutionExceptionHandler((e, cl, parsed) -> {
            // A bad configuration, a missing file or a port in use is the operator's to fix: one clear line.
            if (e instanceof IllegalArgumentException || e instanceof java.io.IOException) {
                cl.getErr().println("segstore-server: " + (e instanceof java.nio.file.NoSuchFileException ? "no such file: " : "") + e.getMessage());
                return 2;
            }
            throw e;
        });
        System.exit(line.execute(args));
    }
}
