package dev.segstore.meta.server;

import dev.segstore.meta.raft.MetaStateMachine;
import dev.segstore.meta.raft.RaftGroup;
import dev.segstore.meta.state.MetaState;
import dev.segstore.protocol.rpc.Frames;
import dev.segstore.protocol.rpc.RpcServer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
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

    private MetaServer(MetaConfig config) throws IOException, InterruptedException {
        this.config = config;
        AtomicReference<Controller> controllerRef = new AtomicReference<>();
        MetaStateMachine fsm = new MetaStateMachine(config.self().toString(), state, new MetaStateMachine.LeaderListener() {
            @Override
            public void onLeaderStart(long term) {
                Controller c = controllerRef.get();
                if (c != null) {
                    c.onLeaderStart();
                }
            }

            @Override
            public void onLeaderStop() {
                Controller c = controllerRef.get();
                if (c != null) {
                    c.onLeaderStop();
                }
            }
        });
        this.rpc = new RpcServer(2, Frames.DEFAULT_MAX_FRAME_BYTES);
        this.raft = new RaftGroup(config, fsm);
        this.controller = new Controller(state, raft, config.sessionTimeoutMs(), System::currentTimeMillis);
        controllerRef.set(controller);
        if (raft.isLeader()) {
            controller.onLeaderStart(); // elected before the reference was set
        }
        new MetaService(state, raft, controller, System::currentTimeMillis, config.peers()).register(rpc);
        rpc.start(config.self().host(), config.self().rpcPort());
        LOG.info("Meta node {} started: Raft on {}, RPC on {}, data in {}", config.self(), config.self().raftAddress(),
                config.self().rpcAddress(), config.dataDir());
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

    public boolean isLeader() {
        return raft.isLeader();
    }

    @Override
    public void close() {
        rpc.close();
        controller.close();
        raft.close();
        LOG.info("Meta node {} stopped", config.self());
    }
}
