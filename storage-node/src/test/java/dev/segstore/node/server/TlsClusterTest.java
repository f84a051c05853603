package dev.segstore.node.server;

import dev.segstore.adapter.ErrorCode;
import dev.segstore.adapter.NewRecord;
import dev.segstore.adapter.ShardConfig;
import dev.segstore.adapter.StorageException;
import dev.segstore.adapter.StoredRecord;
import dev.segstore.client.MetaClient;
import dev.segstore.client.SegmentStorageAdapter;
import dev.segstore.protocol.meta.DurabilityMode;
import dev.segstore.protocol.rpc.TestCertificates;
import dev.segstore.protocol.rpc.TlsConfig;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A cluster with mutual TLS on every RPC port (meta-service and storage nodes; docs/security.md), with a
 * certificate authority made at test time: a broker with a certificate from the cluster's authority writes and
 * reads across segment rolls (replication, and reads of sealed segments from followers, go over TLS too, the
 * fetched batches as copied buffers); clients without a certificate, or in plain TCP, are refused, and cannot
 * create shards or register a node.
 */
@Timeout(120)
class TlsClusterTest {
    @TempDir
    Path certs;
    private TestCertificates ca;
    private InJvmCluster cluster;

    @BeforeEach
    void start() throws Exception {
        ca = new TestCertificates(certs, "cluster");
        cluster = InJvmCluster.withTls(ca.issue("server").config());
    }

    @AfterEach
    void stop() throws Exception {
        if (cluster != null) {
            cluster.close();
        }
    }

    private SegmentStorageAdapter adapter(TlsConfig tls, long requestTimeoutMs) {
        return new SegmentStorageAdapter(new SegmentStorageAdapter.Settings(cluster.metaAddresses, requestTimeoutMs, 2_000,
                DurabilityMode.FSYNC, tls));
    }

    private static <T> T await(CompletableFuture<T> f) throws Exception {
        return f.get(60, TimeUnit.SECONDS);
    }

    @Test
    void aBrokerWithTheClustersCertificateWritesAndReadsAcrossRolls() throws Exception {
        try (SegmentStorageAdapter broker = adapter(ca.issue("broker").config(), 30_000)) {
            await(broker.createShard(ShardConfig.of("tls", SegmentStorageAdapter.STORAGE_TYPE).withSegmentBytes(64 * 1024)));
            byte[] pad = new byte[900];
            List<Long> offsets = new ArrayList<>();
            for (int i = 0; i < 300; i += 10) {
                List<NewRecord> batch = new ArrayList<>();
                for (int j = i; j < i + 10; j++) {
                    byte[] payload = ("r" + j + new String(pad, StandardCharsets.ISO_8859_1)).getBytes(StandardCharsets.ISO_8859_1);
                    batch.add(NewRecord.of(1_000 + j, payload));
                }
                offsets.addAll(await(broker.batchWrite("tls", batch)));
            }
            assertEquals(300, offsets.size());
            List<StoredRecord> read = new ArrayList<>();
            while (read.size() < 300) {
                List<StoredRecord> got = await(broker.readByOffset("tls", read.size(), 1000));
                assertTrue(!got.isEmpty(), "records after offset " + read.size());
                read.addAll(got);
            }
            for (int i = 0; i < 300; i++) {
                String p = new String(read.get(i).payload(), StandardCharsets.ISO_8859_1);
                assertTrue(p.startsWith("r" + i), "offset " + i + " holds record " + i);
            }
            long segments = await(broker.listShards(dev.segstore.adapter.ShardFilter.all())).size();
            assertEquals(1, segments);
        }
        // The replicas of every segment came through TLS: the followers hold what the leader holds.
        try (MetaClient meta = new MetaClient(cluster.metaAddresses, 2_000, 10_000, ca.issue("admin").config())) {
            var route = meta.route("tls").get(30, TimeUnit.SECONDS);
            assertTrue(route.getSegmentsCount() > 2, "64 KiB segments rolled: " + route.getSegmentsCount());
            route.getSegmentsList().stream().filter(s -> s.getEndOffset() >= 0)
                    .forEach(s -> assertEquals(3, s.getIsrCount(), "sealed segment " + s.getSequence() + " ISR " + s.getIsrList()));
        }
    }

    private static void assertRefused(CompletableFuture<?> call) {
        ExecutionException e = assertThrows(ExecutionException.class, () -> call.get(60, TimeUnit.SECONDS));
        Throwable cause = e.getCause();
        String why = cause.toString();
        if (cause instanceof StorageException se) {
            assertEquals(ErrorCode.UNAVAILABLE, se.code(), why);
        }
        assertTrue(why.contains("TLS") || why.contains("handshake") || why.contains("closed") || why.contains("connect"), why);
    }

    @Test
    void clientsWithoutACertificateOrWithoutTlsAreRefused() throws Exception {
        try (SegmentStorageAdapter noCert = adapter(TlsConfig.client(ca.caFile(), null, null), 1_500);
             SegmentStorageAdapter plain = adapter(null, 1_500)) {
            assertRefused(noCert.createShard(ShardConfig.of("nope", SegmentStorageAdapter.STORAGE_TYPE)));
            assertRefused(plain.createShard(ShardConfig.of("nope", SegmentStorageAdapter.STORAGE_TYPE)));
        }
        try (MetaClient plain = new MetaClient(cluster.metaAddresses, 1_000, 1_500)) {
            assertRefused(plain.registerNode(7, "127.0.0.1", 1234, false, 1L));
        }
        try (SegmentStorageAdapter broker = adapter(ca.issue("broker").config(), 30_000)) {
            assertTrue(await(broker.listShards(dev.segstore.adapter.ShardFilter.all())).isEmpty(), "nothing was created by the refused clients");
        }
    }
}
