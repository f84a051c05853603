package dev.segstore.protocol;

/** RPC method names of the meta-service (docs/wire-protocol.md lists requests and answers). */
public final class MetaMethods {
    public static final String REGISTER_NODE = "meta.RegisterNode";
    public static final String HEARTBEAT = "meta.Heartbeat";
    /** Long poll: answered when a command may have changed assignments (docs/wire-protocol.md). */
    public static final String WATCH_ASSIGNMENTS = "meta.WatchAssignments";
    public static final String CONTROLLED_SHUTDOWN = "meta.ControlledShutdown";
    public static final String PROPOSE_ISR = "meta.ProposeIsr";
    public static final String ROLL_SEGMENT = "meta.RollSegment";
    /** Close ahead: marks the open segment closing (docs/wire-protocol.md). */
    public static final String CLOSE_SEGMENT = "meta.CloseSegment";
    /** Raises the cluster's feature level (meta.proto, SetFeatureLevelRequest). */
    public static final String SET_FEATURE_LEVEL = "meta.SetFeatureLevel";
    public static final String CREATE_SHARD = "meta.CreateShard";
    public static final String DELETE_SHARD = "meta.DeleteShard";
    public static final String LIST_SHARDS = "meta.ListShards";
    public static final String GET_ROUTE = "meta.GetRoute";
    public static final String COMMIT_OFFSETS = "meta.CommitOffsets";
    public static final String GET_OFFSET = "meta.GetOffset";
    public static final String DESCRIBE_CLUSTER = "meta.DescribeCluster";
    public static final String ALTER_SHARD = "meta.AlterShard";
    public static final String MOVE_LEADER = "meta.MoveLeader";
    public static final String LIST_GROUPS = "meta.ListGroups";
    public static final String DECOMMISSION_NODE = "meta.DecommissionNode";

    private MetaMethods() {
    }
}
