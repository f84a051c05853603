package dev.segstore.meta.server;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.util.ArrayList;
import java.util.List;

/** Free loopback ports for test servers. */
public final class TestPorts {
    private TestPorts() {
    }

    /**
     * A single-node meta peer on free loopback ports: its RPC and Raft ports are reserved together, so they
     * differ (two lookups one after the other can return the same port, just freed: "Address already in use").
     */
    public static MetaPeer freeMetaPeer() throws IOException {
        List<ServerSocket> held = new ArrayList<>();
        try {
            for (int i = 0; i < 2; i++) {
                held.add(new ServerSocket(0, 1, InetAddress.getLoopbackAddress()));
            }
            return new MetaPeer("127.0.0.1", held.get(0).getLocalPort(), held.get(1).getLocalPort());
        } finally {
            for (ServerSocket s : held) {
                s.close();
            }
        }
    }
}
