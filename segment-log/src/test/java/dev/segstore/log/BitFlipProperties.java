package dev.segstore.log;

import dev.segstore.log.io.RealLogFiles;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.lifecycle.AfterTry;
import net.jqwik.api.lifecycle.BeforeTry;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Media corruption: a log is written and closed cleanly, then one random bit of one of its files flips.
 * The property: a flip inside a segment file is always detected (opening or reading the log fails with
 * CORRUPT_DATA, never returns different data), and a flip in an index or checkpoint file either is detected
 * or is repaired (the read returns exactly what was written). Seeds are printed by jqwik and in failures.
 */
class BitFlipProperties {
    private Path root;

    @BeforeTry
    void createRoot() throws IOException {
        root = Files.createTempDirectory("flip-");
    }

    @AfterTry
    void deleteRoot() throws IOException {
        try (Stream<Path> s = Files.walk(root)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }

    @Provide
    Arbitrary<Long> seeds() {
        return Arbitraries.longs();
    }

    @Property(tries = 1500)
    void everyFlippedBitIsDetectedOrHarmless(@ForAll("seeds") long seed) throws Exception {
        Random random = new Random(seed);
        LogConfig config = LogConfig.DEFAULT.withSegmentBytes(64 * 1024).withIndexIntervalBytes(64 + random.nextInt(1024));
        List<byte[]> payloads = new ArrayList<>();
        List<Long> timestamps = new ArrayList<>();
        try (LogDirectory directory = LogDirectory.open(root, DirectoryConfig.DEFAULT, RealLogFiles.INSTANCE, () -> 0L)) {
            SegmentLog log = directory.openLog("p", config, 0);
            int batches = 1 + random.nextInt(40);
            for (int b = 0; b < batches; b++) {
                List<AppendRecord> batch = new ArrayList<>();
                for (int i = 1 + random.nextInt(4); i > 0; i--) {
                    byte[] payload = new byte[random.nextInt(random.nextInt(8) == 0 ? 6000 : 200)];
                    random.nextBytes(payload);
                    long ts = random.nextInt(100_000);
                    batch.add(new AppendRecord(random.nextBoolean() ? "k" + random.nextInt(10) : null,
                            random.nextBoolean() ? List.of("t" + random.nextInt(3)) : List.of(), ts, List.of(), payload));
                    payloads.add(payload);
                    timestamps.add(ts);
                }
                LogFixtures.append(log, batch, b / 10, random.nextBoolean() ? Durability.FSYNC : Durability.PAGE_CACHE);
            }
        }
        Path dir = root.resolve("p");
        List<Path> candidates;
        try (Stream<Path> s = Files.list(dir)) {
            candidates = s.filter(p -> Files.isRegularFile(p)).sorted().toList();
        }
        List<Path> nonEmpty = candidates.stream().filter(p -> p.toFile().length() > 0).toList();
        Path victim = nonEmpty.get(random.nextInt(nonEmpty.size()));
        long length = victim.toFile().length();
        long position = random.nextLong(length);
        int bit = random.nextInt(8);
        try (RandomAccessFile f = new RandomAccessFile(victim.toFile(), "rw")) {
            f.seek(position);
            int b = f.read();
            f.seek(position);
            f.write(b ^ (1 << bit));
        }
        String context = "seed " + seed + ": flipped bit " + bit + " of byte " + position + " in " + victim.getFileName();
        boolean segmentFile = victim.getFileName().toString().endsWith(".log");

        try (LogDirectory directory = LogDirectory.open(root, DirectoryConfig.DEFAULT, RealLogFiles.INSTANCE, () -> 0L)) {
            List<LogRecord> back;
            List<Long> found = new ArrayList<>();
            long[] probes = {0, random.nextInt(100_000), random.nextInt(100_000), 99_999};
            try {
                SegmentLog log = directory.openLog("p", config, 0);
                back = LogFixtures.readAll(log);
                for (long t : probes) {
                    found.add(log.offsetForTimestamp(t, Long.MAX_VALUE).orElse(-1));
                }
            } catch (LogException e) {
                assertEquals(LogException.Kind.CORRUPT_DATA, e.kind(), context + ": " + e);
                return; // detected
            }
            if (segmentFile) {
                fail(context + ": not detected; read " + back.size() + " records");
            }
            assertEquals(payloads.size(), back.size(), context);
            for (int i = 0; i < back.size(); i++) {
                assertEquals(i, back.get(i).offset(), context);
                assertEquals(timestamps.get(i), back.get(i).timestamp(), context);
                assertArrayEquals(payloads.get(i), back.get(i).payload(), context);
            }
            for (int p = 0; p < probes.length; p++) {
                long expected = -1;
                for (int i = 0; i < timestamps.size() && expected < 0; i++) {
                    if (timestamps.get(i) >= probes[p]) {
                        expected = i;
                    }
                }
                assertEquals(expected, found.get(p), context + ": offsetForTimestamp(" + probes[p] + ")");
            }
        }
    }

    /**
     * Damaged files of a cleanly closed log: one file cut short at a random length, overwritten with random
     * bytes, or deleted. Opening and reading never throws anything but a {@link LogException} of kind CORRUPT_DATA, and
     * never returns records that differ from what was written (a lost index is rebuilt).
     */
    @Property(tries = 400)
    void truncatedOrGarbageFilesGiveClearErrors(@ForAll("seeds") long seed) throws Exception {
        Random random = new Random(seed);
        LogConfig config = LogConfig.DEFAULT.withSegmentBytes(64 * 1024).withIndexIntervalBytes(128);
        List<byte[]> payloads = new ArrayList<>();
        try (LogDirectory directory = LogDirectory.open(root, DirectoryConfig.DEFAULT, RealLogFiles.INSTANCE, () -> 0L)) {
            SegmentLog log = directory.openLog("p", config, 0);
            for (int b = 1 + random.nextInt(60); b > 0; b--) {
                byte[] payload = new byte[random.nextInt(3000)];
                random.nextBytes(payload);
                payloads.add(payload);
                LogFixtures.append(log, List.of(AppendRecord.of(b, payload)), 0, Durability.PAGE_CACHE);
            }
        }
        List<Path> files;
        try (Stream<Path> s = Files.list(root.resolve("p"))) {
            files = s.sorted().toList();
        }
        Path victim = files.get(random.nextInt(files.size()));
        byte[] bytes = Files.readAllBytes(victim);
        int mode = random.nextInt(3);
        boolean garbage = mode == 0;
        if (mode == 2) {
            Files.delete(victim);
        } else if (garbage) {
            bytes = new byte[random.nextInt(200)];
            random.nextBytes(bytes);
        } else {
            bytes = java.util.Arrays.copyOf(bytes, bytes.length == 0 ? 0 : random.nextInt(bytes.length));
        }
        if (mode != 2) {
            Files.write(victim, bytes);
        }
        String context = "seed " + seed + ": " + (mode == 2 ? "deleted " : garbage ? "garbage in " : "cut ")
                + victim.getFileName() + " to " + bytes.length + " bytes";
        try (LogDirectory directory = LogDirectory.open(root, DirectoryConfig.DEFAULT, RealLogFiles.INSTANCE, () -> 0L)) {
            List<LogRecord> back;
            long start;
            try {
                SegmentLog log = directory.openLog("p", config, 0);
                start = log.logStartOffset();
                back = LogFixtures.readAll(log);
            } catch (LogException e) {
                assertEquals(LogException.Kind.CORRUPT_DATA, e.kind(), context + ": " + e);
                return;
            }
            // Deleting the oldest segment file is what retention does: the log then starts later. Documented.
            boolean oldestSegmentDeleted = mode == 2 && victim.getFileName().toString().equals(files.get(0).getFileName().toString());
            if (!oldestSegmentDeleted) {
                assertEquals(0, start, context);
            }
            assertEquals(payloads.size() - start, back.size(), context + ": damage went unnoticed");
            for (LogRecord r : back) {
                assertArrayEquals(payloads.get((int) r.offset()), r.payload(), context + " offset " + r.offset());
            }
        }
    }
}
