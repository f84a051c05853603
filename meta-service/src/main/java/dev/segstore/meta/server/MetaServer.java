package dev.segstore.meta.server;

import dev.segstore.meta.raft.MetaStateMachine;
import dev.segstore.meta.raft.RaftGroup;
import dev.segstore.meta.state.MetaState;
import dev.segstore.protocol.rpc.Frames;
import dev.segstore.protocol.rpc.RpcServer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;

/**
 * One meta-service node: the Raft member (sofa-jraft, on the Raft port), the state machine, the controller
 * (active while this node leads), and the RPC server for storage nodes and clients (on the RPC port).
 */
public final class MetaServer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(MetaServer.class);
    private final MetaConfig config;
    private final MetaState state = new MetaState();
    private final RaftGroup raft;
    private final Controller controller;
    private final RpcServer rpc;
    private final MetaMetrics metrics;
    /** The storage nodes' long polls (meta.WatchAssignments), told of every command applied. */
    private final AssignmentWatches watches = new AssignmentWatches();
    private final java.util.concurrent.ScheduledExecutorService reassignTimer = java.util.concurrent.Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "meta-reassign");
        t.setDaemon(true);
        return t;
    });

    /** Where sofa-jraft writes its SIGUSR2 dumps; unset, it writes them into the working directory. */
    static final List<String> JRAFT_DUMP_DIR_PROPERTIES = List.of("jraft.signal.node.describe.dir",
            "jraft.signal.node.metrics.dir", "jraft.signal.thread.pool.metrics.dir");

    /**
     * Sends sofa-jraft's SIGUSR2 dumps (node_describe.log, node_metrics.log, thread_pool_metrics.log, one set per
     * signal) to {@code dataDir}/jraft-dumps instead of the working directory, where they piled up in source trees.
     * jraft reads the settings once, when its first node is created, so the first meta node of a JVM decides; a
     * value given on the command line (-D) wins.
     */
    static void directJraftDumps(Path dataDir) {
        for (String key : JRAFT_DUMP_DIR_PROPERTIES) {
            if (System.getProperty(key) == null) {
                System.setProperty(key, dataDir.resolve("jraft-dumps").toString());
            }
        }
    }

    private MetaServer(MetaConfig config) throws IOException, InterruptedException {
        this.config = config;
        directJraftDumps(config.dataDir());
        // jraft may elect this node before the constructor finishes: leadership is recorded here and handed
        // to the raft group and controller once they exist (and at once afterwards).
        AtomicReference<Controller> controllerRef = new AtomicReference<>();
        AtomicReference<RaftGroup> raftRef = new AtomicReference<>();
        java.util.concurrent.atomic.AtomicLong leaderTerm = new java.util.concurrent.atomic.AtomicLong(-1);
        MetaStateMachine fsm = new MetaStateMachine(config.self().toString(), state, new MetaStateMachine.LeaderListener() {
            @Override
            public synchronized void onLeaderStart(long term) {
                leaderTerm.set(term);
                if (raftRef.get() != null) {
                    raftRef.get().leaderReady(term);
                    controllerRef.get().onLeaderStart();
                }
            }

            @Override
            public synchronized void onLeaderStop() {
                leaderTerm.set(-1);
                RaftGroup r = raftRef.get();
                watches.leaderGone(() -> r != null ? r.notLeader() : new dev.segstore.protocol.rpc.RpcException(
                        dev.segstore.adapter.ErrorCode.NOT_LEADER.code(), "meta node " + config.self() + " is no longer the leader"));
                if (raftRef.get() != null) {
                    raftRef.get().leaderGone();
                    controllerRef.get().onLeaderStop();
                }
            }
        });
        fsm.observe(watches);
        this.rpc = new RpcServer(2, Frames.DEFAULT_MAX_FRAME_BYTES).tls(config.tls());
        this.raft = new RaftGroup(config, fsm);
        this.controller = new Controller(state, raft, config.sessionTimeoutMs(), System::currentTimeMillis,
                () -> System.nanoTime() / 1_000_000); // sessions and retention: a monotonic clock (see Controller)
        Object listenerLock = fsm.listener();
        synchronized (listenerLock) {
            controllerRef.set(controller);
            raftRef.set(raft);
            if (leaderTerm.get() >= 0) {
                raft.leaderReady(leaderTerm.get());
                controller.onLeaderStart();
            }
        }
        new MetaService(state, raft, controller, System::currentTimeMillis, config.peers(), watches).register(rpc);
        MetaMetrics started = null;
        try {
            rpc.start(config.self().host(), config.listenRpcPort());
            started = new MetaMetrics(config.self().host(), config.metricsPort(), state, raft::node);
            rpc.observe(started::answered);
        } catch (Exception | Error e) {
            // Do not leave a Raft member running without its service port.
            rpc.close();
            controller.close();
            raft.close();
            watches.close();
            throw e;
        }
        this.metrics = started;
        ReplicaReassigner reassigner = new ReplicaReassigner(state, raft, config.replicaReassignAfterMs(),
                () -> System.nanoTime() / 1_000_000, System::currentTimeMillis);
        long period = ReplicaReassigner.period(config.replicaReassignAfterMs());
        reassignTimer.scheduleWithFixedDelay(() -> {
            try {
                reassigner.tick();
            } catch (RuntimeException e) {
                LOG.warn("Replica reassignment check failed: {}", e.toString());
            }
        }, period, period, java.util.concurrent.TimeUnit.MILLISECONDS);
        LOG.info("Meta node {} started: Raft on {}, RPC on {} (listening on port {}), data in {}", config.self(),
                config.self().raftAddress(), config.self().rpcAddress(), config.listenRpcPort(), config.dataDir());
    }

    public static MetaServer start(MetaConfig config) throws IOException, InterruptedException {
        return new MetaServer(config);
    }

    public MetaConfig config() {
        return config;
    }

    public MetaState state() {
        return state;
    }

    public RaftGroup raft() {
        return raft;
    }

    /** The storage nodes whose assignment watch connection to this node is open (its controller's view; tests). */
    public java.util.Set<Integer> nodesWatching() {
        return controller.watchingNodes();
    }

    /** How many reports of silent leaders this node's controller took while it led (tests). */
    public long silentLeaderReports() {
        return controller.silentLeaderReports();
    }

    /** Tests: the controller probes storage nodes' ports with {@code p} (see Controller.connectionClosed). */
    public void probeStorageNodesWith(Controller.Probe p) {
        controller.probeWith(p);
    }

    public boolean isLeader() {
        return raft.isLeader();
    }

    /** The port of this node's Prometheus endpoint, or -1 when it has none. */
    public int metricsPort() {
        return metrics.port();
    }

    /**
     * Stops this node. A leader first hands Raft leadership to another peer (bounded by the election timeout, after
     * which jraft gives the transfer up), while its RPC port still answers: the group has a ready leader again
     * within a round trip or two instead of after an election timeout, and clients asking this node meanwhile are
     * told NOT_LEADER rather than finding the port closed.
     */
    @Override
    public void close() {
        reassignTimer.shutdownNow();
        raft.transferLeadership(config.electionTimeoutMs());
        metrics.close();
        rpc.close();
        controller.close();
        raft.close();
        watches.close();
        LOG.info("Meta node {} stopped", config.self());
    }
}
