package dev.segstore.meta.server;

import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;

/** {@code meta-server --config meta.properties}: runs one meta-service node until it is stopped. */
@Command(name = "segstore-meta", mixinStandardHelpOptions = true,
        description = "Runs one node of the segstore meta-service (a sofa-jraft group).")
public final class MetaServerMain implements Callable<Integer> {
    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(MetaServerMain.class);
    @Option(names = "--config", required = true, description = "properties file (docs/configuration.md)")
    Path config;

    @Override
    public Integer call() throws Exception {
        MetaConfig c = MetaConfig.load(config);
        LOG.info("Starting meta node with {}", c);
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
        CommandLine line = new CommandLine(new MetaServerMain());
        line.setExecutionExceptionHandler((e, cl, parsed) -> {
            // A bad configuration, a missing file or a port in use is the operator's to fix: one clear line.
            if (e instanceof IllegalArgumentException || e instanceof java.io.IOException) {
                cl.getErr().println("segstore-meta: " + (e instanceof java.nio.file.NoSuchFileException ? "no such file: " : "") + e.getMessage());
                return 2;
            }
            throw e;
        });
        System.exit(line.execute(args));
    }
}
