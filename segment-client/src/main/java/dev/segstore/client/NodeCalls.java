package dev.segstore.client;

import com.google.protobuf.Message;
import com.google.protobuf.Parser;
import dev.segstore.adapter.ErrorCode;
import dev.segstore.adapter.StorageException;
import dev.segstore.protocol.node.FetchRequest;
import dev.segstore.protocol.rpc.RpcClient;

import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The segment engine's calls to storage nodes: each goes to a node by id, over the adapter's {@link RpcClient}, with
 * the call timeout ({@code call.timeout.ms}). A node's address is learnt from the meta-service and kept until
 * {@link #forgetAddresses}. Thread-safe.
 */
final class NodeCalls {
    private final MetaClient meta;
    private final RpcClient nodes;
    private final long callTimeoutMs;
    private final Map<Integer, String> nodeAddresses = new ConcurrentHashMap<>();

    NodeCalls(MetaClient meta, RpcClient nodes, long callTimeoutMs) {
        this.meta = meta;
        this.nodes = nodes;
        this.callTimeoutMs = callTimeoutMs;
    }

    /** A consumer fetch: batches sent without copying, checked and decoded here. */
    CompletableFuture<ConsumerFetch> fetchFrom(int nodeId, FetchRequest request) {
        if (nodeId < 0) {
            return CompletableFuture.failedFuture(new StorageException(ErrorCode.UNAVAILABLE, "the segment has no leader now"));
        }
        return address(nodeId).thenCompose(address -> ConsumerFetch.call(nodes, address, request, callTimeoutMs));
    }

    /** A request to storage node {@code nodeId} (-1: the segment has no leader, which fails UNAVAILABLE). */
    <R extends Message> CompletableFuture<R> callNode(int nodeId, String method, Message request, Parser<R> parser) {
        if (nodeId < 0) {
            return CompletableFuture.failedFuture(new StorageException(ErrorCode.UNAVAILABLE, "the segment has no leader now"));
        }
        return address(nodeId).thenCompose(address -> nodes.call(address, method, request, parser, callTimeoutMs));
    }

    /** The address of storage node {@code nodeId}: the one learnt, else asked of the meta-service. */
    CompletableFuture<String> address(int nodeId) {
        String known = nodeAddresses.get(nodeId);
        if (known != null) {
            return CompletableFuture.completedFuture(known);
        }
        return meta.describeCluster().thenApply(d -> {
            d.getNodesList().forEach(n -> nodeAddresses.put(n.getNodeId(), n.getHost() + ":" + n.getPort()));
            String a = nodeAddresses.get(nodeId);
            if (a == null) {
                throw new StorageException(ErrorCode.UNAVAILABLE, "storage node " + nodeId + " is not known to the meta-service");
            }
            return a;
        });
    }

    /** Forgets the addresses learnt: a node may have come back on another address, so the next call asks again. */
    void forgetAddresses() {
        nodeAddresses.clear();
    }
}
