package dev.segstore.meta.raft;

import dev.segstore.meta.state.CommandResult;
import dev.segstore.protocol.meta.Command;
import dev.segstore.protocol.rpc.RpcException;

import java.util.concurrent.CompletableFuture;

/**
 * What the service and the controller need from the Raft group ({@link RaftGroup} in production): leadership,
 * proposals and linearizable read barriers. A seam, so that tests can drive a {@code MetaService} with a group
 * whose barrier fails or never completes.
 */
public interface Consensus {
    /** True while this node leads and its state has applied everything committed before its term. */
    boolean isLeader();

    /** A NOT_LEADER error naming the leader this node knows, if any. */
    RpcException notLeader();

    /** RPC address of the leader as this node knows it, or empty. */
    String leaderHint();

    /** Replicates and applies {@code command}; completes with its result on this node, the leader. */
    CompletableFuture<CommandResult> propose(Command command);

    /**
     * Completes once this node's state reflects every command committed before the call (ReadIndex), or fails
     * (NOT_LEADER when this node no longer leads).
     */
    CompletableFuture<Void> readBarrier();
}
