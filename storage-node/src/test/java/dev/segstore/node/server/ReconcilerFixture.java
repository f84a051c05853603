package dev.segstore.node.server;

import dev.segstore.client.MetaClient;
import dev.segstore.log.DirectoryConfig;
import dev.segstore.log.LogConfig;
import dev.segstore.log.io.RealLogFiles;
import dev.segstore.node.index.NodeIndex;
import dev.segstore.protocol.meta.DurabilityMode;
import dev.segstore.protocol.meta.Segment;
import dev.segstore.protocol.meta.SegmentStatus;
import dev.segstore.protocol.meta.Shard;
import dev.segstore.protocol.meta.ShardSettings;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Node 1's {@link AssignmentReconciler} over real data and index directories, with no meta-service and no peers
 * (fetch loops never run): answers and hints are handed to it directly. Every reading of the replicas' clock moves
 * it {@code clockStepMs} on, so opening replicas takes time, deterministically.
 */
final class ReconcilerFixture implements AutoCloseable {
    final AtomicLong clock = new AtomicLong();
    final AtomicInteger heartbeatsAsked = new AtomicInteger();
    final Map<Hosted.Key, Hosted> hosted = new ConcurrentHashMap<>();
    final DataDirectories dirs;
    final AssignmentReconciler reconciler;
    private final NodeIndex index;
    private final MetaClient meta;
    private final ShardOwners owners;
    private final ReplicaFetchers fetchers;

    ReconcilerFixture(Path tmp, long heartbeatMs, long clockStepMs) throws Exception {
        this(tmp, heartbeatMs, clockStepMs, RealLogFiles.INSTANCE);
    }

    /** As above, the logs on {@code files} (a layer that watches or changes some calls). */
    ReconcilerFixture(Path tmp, long heartbeatMs, long clockStepMs, dev.segstore.log.io.LogFiles files) throws Exception {
        NodeConfig config = new NodeConfig(1, "127.0.0.1", 0, tmp.resolve("data"), List.of("127.0.0.1:1"), heartbeatMs, 1_000,
                DirectoryConfig.DEFAULT, LogConfig.DEFAULT, 2, 0);
        Map<Integer, String> addresses = new ConcurrentHashMap<>();
        dirs = DataDirectories.open(List.of(tmp.resolve("data")), DirectoryConfig.DEFAULT, files, System::currentTimeMillis);
        index = new NodeIndex(tmp.resolve("index"));
        meta = new MetaClient(List.of("127.0.0.1:1"), 100, 100);
        owners = new ShardOwners(1, "test-owner");
        fetchers = new ReplicaFetchers(1, 1_000, null, addresses, owners, StorageNode.PeerFaults.NONE, (k, h) -> false, () -> { }, null,
                true, (segment, shard, epoch) -> { });
        reconciler = new AssignmentReconciler(config, dirs, index, meta, new MetaCalls(1, StorageNode.PeerFaults.NONE), hosted, addresses,
                fetchers, heartbeatsAsked::incrementAndGet, name -> { }, () -> false, () -> clock.addAndGet(clockStepMs), Runnable::run,
                new ReplicaWaits(owners, hosted::containsKey, System::currentTimeMillis));
    }

    /** Shard {@code "s" + id}: page cache, min ISR 1, {@code replicas} replicas. */
    static Shard shard(long id, int replicas) {
        return Shard.newBuilder().setName("s" + id).setShardId(id).setSettings(ShardSettings.newBuilder().setReplicaCount(replicas)
                .setMinInSyncReplicas(1).setDurability(DurabilityMode.PAGE_CACHE)).build();
    }

    /** Open segment {@code sequence} of shard {@code "s" + id}, led by the first of {@code replicas}, all in its ISR. */
    static Segment openSegment(long id, long sequence, long startOffset, long createdVersion, Integer... replicas) {
        return Segment.newBuilder().setShard("s" + id).setShardId(id).setSequence(sequence).setStartOffset(startOffset)
                .setStatus(SegmentStatus.OPEN).setEndOffset(-1).addAllReplicas(List.of(replicas)).setLeader(replicas[0])
                .setLeaderEpoch(0).addAllIsr(List.of(replicas)).setIsrVersion(0).setCreatedVersion(createdVersion).build();
    }

    @Override
    public void close() throws Exception {
        fetchers.close();
        owners.close();
        meta.close();
        index.close();
        dirs.close();
    }
}
