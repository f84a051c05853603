package dev.segstore.node.server;

import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;

/** {@code storage-node --config node.properties}: runs one storage node until it is stopped. */
@Command(name = "segstore-node", mixinStandardHelpOptions = true, description = "Runs one segstore storage node.")
public final class StorageNodeMain implements Callable<Integer> {
    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(StorageNodeMain.class);
    @Option(names = "--config", required = true, description = "properties file (docs/configuration.md)")
    Path config;

    @Override
    public Integer call() throws Exception {
        NodeConfig c = NodeConfig.load(config);
        LOG.info("Starting storage node with {}", c);
        // Test-only (test.log.files.class): the fault runs' disk-fault layer; production runs on the real file system.
        dev.segstore.log.io.LogFiles files = TestLogFiles.fromSettings(config, c.dataDir());
        if (files != dev.segstore.log.io.RealLogFiles.INSTANCE) {
            LOG.warn("TEST ONLY: segment logs on the file layer {} ({})", files.getClass().getName(), TestLogFiles.KEY);
        }
        StorageNode node = StorageNode.start(c, StorageNode.PeerFaults.NONE, files);
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            // SIGTERM: hand the leaderships over first (bounded by controlled.shutdown.timeout.ms), then stop.
            try {
                node.shutdownGracefully();
            } finally {
                node.close();
            }
            stopped.countDown();
        }, "storage-node-shutdown"));
        stopped.await();
        return 0;
    }

    public static void main(String[] args) {
        CommandLine line = new CommandLine(new StorageNodeMain());
        line.setExecutionExceptionHandler((e, cl, parsed) -> {
            // A bad configuration, a missing file or a port in use is the operator's to fix: one clear line.
            if (e instanceof IllegalArgumentException || e instanceof java.io.IOException) {
                cl.getErr().println("segstore-node: " + (e instanceof java.nio.file.NoSuchFileException ? "no such file: " : "") + e.getMessage());
                return 2;
            }
            throw e;
        });
        System.exit(line.execute(args));
    }
}
