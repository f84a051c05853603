package dev.segstore.it;

import dev.segstore.node.server.InJvmCluster;

import dev.segstore.adapter.NewRecord;
import dev.segstore.adapter.StoredRecord;
import dev.segstore.adapter.ShardConfig;
import dev.segstore.client.MetaClient;
import dev.segstore.client.SegmentStorageAdapter;
import dev.segstore.protocol.meta.DurabilityMode;
import dev.segstore.protocol.meta.ShardRoute;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

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
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Failover end to end, through the adapter, against a cluster of processes: while writers write with acks=all
 * (3 replicas, min ISR 2), the leading storage node, or the meta-service's Raft leader, is killed with
 * SIGKILL. Every acknowledged record must read back afterwards at its offset with its payload, no payload
 * twice, and the writes must resume on their own. Prints how long writes stalled.
 */
@Timeout(value = 240, unit = TimeUnit.SECONDS)
class SegmentFailoverTest {
    private static final int WRITERS = 8;
    private ProcessCluster cluster;
    private SegmentStorageAdapter adapter;
    private MetaClient meta;

    @BeforeEach
    void start() throws Exception {
        cluster = new ProcessCluster();
        meta = new MetaClient(cluster.metaRpcAddresses, 2_000, 60_000);
        adapter = new SegmentStorageAdapter(new SegmentStorageAdapter.Settings(cluster.metaRpcAddresses, 60_000, 2_000, DurabilityMode.FSYNC));
        // Wait until the three storage nodes registered (the first create needs three live nodes).
        cluster.awaitThreeLiveNodes(meta, "three storage nodes", 90_000);
        adapter.createShard(ShardConfig.of("orders", SegmentStorageAdapter.STORAGE_TYPE).withReplication(3, 2)).get(60, TimeUnit.SECONDS);
    }

    @AfterEach
    void stop() throws Exception {
        if (adapter != null) {
            adapter.close();
        }
        if (meta != null) {
            meta.close();
        }
        if (cluster != null) {
            cluster.close();
        }
    }

    /** Writers that each write their own numbered records, one at a time, and remember what was acknowledged. */
    private final class Writers {
        final Map<Long, String> acked = new ConcurrentHashMap<>();
        final AtomicLong lastAckNanos = new AtomicLong(System.nanoTime());
        volatile long longestGapNanos;
        volatile long gapWatchFrom = Long.MAX_VALUE;
        volatile boolean stop;
        final List<CompletableFuture<Void>> loops = new ArrayList<>();

        void start() {
            for (int w = 0; w < WRITERS; w++) {
                int writer = w;
                loops.add(CompletableFuture.runAsync(() -> {
                    for (int i = 0; !stop; i++) {
                        String payload = "w" + writer + "-" + i;
                        long offset = adapter.write("orders", NewRecord.of(System.currentTimeMillis(),
                                payload.getBytes(StandardCharsets.UTF_8))).join();
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

        void awaitAcked(int n, long timeoutMs) {
            InJvmCluster.waitFor(n + " acknowledged writes (have " + acked.size() + ")", timeoutMs, () -> acked.size() >= n);
        }

        void stopAndJoin() {
            stop = true;
            loops.forEach(CompletableFuture::join);
        }
    }

    private void verify(Map<Long, String> acked) throws Exception {
        long end = adapter.listShards(dev.segstore.adapter.ShardFilter.all()).get(60, TimeUnit.SECONDS).get(0).logEndOffset();
        Map<Long, String> read = new HashMap<>();
        Map<String, Long> seen = new HashMap<>();
        long offset = 0;
        while (offset < end) {
            List<StoredRecord> page = adapter.readByOffset("orders", offset, 1000).get(60, TimeUnit.SECONDS);
            assertTrue(!page.isEmpty(), "a read below the log end " + end + " came back empty at " + offset);
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
        System.out.printf("verified %d acknowledged records of %d stored%n", acked.size(), read.size());
    }

    /** The process to kill and how to name it. */
    private record Victim(String name, Process process) {
    }

    @FunctionalInterface
    private interface VictimChooser {
        Victim choose() throws Exception;
    }

    /**
     * Writers write; once 300 writes are acknowledged the chosen process is killed with SIGKILL, and the writers
     * must get 300 more acknowledged on their own; then everything acknowledged is checked.
     */
    private void killDuringWrites(VictimChooser chooser) throws Exception {
        Writers writers = new Writers();
        writers.start();
        writers.awaitAcked(300, 60_000);
        Victim victim = chooser.choose();
        int before = writers.acked.size();
        writers.gapWatchFrom = System.nanoTime();
        ProcessCluster.kill(victim.process());
        writers.awaitAcked(before + 300, 120_000);
        writers.stopAndJoin();
        System.out.printf("%s killed with SIGKILL: writes stalled for %d ms at most%n",
                victim.name(), TimeUnit.NANOSECONDS.toMillis(writers.longestGapNanos));
        verify(writers.acked);
    }

    @Test
    void killingTheLeadingStorageNodeLosesNoAcknowledgedWrite() throws Exception {
        killDuringWrites(() -> {
            ShardRoute route = meta.route("orders").get(30, TimeUnit.SECONDS);
            int leader = route.getSegments(route.getSegmentsCount() - 1).getLeader();
            return new Victim("storage leader (node " + leader + ")", cluster.nodes[leader]);
        });
    }

    @Test
    void killingTheMetaLeaderLosesNoAcknowledgedWrite() throws Exception {
        // Writes go on through the storage leader; a new route look-up or roll needs the new meta leader.
        killDuringWrites(() -> {
            String leaderAddress = meta.describeCluster().get(30, TimeUnit.SECONDS).getLeader();
            int index = cluster.metaRpcAddresses.indexOf(leaderAddress);
            assertTrue(index >= 0, "meta leader " + leaderAddress + " is one of " + cluster.metaRpcAddresses);
            return new Victim("meta leader (" + leaderAddress + ")", cluster.metas[index]);
        });
    }
}
