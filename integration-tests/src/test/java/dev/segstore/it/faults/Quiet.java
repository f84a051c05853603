package dev.segstore.it.faults;

import dev.segstore.node.replica.Partition;
import dev.segstore.node.server.StorageNode;
import dev.segstore.protocol.meta.Segment;
import dev.segstore.protocol.meta.SegmentStatus;
import dev.segstore.protocol.meta.ShardRoute;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.stream.Stream;

/**
 * The cluster after the heal and after the clients stopped: {@link #await} waits until the shard is quiet (every
 * segment has a leader and a full ISR, every replica of a sealed segment has taken the seal at the segment's end,
 * and every replica of the open segment holds the leader's log up to its end: safety property 8), and
 * {@link #replicasDiffer} compares every segment's replicas byte for byte (property 5), as
 * {@code SegmentChaosRun} does for a process cluster: the segment's {@code .log} files, which a quiet replica no
 * longer changes (deletes are tombstones beside the log).
 */
final class Quiet {
    /** How long the shard may take to be quiet after the heal before the run fails. */
    static final long DEADLINE_MS = 20_000;

    private Quiet() {
    }

    /** The route once the shard is quiet, or null if it was not within {@link #DEADLINE_MS}. */
    static ShardRoute await(FaultCluster cluster, String shard, List<String> why) {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(DEADLINE_MS);
        String last = "no route read";
        while (System.nanoTime() < deadline) {
            try {
                ShardRoute route = cluster.meta.route(shard).get(2, TimeUnit.SECONDS);
                String notYet = notQuiet(cluster, route);
                if (notYet == null) {
                    return route;
                }
                last = notYet;
            } catch (Exception e) {
                last = "route: " + e;
            }
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(10));
        }
        why.add("not quiet " + DEADLINE_MS + " ms after the heal: " + last);
        return null;
    }

    private static String notQuiet(FaultCluster cluster, ShardRoute route) {
        for (Segment s : route.getSegmentsList()) {
            if (s.getLeader() < 0 || s.getIsrCount() != s.getReplicasCount()) {
                return "segment " + s.getSequence() + ": leader " + s.getLeader() + ", ISR " + s.getIsrList() + " of replicas " + s.getReplicasList();
            }
            StorageNode leader = cluster.node(s.getLeader());
            Partition led = leader == null ? null : leader.partition(s.getShardId(), s.getSequence());
            for (int r : s.getReplicasList()) {
                StorageNode node = cluster.node(r);
                Partition p = node == null ? null : node.partition(s.getShardId(), s.getSequence());
                if (s.getStatus() == SegmentStatus.SEALED && (p == null || p.sealedEnd() != s.getEndOffset())) {
                    return "segment " + s.getSequence() + ": replica on node " + r + " has not taken the seal at " + s.getEndOffset();
                }
                if (s.getStatus() == SegmentStatus.OPEN && (p == null || led == null || p.log().logEndOffset() != led.log().logEndOffset())) {
                    return "segment " + s.getSequence() + " (open): replica on node " + r + " does not end where its leader's does";
                }
            }
        }
        return null;
    }

    /** One line per segment file whose replicas differ; empty if all are identical. */
    static List<String> replicasDiffer(FaultCluster cluster, ShardRoute route) throws IOException {
        List<String> differ = new ArrayList<>();
        for (Segment s : route.getSegmentsList()) {
            int first = s.getReplicas(0);
            List<Path> files;
            try (Stream<Path> list = Files.list(cluster.logDir(first, s.getShardId(), s.getSequence()))) {
                files = list.filter(p -> p.toString().endsWith(".log")).sorted().toList();
            }
            if (files.isEmpty() && s.getStatus() == SegmentStatus.SEALED && s.getEndOffset() > s.getStartOffset()) {
                differ.add("segment " + s.getSequence() + ": node " + first + " has no segment files");
            }
            for (int r : s.getReplicasList().subList(1, s.getReplicasCount())) {
                for (Path f : files) {
                    Path other = cluster.logDir(r, s.getShardId(), s.getSequence()).resolve(f.getFileName());
                    long at = Files.exists(other) ? Files.mismatch(f, other) : 0;
                    if (at >= 0) {
                        differ.add("segment " + s.getSequence() + " [" + s.getStartOffset() + ", " + (s.getEndOffset() < 0 ? "open" : s.getEndOffset()) + ") file "
                                + f.getFileName() + ": node " + first + " and node " + r + " differ from byte " + at
                                + " (sizes " + Files.size(f) + " and " + (Files.exists(other) ? Files.size(other) : -1) + ")");
                    }
                }
            }
        }
        return differ;
    }
}
