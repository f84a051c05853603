package dev.segstore.node.server;

/** RPC method names of the storage nodes' data plane (requests and answers in node.proto). */
public final class NodeMethods {
    public static final String PRODUCE = "node.Produce";
    public static final String FETCH = "node.Fetch";
    public static final String EPOCH_END_OFFSET = "node.EpochEndOffset";

    private NodeMethods() {
    }
}
