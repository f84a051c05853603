package dev.segstore.node.server;

import dev.segstore.adapter.ErrorCode;
import dev.segstore.node.replica.Partition;
import dev.segstore.node.replica.PartitionStatus;
import dev.segstore.protocol.rpc.RpcException;
import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import io.prometheus.metrics.core.metrics.Histogram;
import io.prometheus.metrics.exporter.httpserver.HTTPServer;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.prometheus.metrics.model.snapshots.Unit;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.function.Supplier;

/**
 * A storage node's metrics, served in the Prometheus text format at {@code http://host:metrics.port/metrics}
 * when {@code metrics.port} is set (docs/configuration.md lists every metric). Request counters and latency
 * histograms are updated as answers complete; the replica gauges are read from the replicas when scraped.
 */
final class NodeMetrics implements AutoCloseable {
    private final PrometheusRegistry registry = new PrometheusRegistry();
    private final Counter requests;
    private final Histogram latency;
    private final Counter producedRecords;
    private final Counter producedBytes;
    private final Counter fetchedBytes;
    private final Counter shardProducedRecords;
    private final Counter shardFetchedBytes;
    private final HTTPServer server;

    /** A data directory's label: where its logs are ({@code <data dir>/logs}). */
    private static String label(DataDirectories.Dir d) {
        return d.root().resolve("logs").toString();
    }

