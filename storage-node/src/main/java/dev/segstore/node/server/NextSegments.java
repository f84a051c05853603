package dev.segstore.node.server;

import dev.segstore.client.MetaClient;
import dev.segstore.log.SegmentLog;
import dev.segstore.node.replica.Partition;
import dev.segstore.node.server.Hosted.Key;
import dev.segstore.protocol.meta.Segment;
import dev.segstore.protocol.meta.Shard;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

/**
 * A roll's next segment, learned here before the heartbeat brings it, handed to the {@link AssignmentReconciler} on the
 * node's roll thread: how a hosted replica rolls as leader (the {@link Partition.Roller} each replica is opened with:
 * it asks the controller to seal, to close ahead, and hands over), the next segment a leader's fetch answer names
 * ({@link #hint}), and the upcoming segments of an assignment watch's answer ({@link #prepareLater}). The reconciler
 * takes each under its monitor ({@link AssignmentReconciler#takeNext}, {@link AssignmentReconciler#takeAhead},
 * {@link AssignmentReconciler#prepare}, {@link AssignmentReconciler#prepareAhead}).
 *
 * <p>Thread: the callers of the partitions' rolls (under the partition's monitor), the callbacks of meta calls and of
 * fetch and watch answers, and the reconciler under its monitor ({@link #prepareAheadLater}, as an assignment marks a
 * segment closing). It holds no state of its own and takes no monitor of its own: what it queues on the roll thread
 * takes the reconciler's monitor (and a hand-over's task the partition's, as it wakes the followers), and
 * {@code Hosted.rolledTo} and {@code rollUnanswered} lock the replica's list of waiting writes. Nothing it runs directly
 * in a {@link Partition.Roller} callback takes the reconciler's monitor.
 */
final class NextSegments {
    /** Logs under AssignmentReconciler's name, as before this was split from it (log settings that name it still apply). */
    private static final Logger LOG = LoggerFactory.getLogger(AssignmentReconciler.class);

    private final AssignmentReconciler reconciler;
    private final NodeConfig config;
    private final MetaClient meta;
    private final MetaCalls metaCalls;
    private final Map<Key, Hosted> hosted;
    /** Asks the control thread for a heartbeat now (after a roll: learn the next segment at once). */
    private final Runnable heartbeatNow;
    /**
     * Where a roll's next segment is taken ahead of the heartbeat ({@link AssignmentReconciler#takeNext}): not the control
     * thread, which the heartbeat that the same roll woke keeps waiting for its answer.
     */
    private final java.util.concurrent.Executor rollThread;
    /** Told of the replicas a roll is about to place here, and when each is hosted (its early requests wait). */
    private final ReplicaWaits replicaWaits;

    NextSegments(AssignmentReconciler reconciler, NodeConfig config, MetaClient meta, MetaCalls metaCalls, Map<Key, Hosted> hosted,
                 Runnable heartbeatNow, java.util.concurrent.Executor rollThread, ReplicaWaits replicaWaits) {
        this.reconciler = reconciler;
        this.config = config;
        this.meta = meta;
        this.metaCalls = metaCalls;
        this.hosted = hosted;
        this.heartbeatNow = heartbeatNow;
        this.rollThread = rollThread;
        this.replicaWaits = replicaWaits;
    }

    /**
     * A roll being committed will create {@code s} (a watch answer's upcoming segment, not committed): its log is made
     * now, on the roll thread, with the leader epoch checkpoint if this node is to lead, so that the segment takes
     * writes sooner once the roll commits. Only a log that does not exist yet is made; nothing is hosted or served
     * until a committed answer claims it ({@link ReplicaLogs#openLog} checks it still fits).
     */
    void prepareLater(Segment s) {
        if (s.getReplicasList().contains(config.nodeId())) {
            replicaWaits.expect(Key.of(s)); // not if hosted already (ReplicaWaits checks)
        }
        try {
            rollThread.execute(() -> reconciler.prepare(s));
        } catch (java.util.concurrent.RejectedExecutionException stopping) {
            // the node is stopping
        }
    }

