package dev.segstore.meta.server;

/**
 * One member of the meta-service group: {@code host:raftPort:rpcPort}. Raft traffic (sofa-jraft) uses the Raft
 * port; storage nodes and clients use the RPC port.
 */
public record MetaPeer(String host, int raftPort, int rpcPort) {

    public static MetaPeer parse(String spec) {
        String[] parts = spec.trim().split(":");
        if (parts.length != 3) {
            throw new IllegalArgumentException("meta peer '" + spec + "' must be host:raftPort:rpcPort");
        }
        try {
            return new MetaPeer(parts[0], port(parts[1], spec), port(parts[2], spec));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("meta peer '" + spec + "' has a port that is not a number");
        }
    }

    private static int port(String s, String spec) {
        int p = Integer.parseInt(s);
        if (p < 1 || p > 65535) {
            throw new IllegalArgumentException("meta peer '" + spec + "': port " + p + " is not in 1..65535");
        }
        return p;
    }

    public String raftAddress() {
        return host + ":" + raftPort;
    }

    public String rpcAddress() {
        return host + ":" + rpcPort;
    }

    @Override
    public String toString() {
        return host + ":" + raftPort + ":" + rpcPort;
    }
}