    /**
     * @param replicas what the gauges are read from, each scrape
     * @param port     -1: no endpoint; 0: a free port; else that port, on {@code host}
     */
    NodeMetrics(String host, int port, Supplier<Collection<Partition>> replicas, DataDirectories directories) throws IOException {
        // The JVM's own: memory by area and pool, GC collections and time, threads, classes, CPU, uptime.
        io.prometheus.metrics.instrumentation.jvm.JvmMetrics.builder().register(registry);
        requests = Counter.builder().name("segstore_node_requests_total")
                .help("Data-plane requests answered, by method and result (ok or the error code)")
                .labelNames("method", "result").register(registry);
        latency = Histogram.builder().name("segstore_node_request_latency_seconds").unit(Unit.SECONDS)
                .help("Time from a request's arrival to its answer (produce: until the ISR has it), by method; follower fetches are long-polled and left out")
                .labelNames("method").classicOnly()
                .classicUpperBounds(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
                .register(registry);
        producedRecords = Counter.builder().name("segstore_node_produced_records_total")
                .help("Records acknowledged to producers by this node as leader").register(registry);
        producedBytes = Counter.builder().name("segstore_node_produced_bytes_total")
                .help("Produce request bytes acknowledged by this node as leader").register(registry);
        fetchedBytes = Counter.builder().name("segstore_node_fetched_bytes_total")
                .help("Batch bytes sent to fetchers, by reader (consumer or follower)").labelNames("reader").register(registry);
        GaugeWithCallback.builder().name("segstore_node_replicas")
                .help("Segment replicas hosted here, by role (leader, follower, none)").labelNames("role")
                .callback(cb -> {
                    int leaders = 0;
                    int followers = 0;
                    int none = 0;
                    for (Partition p : replicas.get()) {
                        switch (p.role()) {
                            case LEADER -> leaders++;
                            case FOLLOWER -> followers++;
                            default -> none++;
                        }
                    }
                    cb.call(leaders, "leader");
                    cb.call(followers, "follower");
                    cb.call(none, "none");
                }).register(registry);
        GaugeWithCallback.builder().name("segstore_node_under_replicated_segments")
                .help("Segments led here whose ISR is smaller than their replica set")
                .callback(cb -> cb.call(count(replicas, h -> h.isr().size() < h.replicas()))).register(registry);
        GaugeWithCallback.builder().name("segstore_node_under_min_isr_segments")
                .help("Segments led here whose ISR is below min ISR: their writes are refused")
                .callback(cb -> cb.call(count(replicas, h -> h.isr().size() < h.minIsr()))).register(registry);
        GaugeWithCallback.builder().name("segstore_node_max_follower_lag_records")
                .help("Over the segments led here: the most records a follower lacks of the leader's log end")
                .callback(cb -> {
                    long max = 0;
                    for (Partition p : replicas.get()) {
                        max = Math.max(max, p.status().maxFollowerLag());
                    }
                    cb.call(max);
                }).register(registry);
        List<DataDirectories.Dir> dirs = directories.all();
        GaugeWithCallback.builder().name("segstore_node_dir_online").help("1 while the data directory is online, 0 once an I/O error took it offline")
                .labelNames("dir").callback(cb -> dirs.forEach(d -> cb.call(d.isOnline() ? 1 : 0, label(d)))).register(registry);
        List<DataDirectories.Dir> opened = dirs.stream().filter(d -> d.logs() != null).toList();
        GaugeWithCallback.builder().name("segstore_node_dir_queued_bytes").help("Bytes of appends queued in the data directory and not yet acknowledged")
                .labelNames("dir").callback(cb -> opened.forEach(d -> cb.call(d.logs().queuedBytes(), label(d)))).register(registry);
        GaugeWithCallback.builder().name("segstore_node_dir_queued_appends").help("Appends queued in the data directory and not yet acknowledged")
                .labelNames("dir").callback(cb -> opened.forEach(d -> cb.call(d.logs().queuedAppends(), label(d)))).register(registry);
        io.prometheus.metrics.core.metrics.CounterWithCallback.builder().name("segstore_node_dir_written_bytes")
                .help("Bytes of appends written to segment files in the data directory").labelNames("dir")
                .callback(cb -> opened.forEach(d -> cb.call(d.logs().writtenBytes(), label(d)))).register(registry);
        GaugeWithCallback.builder().name("segstore_node_dir_log_bytes").help("Bytes of the replicas' logs in the data directory")
                .labelNames("dir").callback(cb -> {
                    Map<Path, Long> bytes = new HashMap<>();
                    opened.forEach(d -> bytes.put(d.logs().root(), 0L));
                    for (Partition p : replicas.get()) {
                        bytes.computeIfPresent(p.log().dir().getParent(), (k, v) -> v + p.log().sizeInBytes());
                    }
                    opened.forEach(d -> cb.call(bytes.get(d.logs().root()), label(d)));
                }).register(registry);
        Histogram fsync = Histogram.builder().name("segstore_node_dir_fsync_seconds").unit(Unit.SECONDS)
                .help("Duration of each flush's fsyncs in the data directory").labelNames("dir").classicOnly()
                .classicUpperBounds(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1)
                .register(registry);
        for (DataDirectories.Dir d : opened) {
            io.prometheus.metrics.core.datapoints.DistributionDataPoint fsyncDir = fsync.labelValues(label(d));
            d.logs().onForce(n -> fsyncDir.observe(n / 1e9));
        }
        shardProducedRecords = Counter.builder().name("segstore_node_shard_produced_records_total")
                .help("Records acknowledged to producers by this node as leader, by shard").labelNames("shard").register(registry);
        shardFetchedBytes = Counter.builder().name("segstore_node_shard_fetched_bytes_total")
                .help("Batch bytes sent to consumers by this node, by shard").labelNames("shard").register(registry);
        server = port < 0 ? null : HTTPServer.builder().hostname(host).port(port).registry(registry).buildAndStart();
    }

    private static int count(Supplier<Collection<Partition>> replicas, java.util.function.Predicate<PartitionStatus> leaderTest) {
        int n = 0;
        for (Partition p : replicas.get()) {
            PartitionStatus h = p.status();
            if (h.role() == Partition.Role.LEADER && leaderTest.test(h)) {
                n++;
            }
        }
        return n;
    }

    /** The bound port of the endpoint, or -1 when there is none. */
    int port() {
        return server == null ? -1 : server.getPort();
    }

    PrometheusRegistry registry() {
        return registry;
    }

    /** Counts {@code answer} by method and result when it completes; times it unless {@code timed} is false. */
    <T> CompletableFuture<T> observe(String method, boolean timed, CompletableFuture<T> answer) {
        long start = System.nanoTime();
        return answer.whenComplete((v, e) -> {
            requests.labelValues(method, e == null ? "ok" : result(e)).inc();
            if (timed) {
                latency.labelValues(method).observe((System.nanoTime() - start) / 1e9);
            }
        });
    }

    /** Drops the per-shard series of {@code shard} (this node hosts none of its replicas any more: deleted, expired, moved). */
    void forgetShard(String shard) {
        shardProducedRecords.remove(shard);
        shardFetchedBytes.remove(shard);
    }

    void produced(String shard, int records, int bytes) {
        producedRecords.inc(records);
        producedBytes.inc(bytes);
        shardProducedRecords.labelValues(shard).inc(records);
    }

    void fetched(String shard, boolean follower, long bytes) {
        fetchedBytes.labelValues(follower ? "follower" : "consumer").inc(bytes);
        if (!follower) {
            shardFetchedBytes.labelValues(shard).inc(bytes);
        }
    }

    private static String result(Throwable t) {
        Throwable e = t instanceof CompletionException && t.getCause() != null ? t.getCause() : t;
        return e instanceof RpcException re ? ErrorCode.fromCode(re.code()).name() : ErrorCode.INTERNAL.name();
    }

    @Override
    public void close() {
        if (server != null) {
            server.close();
        }
    }
}
