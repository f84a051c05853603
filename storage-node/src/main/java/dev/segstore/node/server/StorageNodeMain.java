package dev.segstore.node.server;

import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;

/** {@code storage-node --config node.properties}: runs one storage node until it is stopped. */
@Command(name = "storage-node", mixinStandardHelpOptions = true, description = "Runs one segstore storage node.")
public final class StorageNodeMain implements Callable<Integer> {
    @Option(names = "--config", required = true, description = "properties file (docs/configuration.md)")
    Path config;

    @Override
    public Integer call() throws Exception {
        StorageNode node = StorageNode.start(NodeConfig.load(config));
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            node.close();
            stopped.countDown();
        }, "storage-node-shutdown"));
        stopped.await();
        return 0;
    }

    public static void main(String[] args) {
        System.exit(new CommandLine(new StorageNodeMain()).execute(args));
    }
}
