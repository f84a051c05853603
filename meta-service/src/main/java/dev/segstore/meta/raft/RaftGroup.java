package dev.segstore.meta.raft;

import com.alipay.sofa.jraft.Node;
import com.alipay.sofa.jraft.RaftGroupService;
import com.alipay.sofa.jraft.Status;
import com.alipay.sofa.jraft.closure.ReadIndexClosure;
import com.alipay.sofa.jraft.conf.Configuration;
import com.alipay.sofa.jraft.entity.PeerId;
import com.alipay.sofa.jraft.entity.Task;
import com.alipay.sofa.jraft.error.RaftError;
import com.alipay.sofa.jraft.option.NodeOptions;
import dev.segstore.adapter.ErrorCode;
import dev.segstore.meta.server.MetaConfig;
import dev.segstore.meta.server.MetaPeer;
import dev.segstore.meta.state.CommandResult;
import dev.segstore.protocol.meta.Command;
import dev.segstore.protocol.rpc.RpcException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.stream.Collectors;

/**
 * This node's membership in the meta-service Raft group (sofa-jraft): proposes commands, confirms reads with
 * ReadIndex, and says who leads. Failures come back as {@link RpcException}s with adapter error codes:
 * NOT_LEADER (with the leader's RPC address as a hint) or UNAVAILABLE.
 */
