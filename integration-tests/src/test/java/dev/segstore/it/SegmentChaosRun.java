package dev.segstore.it;

import dev.segstore.node.server.InJvmCluster;

import dev.segstore.adapter.NewRecord;
import dev.segstore.adapter.StoredRecord;
import dev.segstore.adapter.ShardConfig;
import dev.segstore.adapter.ShardFilter;
import dev.segstore.client.MetaClient;
import dev.segstore.client.SegmentStorageAdapter;
import dev.segstore.protocol.meta.DurabilityMode;
import dev.segstore.protocol.meta.Segment;
import dev.segstore.protocol.meta.ShardRoute;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Chaos against a cluster of processes, long-running, so not part of {@code mvn verify}: run it with
 * {@code scripts/chaos.sh [seconds] [seed]}. Writers write (acks=all, 3 replicas, min ISR 2, 256 KiB segments
 * so that shards roll often) and a deleter deletes acknowledged records, while a seeded random schedule kills
 * storage nodes and the meta-service leader with SIGKILL and starts them again, or pauses the open segment's
 * leader with SIGSTOP until the others have moved on and then lets it run again, one at a time. The schedule
 * moves on only when writes have made progress, so a stall fails the run. Afterwards, with every process
 * back and every ISR full:
 * <ul>
 *   <li>every acknowledged record reads back at its offset with its payload (safety property 1),</li>
 *   <li>no payload is stored twice, retries included (2),</li>
 *   <li>no acknowledged delete is undone,</li>
 *   <li>every replica of every segment holds the same bytes (5).</li>
 * </ul>
 * The seed is printed first; {@code -Dchaos.seed=} replays the same schedule (process timing still varies).
 */
class SegmentChaosRun {
    private static final String SHARD = "chaos";

