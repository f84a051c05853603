package dev.segstore.meta.bench;

import dev.segstore.client.MetaClient;
import dev.segstore.meta.server.MetaConfig;
import dev.segstore.meta.server.MetaPeer;
import dev.segstore.meta.server.MetaServer;
import dev.segstore.meta.state.MetaState;
import dev.segstore.protocol.meta.Command;
import dev.segstore.protocol.meta.CreateShardCommand;
import dev.segstore.protocol.meta.RegisterNodeCommand;
import dev.segstore.protocol.meta.ShardSettings;
import org.HdrHistogram.Histogram;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;

/**
 * Meta-service figures on this machine: shard creations per second and route look-ups per second against a
 * 3-node group (in one JVM, on loopback, real Raft and real RPC), with latency percentiles; and the heap held
 * per shard by the state machine with 100k shards. Run with {@code scripts/bench-meta.sh [shards] [in-flight]}.
 */
public final class MetaBenchmark {
    private MetaBenchmark() {
    }

    public static void main(String[] args) throws Exception {
        int shards = args.length > 0 ? Integer.parseInt(args[0]) : 100_000;
        int inFlight = args.length > 1 ? Integer.parseInt(args[1]) : 256;
        System.out.printf("meta-service benchmark: %d shards, %d requests in flight, %d cores%n", shards, inFlight,
                Runtime.getRuntime().availableProcessors());
        memoryPerShard(shards);
        Path root = Files.createTempDirectory("meta-bench-");
        List<MetaPeer> peers = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            peers.add(dev.segstore.meta.server.TestPorts.freeMetaPeer());
        }
        List<MetaServer> servers = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            servers.add(MetaServer.start(new MetaConfig(peers.get(i), peers, root.resolve("m" + i), 1000, 3600, 60_000)));
        }
        try (MetaClient client = new MetaClient(peers.stream().map(MetaPeer::rpcAddress).toList(), 10_000, 60_000)) {
            long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (servers.stream().noneMatch(MetaServer::isLeader) && System.nanoTime() < until) {
                Thread.onSpinWait();
            }
            for (int n = 1; n <= 3; n++) {
                client.registerNode(n, "127.0.0.1", 9000 + n).get(30, TimeUnit.SECONDS);
            }
            ShardSettings settings = ShardSettings.newBuilder().setReplicaCount(3).setMinInSyncReplicas(2).build();
            run("create shard", shards, inFlight, i -> client.createShard("bench-" + i, settings));
            run("get route", shards, inFlight, i -> client.route("bench-" + (i * 7919L % shards)));
            int held = servers.stream().mapToInt(s -> s.state().shardCount()).min().orElse(0);
            System.out.printf("shards held by every node of the group: %,d%n", held);
        } finally {
            for (MetaServer s : servers) {
                s.close();
            }
            try (Stream<Path> s = Files.walk(root)) {
                for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
                    Files.deleteIfExists(p);
                }
            }
        }
        System.exit(0);
    }

    interface Call {
        CompletableFuture<?> start(int i);
    }

    private static void run(String name, int count, int inFlight, Call call) throws Exception {
        Histogram h = new Histogram(TimeUnit.SECONDS.toNanos(60), 3);
        Semaphore window = new Semaphore(inFlight);
        AtomicLong failures = new AtomicLong();
        long start = System.nanoTime();
        for (int i = 0; i < count; i++) {
            window.acquire();
            long t0 = System.nanoTime();
            call.start(i).whenComplete((r, e) -> {
                if (e != null && failures.incrementAndGet() == 1) {
                    System.out.println("first failure of " + name + ": " + e);
                }
                synchronized (h) {
                    h.recordValue(System.nanoTime() - t0);
                }
                window.release();
            });
        }
        window.acquire(inFlight);
        double secs = (System.nanoTime() - start) / 1e9;
        System.out.printf("%-14s %,9d in %6.2f s = %,9.0f /s   p50 %6.2f ms  p99 %6.2f ms  p99.9 %6.2f ms  max %7.2f ms  failures %d%n",
                name, count, secs, count / secs, h.getValueAtPercentile(50) / 1e6, h.getValueAtPercentile(99) / 1e6,
                h.getValueAtPercentile(99.9) / 1e6, h.getMaxValue() / 1e6, failures.get());
    }

    /** Heap held by one state machine with {@code shards} shards (3 replicas each), measured around a full GC. */
    private static void memoryPerShard(int shards) {
        MetaState state = new MetaState();
        for (int n = 1; n <= 3; n++) {
            state.apply(Command.newBuilder().setVersion(1).setTimestampMs(1).setRegisterNode(
                    RegisterNodeCommand.newBuilder().setNodeId(n).setHost("127.0.0.1").setPort(9000 + n)).build());
        }
        long before = usedHeapAfterGc();
        ShardSettings settings = ShardSettings.newBuilder().setReplicaCount(3).setMinInSyncReplicas(2)
                .setSegmentBytes(256L << 20).setSegmentMs(604_800_000L).setRetentionMs(-1).build();
        for (int i = 0; i < shards; i++) {
            state.apply(Command.newBuilder().setVersion(1).setTimestampMs(2).setCreateShard(CreateShardCommand.newBuilder()
                    .setName("bench-" + i).setSettings(settings).addReplicas(1 + i % 3).addReplicas(1 + (i + 1) % 3)
                    .addReplicas(1 + (i + 2) % 3)).build());
        }
        long after = usedHeapAfterGc();
        System.out.printf("state machine heap with %,d shards: %,.1f MiB, %,d bytes per shard (shard + first segment)%n",
                state.shardCount(), (after - before) / 1048576.0, (after - before) / shards);
        if (state.shardCount() != shards) {
            throw new IllegalStateException("expected " + shards + " shards");
        }
    }

    private static long usedHeapAfterGc() {
        for (int i = 0; i < 3; i++) {
            System.gc();
        }
        return ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
    }

}
