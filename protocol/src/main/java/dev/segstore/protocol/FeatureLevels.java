package dev.segstore.protocol;

/**
 * The cluster feature levels this build knows (meta.proto, {@code SetFeatureLevelCommand}; docs/architecture.md,
 * "Close ahead", its upgrades). A level names what every meta node, and from level 2 every storage node, must know
 * before the cluster may ask it of them: the meta-service raises the level only when an operator asks (or for a new
 * cluster), and never above what its own build knows. Shared by the meta-service and the storage node of one build.
 */
public final class FeatureLevels {
    /** Level 1: meta nodes apply {@code CloseSegmentCommand} (close rules 2). Asks nothing of storage nodes. */
    public static final int CLOSE_SEGMENT_COMMAND = 1;
    /**
     * Level 2: every storage node follows close-ahead hand-overs (close rules 3 are taken only from here). From this
     * level on, storage nodes' builds are checked: the level rises only while every alive node knows it, and a node
     * whose build knows less than the cluster's level is refused registration.
     */
    public static final int STORAGE_NODES_CHECKED = 2;
    /** The highest level this build knows, as a meta node and as a storage node. */
    public static final int MAX = 2;

    private FeatureLevels() {
    }

    /** The level a storage node's build knows from what it registered (0, from builds before it was sent, counts as 1). */
    public static int ofStorageNode(int registered) {
        return Math.max(CLOSE_SEGMENT_COMMAND, registered);
    }
}