    @Test
    @Timeout(value = 30, unit = TimeUnit.MINUTES)
    void acknowledgedWritesAndDeletesSurviveKillsAndRestarts() throws Exception {
        long seed = Long.getLong("chaos.seed", new Random().nextLong());
        int seconds = Integer.getInteger("chaos.seconds", 60);
        System.out.printf("chaos: seed %d (replay with -Dchaos.seed=%d), %d s%n", seed, seed, seconds);
        Random random = new Random(seed);
        ProcessCluster cluster = new ProcessCluster();
        boolean passed = false;
        MetaClient meta = new MetaClient(cluster.metaRpcAddresses, 2_000, 60_000);
        routeReader = meta;
        SegmentStorageAdapter adapter = new SegmentStorageAdapter(new SegmentStorageAdapter.Settings(cluster.metaRpcAddresses,
                60_000, 2_000, DurabilityMode.FSYNC));
        try {
            cluster.awaitThreeLiveNodes(meta, "three storage nodes", 120_000);
            adapter.createShard(ShardConfig.of(SHARD, SegmentStorageAdapter.STORAGE_TYPE).withReplication(3, 2)
                    .withSegmentBytes(256 * 1024)).get(60, TimeUnit.SECONDS);

            Map<Long, String> acked = new ConcurrentHashMap<>();
            Set<Long> deleted = ConcurrentHashMap.newKeySet();
            // Deletes that failed: each may or may not have happened (an attempt may have reached the leader before
            // its answer was lost), so its record may be gone.
            Set<Long> maybeDeleted = ConcurrentHashMap.newKeySet();
            AtomicLong failedWrites = new AtomicLong();
            List<Long> ackedOrder = java.util.Collections.synchronizedList(new ArrayList<>());
            boolean[] stop = {false};
            List<CompletableFuture<Void>> loops = new ArrayList<>();
            for (int w = 0; w < 4; w++) {
                int writer = w;
                loops.add(CompletableFuture.runAsync(() -> {
                    Random deletes = new Random(seed + writer);
                    for (int i = 0; !stop[0]; i++) {
                        if (writer == 0 && i % 25 == 24) {
                            // Now and then, delete an acknowledged record.
                            long victim = ackedOrder.get(deletes.nextInt(ackedOrder.size()));
                            try {
                                adapter.deleteByOffset(SHARD, victim).join();
                                deleted.add(victim);
                            } catch (RuntimeException e) {
                                maybeDeleted.add(victim); // not acknowledged: may or may not have happened
                            }
                        }
                        String payload = "w" + writer + "-" + i + "-" + "x".repeat(200);
                        try {
                            long offset = adapter.write(SHARD, NewRecord.of(System.currentTimeMillis(),
                                    payload.getBytes(StandardCharsets.UTF_8))).join();
                            acked.put(offset, payload);
                            ackedOrder.add(offset);
                        } catch (RuntimeException e) {
                            failedWrites.incrementAndGet(); // may or may not be stored; never twice
                        }
                    }
                }));
            }
            long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
            int round = 0;
            while (System.nanoTime() < end) {
                awaitProgress(acked, 100 + random.nextInt(400));
                round++;
                int action = random.nextInt(6);
                if (action == 5) {
                    // A paused leader (a long GC pause): it is fenced and replaced, then wakes up still
                    // believing it leads; whatever it takes then must not be acknowledged.
                    ShardRoute r = meta.route(SHARD).get(30, TimeUnit.SECONDS);
                    int node = r.getSegments(r.getSegmentsCount() - 1).getLeader();
                    if (node < 1) {
                        continue;
                    }
                    System.out.printf("chaos round %d: SIGSTOP storage node %d, the open segment's leader (%d acked so far)%n",
                            round, node, acked.size());
                    ProcessCluster.signal(cluster.nodes[node], "STOP");
                    try {
                        awaitProgress(acked, 100 + random.nextInt(300));
                    } finally {
                        ProcessCluster.signal(cluster.nodes[node], "CONT");
                    }
                    cluster.awaitThreeLiveNodes(meta, "node " + node + " back", 120_000);
                } else if (action == 4) {
                    String leader = meta.describeCluster().get(30, TimeUnit.SECONDS).getLeader();
                    int i = cluster.metaRpcAddresses.indexOf(leader);
                    if (i < 0) {
                        continue; // no leader known right now
                    }
                    System.out.printf("chaos round %d: SIGKILL meta leader %s (%d acked so far)%n", round, leader, acked.size());
                    ProcessCluster.kill(cluster.metas[i]);
                    awaitProgress(acked, 100 + random.nextInt(300));
                    cluster.restartMeta(i);
                } else {
                    int node = 1 + random.nextInt(3);
                    System.out.printf("chaos round %d: SIGKILL storage node %d (%d acked so far)%n", round, node, acked.size());
                    ProcessCluster.kill(cluster.nodes[node]);
                    awaitProgress(acked, 100 + random.nextInt(300));
                    cluster.restartNode(node);
                    cluster.awaitThreeLiveNodes(meta, "node " + node + " back", 120_000);
                }
            }
            stop[0] = true;
            loops.forEach(CompletableFuture::join);
            System.out.println("chaos: route at the end of the schedule: " + describe(meta.route(SHARD).get(30, TimeUnit.SECONDS)));
            System.out.printf("chaos: %d deletes failed (unknown outcome: their records may be gone)%n", maybeDeleted.size());
            System.out.printf("chaos: %d rounds, %d writes acknowledged, %d failed (unknown outcome), %d deletes acknowledged%n",
                    round, acked.size(), failedWrites.get(), deleted.size());

            // Quiet: every segment's ISR holds all its replicas again.
            InJvmCluster.waitFor("every ISR to be full", 180_000, () -> {
                try {
                    ShardRoute r = meta.route(SHARD).get(10, TimeUnit.SECONDS);
                    return r.getSegmentsList().stream().allMatch(s -> s.getIsrCount() == s.getReplicasCount());
                } catch (Exception e) {
                    return false;
                }
            });
            verifyReads(adapter, acked, deleted, maybeDeleted);
            ShardRoute route = meta.route(SHARD).get(30, TimeUnit.SECONDS);
            InJvmCluster.waitFor("followers to catch up with the last writes", 60_000, () -> replicasAgree(cluster, route));
            cluster.destroyAll(); // clean shutdown: logs closed, then compare the files
            assertReplicasIdentical(cluster, route);
            passed = true;
        } finally {
            adapter.close();
            meta.close();
            if (passed) {
                cluster.close();
            } else {
                cluster.destroyAll();
                System.out.println("chaos: failed; the processes' directories and logs are kept in " + cluster.root);
            }
        }
    }

    private static MetaClient routeReader;

    private static void awaitProgress(Map<Long, String> acked, int writes) {
        int target = acked.size() + writes;
        try {
            InJvmCluster.waitFor(writes + " more acknowledged writes (writes stalled)", 90_000, () -> acked.size() >= target);
        } catch (AssertionError stalled) {
            try {
                System.out.println("chaos: stalled; route now: " + describe(routeReader.route(SHARD).get(30, TimeUnit.SECONDS)));
            } catch (Exception e) {
                System.out.println("chaos: stalled; no route: " + e);
            }
            throw stalled;
        }
    }

