package dev.segstore.node.server;

import dev.segstore.adapter.ErrorCode;
import dev.segstore.protocol.rpc.RpcException;

import java.util.concurrent.CompletableFuture;
import java.util.function.Supplier;

/**
 * The storage node's calls to the meta-service, through the fault seam {@link StorageNode.PeerFaults#metaDrop}
 * (tests; production's {@link StorageNode.PeerFaults#NONE} drops nothing). A call whose request is dropped fails
 * at once UNAVAILABLE without reaching the meta-service; a call whose answer is dropped is made, and whatever it
 * did stays done, but its caller sees it fail TIMEOUT, as when every attempt's answer is lost until the client's
 * deadline (compressed: the caller learns at once). Each is asked when the call starts.
 */
final class MetaCalls {
    private final int nodeId;
    private final StorageNode.PeerFaults faults;

    MetaCalls(int nodeId, StorageNode.PeerFaults faults) {
        this.nodeId = nodeId;
        this.faults = faults;
    }

    /** Makes {@code call} (named {@code method}, as in the RPC) unless the seam drops it. */
    <R> CompletableFuture<R> call(String method, Supplier<CompletableFuture<R>> call) {
        StorageNode.MetaDrop drop = faults.metaDrop(nodeId, method);
        if (drop == StorageNode.MetaDrop.REQUEST) {
            return CompletableFuture.failedFuture(new RpcException(ErrorCode.UNAVAILABLE.code(),
                    "injected fault: " + method + " from storage node " + nodeId + " dropped on its way to the meta-service"));
        }
        CompletableFuture<R> answer = call.get();
        if (drop == StorageNode.MetaDrop.NONE) {
            return answer;
        }
        return answer.handle((r, e) -> {
            throw new RpcException(ErrorCode.TIMEOUT.code(), "injected fault: the meta-service's answer to " + method
                    + " from storage node " + nodeId + " was dropped");
        });
    }
}
