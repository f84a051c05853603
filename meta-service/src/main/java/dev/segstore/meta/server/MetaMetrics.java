package dev.segstore.meta.server;

import com.alipay.sofa.jraft.Node;
import dev.segstore.meta.state.MetaState;
import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import io.prometheus.metrics.exporter.httpserver.HTTPServer;
import io.prometheus.metrics.model.registry.PrometheusRegistry;

import java.io.IOException;
import java.util.function.Supplier;

/**
 * A meta-service node's metrics, served in the Prometheus text format at {@code http://host:metrics.port/metrics}
 * when {@code metrics.port} is set (docs/configuration.md lists them). All are read when scraped: the Raft
 * state from jraft, the cluster counts from this node's copy of the state (the leader's is the newest).
 */
final class MetaMetrics implements AutoCloseable {
    private final HTTPServer server;

    /** @param port -1: no endpoint; 0: a free port; else that port, on {@code host} */
    MetaMetrics(String host, int port, MetaState state, Supplier<Node> raft) throws IOException {
        if (port < 0) {
            server = null;
            return;
        }
        PrometheusRegistry registry = new PrometheusRegistry();
        // The JVM's own: memory by area and pool, GC collections and time, threads, classes, CPU, uptime.
        io.prometheus.metrics.instrumentation.jvm.JvmMetrics.builder().register(registry);
        GaugeWithCallback.builder().name("segstore_meta_is_leader").help("1 while this node leads the Raft group (and runs the controller)")
                .callback(cb -> cb.call(raft.get() != null && raft.get().isLeader() ? 1 : 0)).register(registry);
        GaugeWithCallback.builder().name("segstore_meta_raft_index").help("Raft log indexes of this node: last, committed, applied")
                .labelNames("kind").callback(cb -> {
                    Node n = raft.get();
                    if (n != null) {
                        cb.call(n.getLastLogIndex(), "last");
                        cb.call(n.getLastCommittedIndex(), "committed");
                        cb.call(n.getLastAppliedLogIndex(), "applied");
                    }
                }).register(registry);
        GaugeWithCallback.builder().name("segstore_meta_shards").help("Shards in the state")
                .callback(cb -> cb.call(state.health().shards())).register(registry);
        GaugeWithCallback.builder().name("segstore_meta_segments").help("Open and sealed segments in the state")
                .callback(cb -> cb.call(state.health().segments())).register(registry);
        GaugeWithCallback.builder().name("segstore_meta_under_replicated_segments")
                .help("Segments whose ISR is smaller than their replica set")
                .callback(cb -> cb.call(state.health().underReplicated())).register(registry);
        GaugeWithCallback.builder().name("segstore_meta_leaderless_segments")
                .help("Segments without a leader (every ISR member is gone): their reads and writes wait")
                .callback(cb -> cb.call(state.health().leaderless())).register(registry);
        GaugeWithCallback.builder().name("segstore_meta_storage_nodes").help("Registered storage nodes, by state (alive, fenced)")
                .labelNames("state").callback(cb -> {
                    MetaState.Health h = state.health();
                    cb.call(h.aliveNodes(), "alive");
                    cb.call(h.fencedNodes(), "fenced");
                }).register(registry);
        requests = io.prometheus.metrics.core.metrics.Counter.builder().name("segstore_meta_requests_total")
                .help("RPC requests answered by this node, by method and result (ok or the error code, e.g. NOT_LEADER on followers)")
                .labelNames("method", "result").register(registry);
        latency = io.prometheus.metrics.core.metrics.Histogram.builder().name("segstore_meta_request_latency_seconds")
                .unit(io.prometheus.metrics.model.snapshots.Unit.SECONDS)
                .help("Time from a request's dispatch to its answer, by method (writes: until committed and applied)")
                .labelNames("method").classicOnly()
                .classicUpperBounds(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
                .register(registry);
        server = HTTPServer.builder().hostname(host).port(port).registry(registry).buildAndStart();
    }

    private io.prometheus.metrics.core.metrics.Counter requests;
    private io.prometheus.metrics.core.metrics.Histogram latency;

    /** Counts one answer of the RPC server ({@link dev.segstore.protocol.rpc.RpcServer.Observer}); a no-op without an endpoint. */
    void answered(String method, long nanos, int errorCode) {
        if (requests == null) {
            return;
        }
        requests.labelValues(method, errorCode == 0 ? "ok" : dev.segstore.adapter.ErrorCode.fromCode(errorCode).name()).inc();
        latency.labelValues(method).observe(nanos / 1e9);
    }

    /** The bound port of the endpoint, or -1 when there is none. */
    int port() {
        return server == null ? -1 : server.getPort();
    }

    @Override
    public void close() {
        if (server != null) {
            server.close();
        }
    }
}
