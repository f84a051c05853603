package dev.segstore.meta.server;

import dev.segstore.meta.state.CommandResult;
import dev.segstore.meta.state.MetaState;
import dev.segstore.protocol.meta.Command;
import dev.segstore.protocol.meta.NodeState;
import dev.segstore.protocol.meta.RegisterNodeCommand;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.net.InetAddress;
import java.net.ServerSocket;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The controller fences a storage node whose watch connection closed only when the node's registered address
 * refuses connections (issue 14, item 6: a dead process found from its closed connections, not only from the
 * session timeout); a node that still accepts, or whose probe fails otherwise, is left to its session.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class DeadNodeProbeTest {
    private final MetaState state = new MetaState();
    private final MetaServiceTest.FakeRaft raft = new MetaServiceTest.FakeRaft(state);
    private final Controller controller = new Controller(state, raft, 60_000, System::currentTimeMillis, System::currentTimeMillis);

    @AfterEach
    void close() {
        controller.close();
    }

    private void register(int id, int port) {
        CommandResult r = state.apply(Command.newBuilder().setVersion(MetaState.VERSION).setTimestampMs(1).setMonotonicTimestamp(true)
                .setRegisterNode(RegisterNodeCommand.newBuilder().setNodeId(id).setHost("127.0.0.1").setPort(port)).build());
        assertEquals(null, r.error(), r.message());
    }

    private NodeState nodeState(int id) {
        return state.node(id).orElseThrow().getState();
    }

    @Test
    void aNodeWhosePortRefusesConnectionsIsFencedAtOnce() throws Exception {
        int port;
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            port = s.getLocalPort(); // closed below: nothing listens there any more
        }
        register(1, port);
        controller.connectionClosed(1);
        assertEquals(NodeState.FENCED, nodeState(1), "the port refuses: the process is gone");
        assertEquals(1, raft.proposed.get(0).getFenceNode().getNodeId());
        assertEquals(state.node(1).orElseThrow().getIncarnation(), raft.proposed.get(0).getFenceNode().getIncarnation());
    }

    @Test
    void aNodeThatStillAcceptsConnectionsIsLeftToItsSession() throws Exception {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            register(1, s.getLocalPort());
            controller.connectionClosed(1);
            assertEquals(NodeState.ALIVE, nodeState(1), "it listens: alive (or paused), the session decides");
            assertEquals(List.of(), raft.proposed);
        }
    }

    @Test
    void aProbeThatTimesOutOrFailsOtherwiseProvesNothing() {
        register(1, 9);
        controller.probeWith((host, port, timeoutMs) -> {
            throw new java.net.SocketTimeoutException("connect timed out");
        });
        controller.connectionClosed(1);
        controller.probeWith((host, port, timeoutMs) -> {
            throw new java.net.NoRouteToHostException("No route to host");
        });
        controller.connectionClosed(1);
        assertEquals(NodeState.ALIVE, nodeState(1));
        assertEquals(List.of(), raft.proposed);
    }

    @Test
    void onlyTheLeaderProbes() throws Exception {
        int port;
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            port = s.getLocalPort();
        }
        register(1, port);
        raft.leader = false;
        controller.connectionClosed(1);
        assertEquals(NodeState.ALIVE, nodeState(1));
    }
}
