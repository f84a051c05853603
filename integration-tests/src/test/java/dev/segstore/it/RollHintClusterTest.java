package dev.segstore.it;

import dev.segstore.adapter.ShardConfig;
import dev.segstore.client.MetaClient;
import dev.segstore.client.SegmentStorageAdapter;
import dev.segstore.node.server.AckedWriters;
import dev.segstore.node.server.InJvmCluster;
import dev.segstore.protocol.meta.DurabilityMode;
import dev.segstore.protocol.meta.ShardRoute;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Issue 14 item 7: a write refused because its segment is full and being sealed is answered, once the controller's
 * answer to the roll has come, with the next segment (rpc.proto, {@code Error.next_segment}), and the writer goes
 * there at once, without reading the shard's route from the meta-service again. Here writers go through several
 * rolls; the meta-service counts the route look-ups it answers ({@code segstore_meta_requests_total}), less this
 * test's own. Before, every roll made the writer read the route again (at least once: the roll's probe, every 5-10
 * ms, read it afresh until one showed the roll). A roll may still cost a look-up now (a commit slower than the
 * 250 ms a refusal is held, a call waiting past the client's 500 ms leader check on a loaded machine): fewer than
 * one every two rolls is asked.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class RollHintClusterTest {
    private static final int ROLLS = 6;
    private static final String ROUTE_READS = "segstore_meta_requests_total{method=\"meta.GetRoute\",result=\"ok\"}";
    private InJvmCluster cluster;
    private SegmentStorageAdapter adapter;
    private MetaClient meta;
    private final AtomicInteger ownReads = new AtomicInteger();

    @AfterEach
    void stop() throws Exception {
        InJvmCluster.closeAll(adapter, meta, cluster);
    }

    private long openSequence() throws Exception {
        ownReads.incrementAndGet();
        ShardRoute r = meta.route("hinted").get(10, TimeUnit.SECONDS);
        return r.getSegments(r.getSegmentsCount() - 1).getSequence();
    }

    @Test
    void writersGoOnAcrossRollsToTheSegmentTheRefusalNamedWithoutReadingTheRoute() throws Exception {
        // Close ahead off: the refusal names the next segment from the roll's answer (with close ahead, from the
        // hand-over: CloseAheadClusterTest).
        cluster = InJvmCluster.withCloseAhead(id -> dev.segstore.node.server.StorageNode.PeerFaults.NONE, InJvmCluster.Timings.DEFAULT, false);
        meta = new MetaClient(cluster.metaAddresses, 2_000, 30_000);
        adapter = new SegmentStorageAdapter(new SegmentStorageAdapter.Settings(cluster.metaAddresses, 60_000, 2_000, DurabilityMode.PAGE_CACHE));
        adapter.createShard(ShardConfig.of("hinted", SegmentStorageAdapter.STORAGE_TYPE).withReplication(3, 2)
                .withSegmentBytes(64 * 1024)).get(30, TimeUnit.SECONDS);
        AckedWriters writers = new AckedWriters(adapter, "hinted", 4);
        writers.start();
        long first;
        long last;
        double reads;
        try {
            writers.awaitAcked(50, 20_000);
            first = openSequence();
            double readsBefore = cluster.metaMetricSum(ROUTE_READS);
            int ownBefore = ownReads.get();
            assertTrue(readsBefore > 0, "the meta-service counts route look-ups (" + ROUTE_READS + ")");
            long[] lastLookUp = {System.nanoTime()};
            InJvmCluster.waitFor(ROLLS + " rolls", 90_000, () -> {
                if (System.nanoTime() - lastLookUp[0] < 100_000_000L) {
                    return false; // a look-up every 100 ms at most: each is a ReadIndex round on the meta leader
                }
                lastLookUp[0] = System.nanoTime();
                try {
                    return openSequence() >= first + ROLLS;
                } catch (Exception e) {
                    return false; // a look-up that failed: asked again
                }
            });
            last = openSequence();
            reads = cluster.metaMetricSum(ROUTE_READS) - readsBefore - (ownReads.get() - ownBefore);
        } finally {
            writers.stopAndJoin();
        }
        System.out.printf("RollHintClusterTest: the writers read the route %.0f times over %d rolls%n", reads, last - first);
        assertTrue(reads * 2 < last - first, "the writers read the route " + reads + " times over " + (last - first)
                + " rolls: about once a roll, instead of writing where the refusals said");
        int read = AckedWriters.verifyReadBack(adapter, "hinted", writers.acked());
        assertTrue(read >= writers.ackedCount(), "read back " + read + " of " + writers.ackedCount() + " acknowledged records");
    }
}