    /**
     * Close ahead: segment {@code closing}, hosted here, is closing (meta.proto {@code Segment.closing_version}), so its
     * next segment will be made on the same replicas, from an end not known yet. Its log is made now, on the roll thread,
     * on the closing segment's data directory, from the closing log's end for now; the hand-over (or the seal's answer)
     * then moves it to the end it gives ({@link SegmentLog#rebaseEmpty}: renames, far cheaper than making the log, which
     * was most of what a roll's pause had left: docs/benchmarks.md, "Where close ahead's roll pause goes"). Nothing is
     * hosted or served from it until a segment claims it ({@link ReplicaLogs#openLog}).
     */
    void prepareAheadLater(Key closing) {
        try {
            rollThread.execute(() -> reconciler.prepareAhead(closing));
        } catch (java.util.concurrent.RejectedExecutionException stopping) {
            // the node is stopping
        }
    }

    /** {@link AssignmentReconciler#takeNext} on the node's roll thread (from an RPC or an owner thread), if it would take it. */
    void takeNextLater(Segment s, Shard shard) {
        if (!reconciler.wantsNext(s)) {
            return;
        }
        replicaWaits.expect(Key.of(s));
        try {
            rollThread.execute(() -> reconciler.takeNext(s, shard));
        } catch (java.util.concurrent.RejectedExecutionException stopping) {
            // the node is stopping
        }
    }

    /** How replica {@code key} of {@code s} rolls as leader: asks the controller to seal, to close ahead, and hands over. */
    Partition.Roller roller(Key key, Segment s, Partition p, Shard shard) {
        return new Partition.Roller() {
            @Override
            public CompletableFuture<Void> roll(int epoch, long end) {
                return sealAt(key, s, p, epoch, end);
            }

            @Override
            public boolean closable() {
                // Below level 2 a meta node may apply the close by rules that check neither that every storage node
                // follows the hand-over nor placement (the build that introduced close ahead), or refuse it: not asked.
                // And the controller does not know a segment taken ahead until the seal of the one before it is
                // recorded (that seal's request may still be on its way, or lost and asked again).
                return reconciler.clusterFeatureLevel() >= dev.segstore.protocol.FeatureLevels.STORAGE_NODES_CHECKED
                        && !takenAheadOfAnUnrecordedSeal(key, s);
            }

            @Override
            public CompletableFuture<Void> closeAhead(int epoch) {
                return metaCalls.call(dev.segstore.protocol.MetaMethods.CLOSE_SEGMENT,
                        () -> meta.closeSegment(dev.segstore.protocol.meta.CloseSegmentRequest.newBuilder()
                                .setShard(s.getShard()).setShardId(s.getShardId()).setSequence(s.getSequence())
                                .setLeader(config.nodeId()).setLeaderEpoch(epoch).build()))
                        .<Void>thenApply(r -> {
                            if (r.getSegment().getClosingVersion() == 0) {
                                throw new IllegalStateException("the answer shows the segment not closing");
                            }
                            Hosted h = hosted.get(key);
                            if (h != null && h.partition == p) {
                                boolean first = h.closingVersion == 0;
                                // Marked first: prepareAhead (on the roll thread, perhaps at once) makes the log only for
                                // a segment marked closing. Queued before the hand-over, which the partition starts only
                                // once this answer has been taken (markClosing after it).
                                h.closingVersion = r.getSegment().getClosingVersion();
                                if (first) {
                                    prepareAheadLater(key);
                                }
                            }
                            return null;
                        }).exceptionally(e -> {
                            throw ReplicaFetchers.asReplicaException(e); // INVALID_ARGUMENT: refused for good (Partition)
                        });
            }

            @Override
            public void handOver(int epoch, long end, List<Integer> isr, int isrVersion) {
                handOverLater(key, p, epoch, end, isr, isrVersion, shard);
            }
        };
    }

    /**
     * Whether replica {@code key} of {@code s} was taken ahead of the seal of the segment before it
     * ({@link AssignmentReconciler#takeAhead}) and that seal is not known here to be recorded: the controller then does not
     * know {@code s} yet. Takes no monitor (called under {@code s}'s partition's).
     */
    private boolean takenAheadOfAnUnrecordedSeal(Key key, Segment s) {
        Hosted before = hosted.get(new Key(key.shardId(), key.sequence() - 1));
        return before != null && before.closingVersion != 0 && before.closingVersion == s.getCreatedVersion()
                && !before.partition.sealRecorded();
    }

