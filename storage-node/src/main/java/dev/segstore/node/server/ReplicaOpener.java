package dev.segstore.node.server;

import dev.segstore.client.MetaClient;
import dev.segstore.log.Durability;
import dev.segstore.log.SegmentLog;
import dev.segstore.node.index.NodeIndex;
import dev.segstore.node.replica.IsrProposer;
import dev.segstore.node.replica.Partition;
import dev.segstore.node.replica.ReplicaConfig;
import dev.segstore.node.replica.Tombstones;
import dev.segstore.node.server.Hosted.Key;
import dev.segstore.protocol.meta.DurabilityMode;
import dev.segstore.protocol.meta.ProposeIsrRequest;
import dev.segstore.protocol.meta.Segment;
import dev.segstore.protocol.meta.Shard;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.function.LongSupplier;

/**
 * Opens the replicas the {@link AssignmentReconciler} hosts: checks that a replica in the ISR of a segment the
 * registration checked holds its log, and makes its partition over its log ({@link ReplicaLogs#openLog}) and
 * tombstones, with the ISR proposals it sends, the producer state saved at the last clean stop, how it rolls
 * ({@link NextSegments#roller}) and its share of the key and tag index. It does not host what it opens: the reconciler
 * puts it in the hosted-replica map.
 *
 * <p>Not thread-safe: the reconciler calls it under its monitor (on the control thread, and on the roll thread for a
 * next segment), as {@link ReplicaLogs}, which it uses.
 */
final class ReplicaOpener {
    /** Logs under AssignmentReconciler's name, as before this was split from it (log settings that name it still apply). */
    private static final Logger LOG = LoggerFactory.getLogger(AssignmentReconciler.class);

    private final NodeConfig config;
    private final DataDirectories directory;
    private final NodeIndex index;
    /** What the replicas' key and tag indexes may queue together ({@link ReplicaIndex}). */
    private final AppendedKeys.Budget appendedKeys;
    private final MetaClient meta;
    private final MetaCalls metaCalls;
    /** The monotonic clock the replicas measure lag and segment age on (never the wall clock: see Partition). */
    private final LongSupplier replicaClockMs;
    /** Where each hosted replica's log comes from (the reconciler's, guarded by its monitor). */
    private final ReplicaLogs logs;
    /** How a replica opened here rolls as leader. */
    private final NextSegments rolls;

    ReplicaOpener(NodeConfig config, DataDirectories directory, NodeIndex index, MetaClient meta, MetaCalls metaCalls,
                  LongSupplier replicaClockMs, ReplicaLogs logs, NextSegments rolls) {
        this.config = config;
        this.directory = directory;
        this.index = index;
        this.appendedKeys = new AppendedKeys.Budget(config.indexQueueMaxBytes());
        this.meta = meta;
        this.metaCalls = metaCalls;
        this.replicaClockMs = replicaClockMs;
        this.logs = logs;
        this.rolls = rolls;
    }

