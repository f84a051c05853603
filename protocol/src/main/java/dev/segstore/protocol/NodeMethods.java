package dev.segstore.protocol;

/** RPC method names of the storage nodes' data plane (requests and answers in node.proto). */
public final class NodeMethods {
    public static final String PRODUCE = "node.Produce";
    public static final String FETCH = "node.Fetch";
    /** Many follower fetches to one leader node in one call (node.proto, FetchManyRequest); newer nodes only. */
    public static final String FETCH_MANY = "node.FetchMany";
    public static final String EPOCH_END_OFFSET = "node.EpochEndOffset";
    public static final String READ_BY_KEY = "node.ReadByKey";
    public static final String READ_BY_TAG = "node.ReadByTag";
    public static final String OFFSET_FOR_TIMESTAMP = "node.OffsetForTimestamp";
    public static final String DELETE = "node.Delete";
    public static final String REPLICA_STATUS = "node.ReplicaStatus";

    private NodeMethods() {
    }
}