    /**
     * Close ahead: the leader of closing replica {@code key} in {@code epoch} ended it at {@code end}, which every ISR
     * member holds (Partition, under its monitor). The next segment, as the seal will create it (meta.proto,
     * {@code Segment.closing_version}: the closing one's replicas, ISR, this leader and epoch, from {@code end}), is
     * named to refused writers and to the followers' fetches at once, and taken here on the roll thread; the seal is
     * recorded after (the partition asks, {@link #sealAt}).
     */
    private void handOverLater(Key key, Partition p, int epoch, long end, List<Integer> isr, int isrVersion, Shard shard) {
        Hosted h = hosted.get(key);
        if (h == null || h.partition != p || h.closingVersion == 0) {
            return;
        }
        Segment a = h.assigned;
        Segment next = a.toBuilder().setSequence(a.getSequence() + 1).setStartOffset(end).setEndOffset(-1)
                .setStatus(dev.segstore.protocol.meta.SegmentStatus.OPEN).setSealedAtMs(0)
                .setLeader(config.nodeId()).setLeaderEpoch(epoch).setCreatedVersion(h.closingVersion).setClosingVersion(0)
                .clearIsr().addAllIsr(isr).setIsrVersion(isrVersion)
                // The lease wait of this epoch was served on the closing segment, before its end could be final.
                .setDeposedLeaderMayServe(false).build();
        replicaWaits.expect(Key.of(next)); // writes and fetches that come before it is hosted wait for it
        try {
            rollThread.execute(() -> {
                h.rolledTo(new Hosted.NextSegment(next, shard)); // refused writers are told of it
                p.wakeFollowers(); // the followers' held fetches answer with it
                reconciler.takeAhead(next, shard);
            });
        } catch (java.util.concurrent.RejectedExecutionException stopping) {
            // the node is stopping
        }
    }

    /**
     * A follower's fetch answer named {@code s}, the segment after one this node hosts: taken ahead of the seal when the
     * segment before it is closing ({@link AssignmentReconciler#takeAhead}), else as a roll's next segment
     * ({@link AssignmentReconciler#takeNext}).
     */
    void hint(Segment s, Shard shard, int fetchEpoch) {
        Hosted before = hosted.get(new Key(s.getShardId(), s.getSequence() - 1));
        if (before != null && before.closingVersion != 0 && s.getCreatedVersion() == before.closingVersion) {
            if (s.getLeaderEpoch() != fetchEpoch) {
                return; // not from the leader this node fetched from in the epoch it asked in
            }
            try {
                rollThread.execute(() -> reconciler.takeAhead(s, shard));
            } catch (java.util.concurrent.RejectedExecutionException stopping) {
                // the node is stopping
            }
            return;
        }
        takeNextLater(s, shard);
    }

    private CompletableFuture<Void> sealAt(Key key, Segment s, Partition p, int epoch, long end) {
        // With "segment full" before it and "sealed at" after it: where a roll's pause goes (the ISR catching up,
        // then the controller's commit).
        LOG.debug("Segment {}/{}: the ISR holds everything up to {}; asking the controller to seal there", s.getShard(), s.getSequence(), end);
        return metaCalls.call(dev.segstore.protocol.MetaMethods.ROLL_SEGMENT,
            () -> meta.rollSegment(dev.segstore.protocol.meta.RollSegmentRequest.newBuilder()
            .setShard(s.getShard()).setShardId(s.getShardId()).setSequence(s.getSequence()).setLeader(config.nodeId()).setLeaderEpoch(epoch)
            .setEndOffset(end).build())).<Void>thenApply(route -> {
                Segment next = route.getSegments(route.getSegmentsCount() - 1);
                LOG.info("Segment {}/{} sealed at {}; the next segment opens on nodes {}", s.getShard(), s.getSequence(), end,
                        next.getReplicasList());
                if (next.getSequence() == s.getSequence() + 1 && next.getStartOffset() == end) {
                    // Before this answer seals the partition (which wakes the followers' held fetches): each
                    // follower's next answer carries the next segment, and this node takes its own part now.
                    takeNextLater(next, route.getShard()); // first: this node expects it before a writer is sent here
                    Hosted rolled = hosted.get(key);
                    if (rolled != null && rolled.partition == p) {
                        rolled.rolledTo(new Hosted.NextSegment(next, route.getShard()));
                    }
                }
                heartbeatNow.run(); // the full assignments too, as before: the hint changes no version
                return null;
            }).whenComplete((v, e) -> {
                Hosted rolled = hosted.get(key);
                if (rolled != null && rolled.partition == p && rolled.next == null) {
                    rolled.rollUnanswered(); // failed (asked again later) or no next segment named: refused writes go now
                }
            });
    }
}
