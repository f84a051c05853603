package dev.segstore.it;

import dev.segstore.node.server.InJvmCluster;

import dev.segstore.adapter.ShardFilter;
import dev.segstore.adapter.ShardInfo;
import dev.segstore.adapter.StorageAdapter;
import dev.segstore.adapter.testkit.StorageAdapterConformance;
import dev.segstore.client.SegmentStorageAdapter;
import org.junit.jupiter.api.AfterAll;

import java.util.concurrent.TimeUnit;

/**
 * The whole adapter contract against the replicated engine: a real in-JVM cluster (3 meta, 3 storage nodes),
 * started once for the class; each test starts from a cluster without shards.
 */
class SegmentEngineConformanceTest extends StorageAdapterConformance {
    private static InJvmCluster cluster;

    @Override
    protected StorageAdapter openAdapter() throws Exception {
        if (cluster == null) {
            cluster = new InJvmCluster();
        }
        SegmentStorageAdapter a = new SegmentStorageAdapter(new SegmentStorageAdapter.Settings(cluster.metaAddresses, 30_000, 5_000,
                dev.segstore.protocol.meta.DurabilityMode.FSYNC));
        for (ShardInfo s : a.listShards(ShardFilter.all()).get(60, TimeUnit.SECONDS)) {
            a.deleteShard(s.name()).get(60, TimeUnit.SECONDS);
        }
        return a;
    }

    @Override
    protected String storageType() {
        return SegmentStorageAdapter.STORAGE_TYPE;
    }

    @AfterAll
    static void stopCluster() throws Exception {
        if (cluster != null) {
            cluster.close();
            cluster = null;
        }
    }
}