    private static String describe(ShardRoute route) {
        StringBuilder b = new StringBuilder();
        for (Segment s : route.getSegmentsList()) {
            b.append(String.format("%n  segment %d [%d, %d) %s replicas %s leader %d epoch %d ISR %s", s.getSequence(), s.getStartOffset(),
                    s.getEndOffset(), s.getStatus(), s.getReplicasList(), s.getLeader(), s.getLeaderEpoch(), s.getIsrList()));
        }
        return b.toString();
    }

    private static void verifyReads(SegmentStorageAdapter adapter, Map<Long, String> acked, Set<Long> deleted, Set<Long> maybeDeleted)
            throws Exception {
        long end = adapter.listShards(ShardFilter.prefix(SHARD)).get(60, TimeUnit.SECONDS).get(0).logEndOffset();
        Map<Long, String> read = new HashMap<>();
        Map<String, Long> byPayload = new HashMap<>();
        long offset = 0;
        while (offset < end) {
            List<StoredRecord> page = adapter.readByOffset(SHARD, offset, 2_000).get(60, TimeUnit.SECONDS);
            if (page.isEmpty()) {
                break;
            }
            for (StoredRecord r : page) {
                String p = new String(r.payload(), StandardCharsets.UTF_8);
                Long before = byPayload.put(p, r.offset());
                assertEquals(null, before, "payload stored twice, at " + before + " and " + r.offset());
                read.put(r.offset(), p);
            }
            offset = page.get(page.size() - 1).offset() + 1;
        }
        int checked = 0;
        for (Map.Entry<Long, String> e : acked.entrySet()) {
            if (deleted.contains(e.getKey())) {
                assertFalse(read.containsKey(e.getKey()), "acknowledged delete of " + e.getKey() + " undone");
            } else if (maybeDeleted.contains(e.getKey())) {
                assertTrue(!read.containsKey(e.getKey()) || e.getValue().equals(read.get(e.getKey())),
                        "record at offset " + e.getKey() + " (a delete of it failed) holds another payload");
            } else {
                assertEquals(e.getValue(), read.get(e.getKey()), "acknowledged record at offset " + e.getKey());
                checked++;
            }
        }
        System.out.printf("chaos: %d acknowledged records read back, %d deletes hold, log end %d%n", checked, deleted.size(), end);
    }

    private static Path logDir(ProcessCluster cluster, int node, Segment s) {
        return cluster.root.resolve("node-" + node).resolve("data").resolve("logs").resolve(s.getShardId() + "-" + s.getSequence());
    }

    /** Every replica's segment files have the same sizes (the followers have caught up). */
    private static boolean replicasAgree(ProcessCluster cluster, ShardRoute route) {
        try {
            for (Segment s : route.getSegmentsList()) {
                Map<String, Long> first = null;
                for (int r : s.getReplicasList()) {
                    Map<String, Long> sizes = new HashMap<>();
                    try (Stream<Path> files = Files.list(logDir(cluster, r, s))) {
                        for (Path f : files.filter(p -> p.toString().endsWith(".log")).toList()) {
                            sizes.put(f.getFileName().toString(), Files.size(f));
                        }
                    }
                    if (first == null) {
                        first = sizes;
                    } else if (!first.equals(sizes)) {
                        return false;
                    }
                }
            }
            return true;
        } catch (java.io.IOException e) {
            return false;
        }
    }

    private static void assertReplicasIdentical(ProcessCluster cluster, ShardRoute route) throws Exception {
        int compared = 0;
        for (Segment s : route.getSegmentsList()) {
            int first = s.getReplicas(0);
            List<Path> files;
            try (Stream<Path> list = Files.list(logDir(cluster, first, s))) {
                files = list.filter(p -> p.toString().endsWith(".log")).sorted().toList();
            }
            assertTrue(!files.isEmpty() || s.getStatus() != dev.segstore.protocol.meta.SegmentStatus.SEALED, "segment files of " + s.getSequence());
            for (int r : s.getReplicasList()) {
                for (Path f : files) {
                    Path other = logDir(cluster, r, s).resolve(f.getFileName());
                    assertArrayEquals(Files.readAllBytes(f), Files.readAllBytes(other),
                            "segment " + s.getSequence() + " file " + f.getFileName() + ": node " + first + " and node " + r + " differ");
                    compared++;
                }
            }
        }
        System.out.printf("chaos: %d segments, %d segment files compared byte for byte across replicas%n", route.getSegmentsCount(), compared);
    }
}