public final class RaftGroup implements Consensus, AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(RaftGroup.class);
    public static final String GROUP_ID = "segstore-meta";
    private final MetaConfig config;
    private final RaftGroupService service;
    private final Node node;
    /**
     * Completes read barriers, off jraft's threads: jraft runs a ReadIndex closure while it holds a monitor of its
     * own, and what waits on the barrier calls back into jraft ({@link #isLeader()} takes the node's read lock).
     * With a writer queued for that lock (an election or step-down timer) and jraft's read-index thread holding
     * the read lock while it waits for the same monitor, the three blocked each other and the meta leader hung
     * for good (found by the fault schedules, issue 12).
     */
    private final ExecutorService callbacks = Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "meta-raft-callbacks");
        t.setDaemon(true);
        return t;
    });

    public RaftGroup(MetaConfig config, MetaStateMachine fsm) throws IOException {
        this.config = config;
        Files.createDirectories(config.dataDir());
        NodeOptions options = new NodeOptions();
        options.setElectionTimeoutMs(config.electionTimeoutMs());
        options.setFsm(fsm);
        options.setLogUri(config.dataDir().resolve("raft-log").toString());
        options.setRaftMetaUri(config.dataDir().resolve("raft-meta").toString());
        options.setSnapshotUri(config.dataDir().resolve("snapshot").toString());
        options.setSnapshotIntervalSecs(config.snapshotIntervalSecs());
        Configuration conf = new Configuration();
        conf.parse(config.peers().stream().map(MetaPeer::raftAddress).collect(Collectors.joining(",")));
        options.setInitialConf(conf);
        PeerId self = new PeerId();
        self.parse(config.self().raftAddress());
        this.service = new RaftGroupService(GROUP_ID, self, options);
        this.node = service.start();
    }

    private volatile long readyTerm = -1;

    /**
     * True once this node leads and its state machine has applied everything committed before its term (jraft
     * calls {@code onLeaderStart} then). Between election and that point the node answers NOT_LEADER, so no
     * decision is taken on a state that lags.
     */
    @Override
    public boolean isLeader() {
        return node.isLeader() && readyTerm >= 0;
    }

    /** Called by the state machine's onLeaderStart / onLeaderStop. */
    public void leaderReady(long term) {
        readyTerm = term;
    }

    public void leaderGone() {
        readyTerm = -1;
    }

    /** RPC address of the leader as this node knows it, or empty. */
    @Override
    public String leaderHint() {
        PeerId leader = node.getLeaderId();
        return leader == null || leader.isEmpty() ? "" : config.rpcAddressOf(leader.getEndpoint().toString());
    }

    @Override
    public RpcException notLeader() {
        String hint = leaderHint();
        return new RpcException(ErrorCode.NOT_LEADER.code(), "meta node " + config.self() + " is not the leader"
                + (hint.isEmpty() ? " and knows no leader yet" : ""), hint);
    }

    /** Replicates and applies {@code command}; completes with its result on this node, the leader. */
    @Override
    public CompletableFuture<CommandResult> propose(Command command) {
        CompletableFuture<CommandResult> f = new CompletableFuture<>();
        if (!isLeader()) {
            f.completeExceptionally(notLeader());
            return f;
        }
        Task task = new Task(ByteBuffer.wrap(command.toByteArray()), new ProposeClosure(f, this::failure));
        node.apply(task);
        return f;
    }

    /**
     * Completes once this node's state reflects every command committed before the call (linearizable read), on
     * the thread {@code meta-raft-callbacks}, never on one of jraft's.
     */
    @Override
    public CompletableFuture<Void> readBarrier() {
        CompletableFuture<Void> f = new CompletableFuture<>();
        if (!isLeader()) {
            f.completeExceptionally(notLeader());
            return f;
        }
        node.readIndex(new byte[0], new ReadIndexClosure() {
            @Override
            public void run(Status status, long index, byte[] reqCtx) {
                Runnable complete = () -> {
                    if (status.isOk()) {
                        f.complete(null);
                    } else {
                        f.completeExceptionally(failure(status));
                    }
                };
                try {
                    callbacks.execute(complete);
                } catch (RejectedExecutionException closed) {
                    f.completeExceptionally(notLeader()); // closing: no barrier holds any more
                }
            }
        });
        return f;
    }

    private RuntimeException failure(Status status) {
        if (status.getRaftError() == RaftError.EPERM || !isLeader()) {
            return notLeader();
        }
        return new RpcException(ErrorCode.UNAVAILABLE.code(), "meta-service could not commit: " + status);
    }

    public Node node() {
        return node;
    }

    /**
     * If this node leads, hands leadership to the most caught-up other peer (jraft's {@code transferLeadershipTo}
     * with {@link PeerId#ANY_PEER}: it stops taking proposals and tells that peer to start an election at once) and
     * waits up to {@code timeoutMs} until another peer is known to lead. Called before the node stops, while its
     * RPC port still answers (NOT_LEADER, naming the new leader once known), so the group has a leader again in
     * about one round trip instead of an election timeout. Returns whether another peer leads; false also when
     * this node does not lead or no other peer is alive (then there is nobody to hand over to).
     */
    public boolean transferLeadership(long timeoutMs) {
        PeerId self = node.getNodeId().getPeerId();
        try {
            if (!node.isLeader() || node.listAlivePeers().stream().allMatch(self::equals)) {
                return false;
            }
        } catch (IllegalStateException notLeaderAnyMore) {
            return false;
        }
        Status status = node.transferLeadershipTo(PeerId.ANY_PEER);
        if (!status.isOk()) {
            LOG.warn("Meta node {}: leadership transfer refused: {}", config.self(), status);
            return false;
        }
        long deadline = System.nanoTime() + timeoutMs * 1_000_000L;
        while (System.nanoTime() < deadline) {
            PeerId leader = node.getLeaderId();
            if (!node.isLeader() && leader != null && !leader.isEmpty() && !leader.equals(self)) {
                LOG.info("Meta node {} handed leadership to {}", config.self(), leader);
                return true;
            }
            java.util.concurrent.locks.LockSupport.parkNanos(2_000_000L);
        }
        LOG.warn("Meta node {}: no other peer took leadership within {} ms; stopping anyway (the others elect one after the election timeout)",
                config.self(), timeoutMs);
        return false;
    }

    @Override
    public void close() {
        service.shutdown();
        try {
            service.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        callbacks.shutdown();
    }
}
