package dev.segstore.node.server;

import dev.segstore.adapter.NewRecord;
import dev.segstore.adapter.ShardFilter;
import dev.segstore.adapter.ShardInfo;
import dev.segstore.adapter.StorageAdapter;
import dev.segstore.adapter.StoredRecord;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/**
 * Writers for cluster tests: each writes its own numbered records ({@code w<writer>-<i>}) to one shard through an
 * adapter, one at a time, and remembers what was acknowledged (offset to payload); from {@link #watchGapsFromNow}
 * on they measure the longest pause between two acknowledgements (how long a fault or a restart stalled writes).
 * {@link #verifyReadBack} checks that every acknowledged record reads back at its offset, and no payload twice.
 * Shared with integration-tests through this module's test-jar.
 */
public final class AckedWriters {
    private final StorageAdapter adapter;
    private final String shard;
    private final int writers;
    private final Map<Long, String> acked = new ConcurrentHashMap<>();
    private final AtomicLong lastAckNanos = new AtomicLong(System.nanoTime());
    private final List<CompletableFuture<Void>> loops = new ArrayList<>();
    private volatile long longestGapNanos;
    private volatile long gapWatchFrom = Long.MAX_VALUE;
    private volatile boolean stop;

    public AckedWriters(StorageAdapter adapter, String shard, int writers) {
        this.adapter = adapter;
        this.shard = shard;
        this.writers = writers;
    }

    public void start() {
        for (int w = 0; w < writers; w++) {
            int writer = w;
            loops.add(CompletableFuture.runAsync(() -> {
                for (int i = 0; !stop; i++) {
                    String payload = "w" + writer + "-" + i;
                    long offset = adapter.write(shard, NewRecord.of(System.currentTimeMillis(), payload.getBytes(StandardCharsets.UTF_8))).join();
                    acked.put(offset, payload);
                    long now = System.nanoTime();
                    long before = lastAckNanos.getAndSet(now);
                    if (before >= gapWatchFrom) {
                        longestGapNanos = Math.max(longestGapNanos, now - before);
                    } else if (now >= gapWatchFrom) {
                        longestGapNanos = Math.max(longestGapNanos, now - gapWatchFrom);
                    }
                }
            }));
        }
    }

    /** Pauses between acknowledgements count from now on (a pause that began earlier counts from now); earlier ones are forgotten. */
    public void watchGapsFromNow() {
        longestGapNanos = 0;
        gapWatchFrom = System.nanoTime();
    }

    /** The longest pause between two acknowledgements since {@link #watchGapsFromNow}, in ms. */
    public double longestGapMs() {
        return longestGapNanos / 1e6;
    }

    public int ackedCount() {
        return acked.size();
    }

    /** Offset to payload of every acknowledged write so far. */
    public Map<Long, String> acked() {
        return Map.copyOf(acked);
    }

    public void awaitAcked(int n, long timeoutMs) {
        InJvmCluster.waitFor(n + " acknowledged writes (have " + acked.size() + ")", timeoutMs, () -> acked.size() >= n);
    }

    /** Stops the writers after their current write; a writer whose write failed throws here. */
    public void stopAndJoin() {
        stop = true;
        loops.forEach(CompletableFuture::join);
    }

    /**
     * Reads the whole shard back and checks that every acknowledged record is at its offset with its payload and
     * that no payload is stored twice; returns how many records the shard holds.
     */
    public static int verifyReadBack(StorageAdapter adapter, String shard, Map<Long, String> acked) throws Exception {
        long end = adapter.listShards(ShardFilter.all()).get(60, TimeUnit.SECONDS).stream()
                .filter(s -> s.config().name().equals(shard)).findFirst().map(ShardInfo::logEndOffset).orElseThrow();
        Map<Long, String> read = new HashMap<>();
        Map<String, Long> seen = new HashMap<>();
        long offset = 0;
        while (offset < end) {
            List<StoredRecord> page = adapter.readByOffset(shard, offset, 1000).get(60, TimeUnit.SECONDS);
            assertFalse(page.isEmpty(), "a read below the log end " + end + " came back empty at " + offset);
            for (StoredRecord r : page) {
                String p = new String(r.payload(), StandardCharsets.UTF_8);
                Long before = seen.put(p, r.offset());
                assertEquals(null, before, "payload " + p + " stored twice: at " + before + " and " + r.offset());
                read.put(r.offset(), p);
            }
            offset = page.get(page.size() - 1).offset() + 1;
        }
        for (Map.Entry<Long, String> e : acked.entrySet()) {
            assertEquals(e.getValue(), read.get(e.getKey()), "acknowledged record at offset " + e.getKey());
        }
        return read.size();
    }
}