    /**
     * Opens replica {@code key} of {@code s}, of {@code shard} (null if the answer did not list it).
     *
     * @param registeredVersion  the metadata version up to which the last registration checked the logs held, or -1
     *                           ({@link AssignmentReconciler}'s, read under its monitor)
     * @param leaderReadsStopped whether a controlled shutdown stopped leader reads ({@link AssignmentReconciler#stopLeaderReads})
     * @throws RuntimeException if it cannot be opened (nothing is hosted)
     */
    Hosted open(Key key, Segment s, Shard shard, long registeredVersion, boolean leaderReadsStopped) {
        long startedNanos = System.nanoTime();
        int me = config.nodeId();
        if (!directory.holds(key.logName()) && !s.getOfflineReplicasList().contains(me) && s.getCreatedVersion() <= registeredVersion
                && (s.getIsrList().contains(me) || s.getLeader() == me)) {
            // In the ISR of a segment created before this node registered, yet not here (its directory failed since,
            // or the log is missing): an empty log must not count in the ISR or lead. Only once the controller has
            // marked this copy offline (out of the ISR, never leading) may it start empty and catch up. (Out of the
            // ISR, as a replica moved here by ReassignReplica, it starts empty at once: it joins once caught up.)
            throw new IllegalStateException("its log is not on an online data directory; reported, it opens once the controller has"
                    + " marked this copy offline");
        }
        int minIsr = shard == null ? 1 : Math.max(1, shard.getSettings().getMinInSyncReplicas());
        Durability durability = shard != null && shard.getSettings().getDurability() == DurabilityMode.PAGE_CACHE
                ? Durability.PAGE_CACHE : Durability.FSYNC;
        ReplicaConfig rc = new ReplicaConfig(minIsr, config.replicaMaxLagMs(), durability, config.readLeaseMs());
        IsrProposer proposer = (epoch, version, isr) -> metaCalls.call(dev.segstore.protocol.MetaMethods.PROPOSE_ISR,
                () -> meta.proposeIsr(ProposeIsrRequest.newBuilder()
                .setShard(s.getShard()).setShardId(s.getShardId()).setSequence(s.getSequence()).setLeader(config.nodeId()).setLeaderEpoch(epoch)
                .setIsrVersion(version).addAllNewIsr(isr).build()))
                .thenApply(r -> new IsrProposer.Committed(r.getSegment().getIsrList(), r.getSegment().getIsrVersion()))
                .exceptionally(e -> {
                    throw ReplicaFetchers.asReplicaException(e);
                });
        SegmentLog segmentLog = logs.openLog(key, s);
        long logNanos = System.nanoTime();
        Tombstones tombstones = new Tombstones(index.tombstoneStore(key.shardId(), key.sequence(), durability == Durability.FSYNC));
        long tombstonesNanos = System.nanoTime();
        Partition p = new Partition(s.getShard() + "/" + s.getSequence() + "@" + config.nodeId(), segmentLog, tombstones,
                config.nodeId(), rc, replicaClockMs, proposer);
        long partitionNanos = System.nanoTime();
        restoreProducers(key, p);
        long producersNanos = System.nanoTime();
        if (leaderReadsStopped) {
            p.stopLeaderReads();
        }
        long segmentBytes = shard == null || shard.getSettings().getSegmentBytes() <= 0 ? Long.MAX_VALUE : shard.getSettings().getSegmentBytes();
        long segmentMs = shard == null || shard.getSettings().getSegmentMs() <= 0 ? Long.MAX_VALUE : shard.getSettings().getSegmentMs();
        if (shard != null && shard.getSettings().getRetentionMs() > 0) {
            // Retention drops sealed segments only: a segment also rolls once retention_ms old, so a record lives
            // about 2 x retention_ms at most, not segment_ms (7 days by default) on a quiet shard.
            segmentMs = Math.min(segmentMs, shard.getSettings().getRetentionMs());
        }
        p.configureRoll(segmentBytes, segmentMs, rolls.roller(key, s, p, shard));
        if (config.segmentCloseAhead() && segmentBytes != Long.MAX_VALUE) {
            // From three quarters (later for a segment written slowly: SegmentRoll.fillsSoon): the close commits while the rest is written.
            p.configureCloseAhead(segmentBytes - segmentBytes / 4);
        }
        ReplicaIndex replicaIndex = new ReplicaIndex(index, key.shardId(), key.sequence(), p, appendedKeys);
        replicaIndex.resetTo(p.log().logEndOffset());
        p.log().observeAppends(replicaIndex); // keys and tags taken as appended, not read back
        long doneNanos = System.nanoTime();
        LOG.debug("{}: replica opened in {} us (log {}, tombstones {}, partition {}, producers {}, roll and index {})", key.logName(),
                (doneNanos - startedNanos) / 1_000, (logNanos - startedNanos) / 1_000, (tombstonesNanos - logNanos) / 1_000,
                (partitionNanos - tombstonesNanos) / 1_000, (producersNanos - partitionNanos) / 1_000, (doneNanos - producersNanos) / 1_000);
        return new Hosted(p, replicaIndex);
    }

    /** Gives a replica opened again the producer state it saved when the node last stopped cleanly, if any. */
    private void restoreProducers(Hosted.Key key, Partition p) {
        try {
            byte[] saved = index.takeProducerState(key.shardId(), key.sequence());
            if (saved != null && p.restoreProducers(saved)) {
                LOG.debug("{}: restored the producer state saved at the last stop", key.logName());
            }
        } catch (org.rocksdb.RocksDBException e) {
            // Not taken: a retry of an older batch makes the leader read its log back instead.
            LOG.warn("{}: reading the saved producer state failed: {}", key.logName(), e.toString());
        }
    }
}
