package dev.segstore.node.server;

import dev.segstore.log.LogInspector;
import dev.segstore.log.LogRecord;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.stream.Stream;

/**
 * {@code segstore-log dump|verify PATH}: reads segment files without changing them, like Kafka's
 * {@code kafka-dump-log} ({@link LogInspector}). PATH is one replica's log directory ({@code <data.dir>/logs/<shard
 * id>-<sequence>}), a node's {@code logs/} directory, or its {@code data.dir}: every log under it. Safe on a running
 * node (the newest segment of a log in use may then end in a batch being written: a note, not a problem).
 */
@Command(name = "segstore-log", mixinStandardHelpOptions = true, versionProvider = dev.segstore.meta.server.MetaAdminMain.Version.class,
        description = "Dumps and verifies segment files (checksums, offsets, indexes, leader epochs).",
        subcommands = {LogToolMain.Dump.class, LogToolMain.Verify.class})
public final class LogToolMain {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    /** The log directories under {@code path}: itself if it is one, else those in it or in its {@code logs/}. */
    static List<Path> logs(Path path) throws IOException {
        if (!Files.exists(path)) {
            throw new IllegalArgumentException(path + " does not exist");
        }
        if (LogInspector.isLogDirectory(path)) {
            return List.of(path);
        }
        Path dir = Files.isDirectory(path.resolve("logs")) ? path.resolve("logs") : path;
        List<Path> out = new ArrayList<>();
        try (Stream<Path> s = Files.list(dir)) {
            for (Path p : s.sorted().toList()) {
                if (LogInspector.isLogDirectory(p)) {
                    out.add(p);
                }
            }
        }
        if (out.isEmpty()) {
            throw new IllegalArgumentException(path + " holds no segment log (a replica's log directory holds <base offset>.log files)");
        }
        return out;
    }

    /** "log 7-0 (shard id 7, segment 0)" for a storage node's replica directory, else the path. */
    static String describe(Path log) {
        String n = log.getFileName().toString();
        int dash = n.indexOf('-');
        if (dash > 0 && n.substring(0, dash).chars().allMatch(Character::isDigit) && n.substring(dash + 1).chars().allMatch(Character::isDigit)) {
            return log + " (shard id " + n.substring(0, dash) + ", segment " + n.substring(dash + 1) + ")";
        }
        return log.toString();
    }

    static void summary(PrintWriter out, LogInspector.Report r) {
        out.printf("  %d segment file(s), %d batch(es), %d record(s), %d bytes, offsets %s%n", r.segments(), r.batches(), r.records(),
                r.bytes(), r.startOffset() < 0 ? "none" : "[" + r.startOffset() + ", " + r.endOffset() + ")");
        r.notes().forEach(n -> out.println("  note: " + n));
        r.problems().forEach(p -> out.println("  PROBLEM: " + p));
    }

    @Command(name = "dump", description = "Prints every batch (and with --records every record) of the logs under PATH.")
    static final class Dump implements Callable<Integer> {
        @CommandLine.ParentCommand
        LogToolMain parent;

        @Parameters(paramLabel = "PATH", description = "a replica's log directory, a node's logs/ directory or its data.dir")
        Path path;

        @Option(names = "--records", description = "print each record too (offset, timestamp, key, tags, headers, payload size)")
        boolean records;

        @Option(names = "--payload", defaultValue = "0", description = "with --records: print up to this many bytes of each payload, as UTF-8 (default: ${DEFAULT-VALUE})")
        int payloadBytes;

        @Override
        public Integer call() throws IOException {
            PrintWriter out = parent.spec.commandLine().getOut();
            int problems = 0;
            for (Path log : logs(path)) {
                out.println("log " + describe(log));
                Path[] current = {null};
                LogInspector.Report r = LogInspector.inspect(log, records, b -> {
                    if (!b.segment().equals(current[0])) {
                        current[0] = b.segment();
                        out.println(" segment " + b.segment().getFileName());
                    }
                    out.printf("  baseOffset: %d lastOffset: %d count: %d epoch: %d producerId: %d baseSequence: %d firstTimestamp: %d "
                                    + "maxTimestamp: %d position: %d size: %d crc: 0x%08x%n", b.baseOffset(), b.lastOffset(), b.recordCount(),
                            b.leaderEpoch(), b.producerId(), b.baseSequence(), b.firstTimestamp(), b.maxTimestamp(), b.position(), b.size(), b.crc());
                    for (LogRecord rec : b.records()) {
                        out.printf("  | offset: %d timestamp: %d key: %s tags: %s headers: %d payload: %d bytes%s%n", rec.offset(), rec.timestamp(),
                                rec.key() == null ? "-" : rec.key(), rec.tags(), rec.headers().size(), rec.payload().length, preview(rec.payload()));
                    }
                });
                summary(out, r);
                problems += r.problems().size();
            }
            out.flush();
            return problems == 0 ? 0 : 1;
        }

        private String preview(byte[] payload) {
            if (payloadBytes <= 0) {
                return "";
            }
            int n = Math.min(payloadBytes, payload.length);
            return " '" + new String(payload, 0, n, StandardCharsets.UTF_8).replace("\n", "\\n") + (n < payload.length ? "...'" : "'");
        }
    }

    @Command(name = "verify", description = "Checks the logs under PATH; prints each problem; exit code 0 if none, 1 if any.")
    static final class Verify implements Callable<Integer> {
        @CommandLine.ParentCommand
        LogToolMain parent;

        @Parameters(paramLabel = "PATH", description = "a replica's log directory, a node's logs/ directory or its data.dir")
        Path path;

        @Override
        public Integer call() throws IOException {
            PrintWriter out = parent.spec.commandLine().getOut();
            int problems = 0;
            int logs = 0;
            for (Path log : logs(path)) {
                LogInspector.Report r = LogInspector.inspect(log, false, b -> { });
                out.println("log " + describe(log) + (r.ok() ? ": ok" : ": " + r.problems().size() + " problem(s)"));
                summary(out, r);
                problems += r.problems().size();
                logs++;
            }
            out.println(logs + " log(s) checked, " + problems + " problem(s)");
            out.flush();
            return problems == 0 ? 0 : 1;
        }
    }

    public static void main(String[] args) {
        CommandLine cl = new CommandLine(new LogToolMain());
        cl.setExecutionExceptionHandler((ex, line, parse) -> {
            line.getErr().println(ex.getMessage() != null ? ex.getMessage() : ex.toString());
            return 2;
        });
        System.exit(cl.execute(args));
    }
}
