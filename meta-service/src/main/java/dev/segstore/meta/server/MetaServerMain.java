package dev.segstore.meta.server;

import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;

/** {@code meta-server --config meta.properties}: runs one meta-service node until it is stopped. */
@Command(name = "meta-server", mixinStandardHelpOptions = true,
        description = "Runs one node of the segstore meta-service (a sofa-jraft group).")
public final class MetaServerMain implements Callable<Integer> {
    @Option(names = "--config", required = true, description = "properties file (docs/configuration.md)")
    Path config;

    @Override
    public Integer call() throws Exception {
        MetaConfig c = MetaConfig.load(config);
        MetaServer server = MetaServer.start(c);
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            server.close();
            stopped.countDown();
        }, "meta-shutdown"));
        stopped.await();
        return 0;
    }

    public static void main(String[] args) {
        System.exit(new CommandLine(new MetaServerMain()).execute(args));
    }
}
