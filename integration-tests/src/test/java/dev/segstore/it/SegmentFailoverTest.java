package dev.segstore.it;

import dev.segstore.adapter.ShardConfig;
import dev.segstore.client.MetaClient;
import dev.segstore.client.SegmentStorageAdapter;
import dev.segstore.node.server.AckedWriters;
import dev.segstore.node.server.InJvmCluster;
import dev.segstore.protocol.meta.DurabilityMode;
import dev.segstore.protocol.meta.ShardRoute;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.Map;
import java.util.concurrent.TimeUnit;

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
        AckedWriters writers = new AckedWriters(adapter, "orders", WRITERS);
        writers.start();
        writers.awaitAcked(300, 60_000);
        Victim victim = chooser.choose();
        int before = writers.ackedCount();
        writers.watchGapsFromNow();
        ProcessCluster.kill(victim.process());
        writers.awaitAcked(before + 300, 120_000);
        writers.stopAndJoin();
        System.out.printf("%s killed with SIGKILL: writes stalled for %.0f ms at most%n", victim.name(), writers.longestGapMs());
        Map<Long, String> acked = writers.acked();
        int stored;
        try {
            stored = AckedWriters.verifyReadBack(adapter, "orders", acked);
        } catch (Exception | AssertionError e) {
            // Once in five runs of a loaded mvn verify, the read-back's first call (listShards, the first meta call
            // since the kill) got no answer within 60 s: keep what the processes said, to find out why.
            System.out.printf("read-back failed (%s); the adapter's meta client sends to %s; processes:%n%s", e, meta.leaderGuess(),
                    cluster.report());
            throw e;
        }
        System.out.printf("verified %d acknowledged records of %d stored%n", acked.size(), stored);
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

    /** Starts a stopped process again. */
    @FunctionalInterface
    private interface Start {
        void run() throws Exception;
    }

    /**
     * A rolling restart under write load (issue 13): each of the six processes in turn gets SIGTERM (a storage node
     * hands its leaderships over first, a meta leader its Raft leadership), must exit, is started again on its own
     * directory, and is back once three storage nodes are alive and the open segment's ISR is full again; writes
     * must go on after each restart. Every acknowledged record must read back. Prints the longest pause between
     * acknowledgements per restart (scripts/rolling-restart.sh measures them on the local cluster).
     */
    @Test
    void aRollingRestartOfAllSixProcessesLosesNoAcknowledgedWrite() throws Exception {
        AckedWriters writers = new AckedWriters(adapter, "orders", WRITERS);
        writers.start();
        writers.awaitAcked(300, 60_000);
        StringBuilder stalls = new StringBuilder();
        for (int i = 0; i < 3; i++) {
            int index = i;
            restart("meta-" + i, cluster.metas[i], () -> cluster.restartMeta(index), writers, stalls);
        }
        for (int id = 1; id <= 3; id++) {
            int node = id;
            restart("node-" + id, cluster.nodes[id], () -> cluster.restartNode(node), writers, stalls);
        }
        writers.stopAndJoin();
        System.out.printf("rolling restart, longest pause between acknowledgements per restart:%s%n", stalls);
        int stored = AckedWriters.verifyReadBack(adapter, "orders", writers.acked());
        System.out.printf("verified %d acknowledged records of %d stored%n", writers.acked().size(), stored);
    }

    private void restart(String name, Process process, Start start, AckedWriters writers, StringBuilder stalls) throws Exception {
        writers.watchGapsFromNow();
        long t0 = System.nanoTime();
        process.destroy(); // SIGTERM
        assertTrue(process.waitFor(60, TimeUnit.SECONDS), name + " did not exit within 60 s of SIGTERM\n" + cluster.report());
        double stopping = writers.longestGapMs();
        long stoppedMs = (System.nanoTime() - t0) / 1_000_000;
        writers.watchGapsFromNow();
        start.run();
        InJvmCluster.waitFor(name + " back: three live storage nodes and a full ISR", 120_000, () -> {
            if (ProcessCluster.liveNodes(meta) != 3) {
                return false;
            }
            try {
                ShardRoute route = meta.route("orders").get(10, TimeUnit.SECONDS);
                return route.getSegments(route.getSegmentsCount() - 1).getIsrCount() == 3;
            } catch (Exception e) {
                return false; // the meta-service is changing leaders: ask again
            }
        });
        writers.awaitAcked(writers.ackedCount() + 200, 60_000);
        stalls.append(String.format(" %s %.0f ms while it stopped (in %d ms), %.0f ms while it started;", name, stopping, stoppedMs,
                writers.longestGapMs()));
    }

    /**
     * The leading storage node is paused (SIGSTOP), not killed: its connections stay open and answer nothing. The
     * writers' calls to it would each wait for their call timeout (30 s here, as a broker may set it); once the
     * controller has moved the leadership (the node's session, 2 s here, or its followers finding it silent), the
     * client gives those calls up and retries at the new leader (BatchWriter.untilLeaderMoves). Before: the
     * writes stalled for the whole call timeout.
     */
    @Test
    void pausingTheLeadingStorageNodeStallsWritesForSecondsNotForTheCallTimeout() throws Exception {
        try (SegmentStorageAdapter patient = new SegmentStorageAdapter(new SegmentStorageAdapter.Settings(cluster.metaRpcAddresses, 120_000,
                30_000, DurabilityMode.FSYNC))) {
            AckedWriters writers = new AckedWriters(patient, "orders", WRITERS);
            writers.start();
            writers.awaitAcked(300, 60_000);
            ShardRoute route = meta.route("orders").get(30, TimeUnit.SECONDS);
            int leader = route.getSegments(route.getSegmentsCount() - 1).getLeader();
            int before = writers.ackedCount();
            writers.watchGapsFromNow();
            ProcessCluster.signal(cluster.nodes[leader], "STOP");
            try {
                writers.awaitAcked(before + 300, 20_000); // well within the 30 s call timeout
            } finally {
                ProcessCluster.signal(cluster.nodes[leader], "CONT");
            }
            writers.stopAndJoin();
            System.out.printf("storage leader (node %d) paused: writes stalled for %.0f ms at most (call timeout 30 s)%n", leader,
                    writers.longestGapMs());
            int stored = AckedWriters.verifyReadBack(patient, "orders", writers.acked());
            System.out.printf("verified %d acknowledged records of %d stored%n", writers.acked().size(), stored);
        }
    }
}
