package dev.segstore.log;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.BooleanSupplier;

/** Helpers shared by the segment-log tests. */
final class LogFixtures {
    static final Duration DEADLINE = Duration.ofSeconds(30);

    private LogFixtures() {
    }

    static AppendRecord record(long timestamp, String payload) {
        return AppendRecord.of(timestamp, payload.getBytes(StandardCharsets.UTF_8));
    }

    static List<AppendRecord> records(int n, long firstTimestamp, String prefix) {
        List<AppendRecord> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            out.add(record(firstTimestamp + i, prefix + i));
        }
        return out;
    }

    static String text(LogRecord r) {
        return new String(r.payload(), StandardCharsets.UTF_8);
    }

    static <T> T await(CompletableFuture<T> f) {
        try {
            return f.get(DEADLINE.toMillis(), TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof RuntimeException re) {
                throw re;
            }
            throw new AssertionError(e.getCause());
        } catch (InterruptedException | TimeoutException e) {
            throw new AssertionError("no answer within " + DEADLINE, e);
        }
    }

    static AppendResult append(SegmentLog log, List<AppendRecord> records, int epoch, Durability d) {
        AppendResult r = await(log.appendAsLeader(records, epoch, d));
        if (!r.appended()) {
            throw new AssertionError("append refused: " + r);
        }
        return r;
    }

    /** Waits for {@code condition} with a deadline, polling briefly (never a fixed sleep). */
    static void waitFor(String what, BooleanSupplier condition) {
        long end = System.nanoTime() + DEADLINE.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > end) {
                throw new AssertionError("timed out waiting for " + what);
            }
            Thread.onSpinWait();
            Thread.yield();
        }
    }

    static List<LogRecord> readAll(SegmentLog log) {
        List<LogRecord> out = new ArrayList<>();
        long offset = log.logStartOffset();
        while (offset < log.writtenEndOffset()) {
            List<LogRecord> chunk = log.read(offset, 1000, 1 << 20, Long.MAX_VALUE);
            if (chunk.isEmpty()) {
                break;
            }
            out.addAll(chunk);
            offset = chunk.get(chunk.size() - 1).offset() + 1;
        }
        return out;
    }
}
