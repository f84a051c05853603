package dev.segstore.node.server;

import dev.segstore.adapter.NewRecord;
import dev.segstore.adapter.ShardConfig;
import dev.segstore.adapter.StoredRecord;
import dev.segstore.client.SegmentStorageAdapter;
import dev.segstore.protocol.meta.DurabilityMode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * On a running cluster, the nodes' key and tag indexes take the records' keys and tags as they are appended (the
 * replicas' logs are observed: AssignmentReconciler), and reads by key and tag see every record written.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class IndexTakesAppendedKeysTest {
    @Test
    void theIndexesTakeTheKeysAsAppendedAndReadsByKeyAndTagSeeEveryRecord() throws Exception {
        try (InJvmCluster cluster = new InJvmCluster();
             SegmentStorageAdapter adapter = new SegmentStorageAdapter(new SegmentStorageAdapter.Settings(cluster.metaAddresses, 30_000,
                     2_000, DurabilityMode.FSYNC))) {
            adapter.createShard(ShardConfig.of("keys", SegmentStorageAdapter.STORAGE_TYPE).withReplication(3, 2)).get(30, TimeUnit.SECONDS);
            for (int call = 0; call < 5; call++) {
                List<NewRecord> batch = new ArrayList<>();
                for (int i = 0; i < 10; i++) {
                    int n = call * 10 + i;
                    batch.add(NewRecord.of(n, new byte[] {(byte) n}).withKey("k" + (n % 7)).withTags(n % 2 == 0 ? "even" : "odd"));
                }
                adapter.batchWrite("keys", batch).get(30, TimeUnit.SECONDS);
            }
            Optional<StoredRecord> newest = adapter.readByKey("keys", "k3").get(30, TimeUnit.SECONDS);
            assertTrue(newest.isPresent());
            assertEquals(45, newest.get().offset(), "the newest record with key k3 (45 % 7 = 3)");
            List<StoredRecord> even = adapter.readByTag("keys", "even", 0, 100).get(30, TimeUnit.SECONDS);
            assertEquals(25, even.size(), "every record tagged even");
            long taken = 0;
            for (int id = 1; id <= 3; id++) {
                taken += cluster.nodes[id].indexRecordsTaken();
            }
            assertTrue(taken > 0, "the indexes took records as appended (" + taken + "), not all read back");
        }
    }
}
