package dev.segstore.node.server;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code segstore-log}: finds the logs under a node's data directory, dumps batches and records, and verify's
 * exit code says whether anything is wrong (0 / 1; 2 for a path holding no log).
 */
class LogToolTest {
    @TempDir
    Path dataDir;

    /** A node data directory whose logs/ holds replica 7-0: two batches of 3 records, written by a real log. */
    private Path replica() {
        dev.segstore.log.LogDirectory d = dev.segstore.log.LogDirectory.open(dataDir.resolve("logs"), dev.segstore.log.DirectoryConfig.DEFAULT,
                dev.segstore.log.io.RealLogFiles.INSTANCE, () -> 1_000L);
        try {
            dev.segstore.log.SegmentLog log = d.openLog("7-0", dev.segstore.log.LogConfig.DEFAULT, 0);
            for (int b = 0; b < 2; b++) {
                List<dev.segstore.log.AppendRecord> records = List.of(
                        new dev.segstore.log.AppendRecord("k" + b, List.of("t"), 100, List.of(), ("hello-" + b + "-0").getBytes(StandardCharsets.UTF_8)),
                        dev.segstore.log.AppendRecord.of(101, ("hello-" + b + "-1").getBytes(StandardCharsets.UTF_8)),
                        dev.segstore.log.AppendRecord.of(102, ("hello-" + b + "-2").getBytes(StandardCharsets.UTF_8)));
                log.appendAsLeader(records, 2, dev.segstore.log.Durability.FSYNC).join();
            }
        } finally {
            d.close();
        }
        return dataDir.resolve("logs").resolve("7-0");
    }

    private record Run(int code, String out, String err) {
    }

    private static Run run(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        CommandLine cl = new CommandLine(new LogToolMain());
        cl.setOut(new PrintWriter(out));
        cl.setErr(new PrintWriter(err));
        cl.setExecutionExceptionHandler((ex, line, parse) -> {
            line.getErr().println(ex.getMessage());
            return 2;
        });
        int code = cl.execute(args);
        return new Run(code, out.toString(), err.toString());
    }

    @Test
    void dumpPrintsBatchesAndRecordsOfEveryLogUnderADataDirectory() {
        replica();
        Run r = run("dump", "--records", "--payload", "7", dataDir.toString());
        assertEquals(0, r.code(), r.out() + r.err());
        assertTrue(r.out().contains("(shard id 7, segment 0)"), r.out());
        assertTrue(r.out().contains("baseOffset: 3 lastOffset: 5 count: 3 epoch: 2"), r.out());
        assertTrue(r.out().contains("| offset: 3 timestamp: 100 key: k1 tags: [t] headers: 0 payload: 9 bytes 'hello-1...'"), r.out());
        assertTrue(r.out().contains("2 batch(es), 6 record(s)"), r.out());
    }

    @Test
    void verifyExitsOneAndNamesTheProblemWhenABitFlipped() throws IOException {
        Path log = replica();
        assertEquals(0, run("verify", log.toString()).code());
        Path segment = log.resolve("00000000000000000000.log");
        try (FileChannel ch = FileChannel.open(segment, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            ByteBuffer b = ByteBuffer.allocate(1);
            ch.read(b, 90);
            ch.write(ByteBuffer.wrap(new byte[]{(byte) (b.get(0) ^ 1)}), 90);
        }
        Run r = run("verify", dataDir.resolve("logs").toString());
        assertEquals(1, r.code(), r.out());
        assertTrue(r.out().contains("PROBLEM: 00000000000000000000.log: bad batch at position 24") && r.out().contains("checksum"), r.out());
        assertTrue(r.out().contains("1 log(s) checked, 1 problem(s)"), r.out());
    }

    @Test
    void aPathWithoutALogIsAClearError() throws IOException {
        Files.createDirectories(dataDir.resolve("empty"));
        Run r = run("verify", dataDir.resolve("empty").toString());
        assertEquals(2, r.code());
        assertTrue(r.err().contains("holds no segment log"), r.err());
    }
}
