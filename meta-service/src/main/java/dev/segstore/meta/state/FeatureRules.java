package dev.segstore.meta.state;

import dev.segstore.adapter.ErrorCode;
import dev.segstore.protocol.FeatureLevels;
import dev.segstore.protocol.meta.Command;
import dev.segstore.protocol.meta.NodeIncarnation;
import dev.segstore.protocol.meta.Segment;
import dev.segstore.protocol.meta.SetFeatureLevelCommand;
import dev.segstore.protocol.meta.Shard;
import dev.segstore.protocol.meta.ShardSettings;
import dev.segstore.protocol.meta.StorageNode;

import java.util.List;
import java.util.function.Function;
import java.util.function.IntPredicate;

import static dev.segstore.meta.state.MetaState.CLOSE_AHEAD_LEVEL;
import static dev.segstore.meta.state.MetaState.CLOSE_RULES;
import static dev.segstore.meta.state.MetaState.MAX_FEATURE_LEVEL;

/**
 * The cluster's feature level (meta.proto, SetFeatureLevelCommand; {@link FeatureLevels}) and the rules a close ahead
 * is taken by at each level (CloseSegmentCommand.rules). Part of {@link MetaState}'s state: it has no lock of its own
 * and is reached only from inside MetaState's synchronized methods. A level or rules beyond this build stop the state
 * machine ({@link #beyondThisBuild}); a lower level, or an alive storage node a raise does not name, is a refusal.
 */
final class FeatureRules {
    /** The first CloseSegmentCommand.rules with the feature level and placement's rules (2: at level 1). */
    private static final int PLACEMENT_RULES = 2;

    private final Function<String, Shard> shardByName;
    private final IntPredicate placeable;
    private final Function<List<NodeIncarnation>, List<StorageNode>> unlisted;
    /** The cluster's feature level: commands beyond it are refused (an older meta node may not know them). */
    private int featureLevel;

    /**
     * @param shardByName the active shard of a name, or null
     * @param placeable   whether a storage node may be placed on a new segment (alive, not shutting down, not decommissioned)
     * @param unlisted    the alive storage nodes whose incarnation a list does not name
     */
    FeatureRules(Function<String, Shard> shardByName, IntPredicate placeable, Function<List<NodeIncarnation>, List<StorageNode>> unlisted) {
        this.shardByName = shardByName;
        this.placeable = placeable;
        this.unlisted = unlisted;
    }

    /** The cluster's feature level (SetFeatureLevelCommand). */
    int get() {
        return featureLevel;
    }

    /** Takes a snapshot's level (checked against this build before). */
    void restore(int level) {
        featureLevel = level;
    }

    /**
     * Why this build cannot apply {@code c} (a feature level or close rules it does not know), or null;
     * {@code neverHadShard}: no shard was ever created (a create brings a new cluster's level then).
     */
    static String beyondThisBuild(Command c, boolean neverHadShard) {
        int level = c.hasSetFeatureLevel() ? c.getSetFeatureLevel().getLevel()
                : c.hasCreateShard() && neverHadShard ? c.getCreateShard().getNewClusterFeatureLevel() : 0;
        if (level > MAX_FEATURE_LEVEL) {
            return "the cluster's feature level is to be " + level + ", and this meta node's build knows " + MAX_FEATURE_LEVEL
                    + " at most: it must be upgraded";
        }
        if (c.hasCloseSegment() && c.getCloseSegment().getRules() > CLOSE_RULES) {
            return "a close by rules " + c.getCloseSegment().getRules() + ", and this meta node's build knows " + CLOSE_RULES
                    + " at most: it must be upgraded";
        }
        return null;
    }

    CommandResult setFeatureLevel(SetFeatureLevelCommand c) {
        if (c.getLevel() < featureLevel) {
            return CommandResult.fail(ErrorCode.INVALID_ARGUMENT, "the feature level is " + featureLevel + ": it only rises, not to " + c.getLevel());
        }
        String unknown = raiseRefusal(c);
        if (unknown != null) {
            return CommandResult.fail(ErrorCode.INVALID_ARGUMENT, unknown);
        }
        featureLevel = c.getLevel();
        return CommandResult.ok(dev.segstore.protocol.meta.FeatureLevelResponse.newBuilder().setLevel(featureLevel).build());
    }

    /**
     * The first shard of a new cluster (no meta node of an older build ever applied its log) takes the level its create
     * asks for ({@code requested}: CreateShardCommand.new_cluster_feature_level), or a higher one kept already. From
     * level 2 its storage nodes must know the level too: with an alive one {@code listed} does not name (an older one
     * alive now would take part in work it cannot follow), level 1 instead.
     */
    void adoptNewClusterLevel(int requested, List<NodeIncarnation> listed) {
        int level = requested;
        if (level >= FeatureLevels.STORAGE_NODES_CHECKED && !unlisted.apply(listed).isEmpty()) {
            level = FeatureLevels.CLOSE_SEGMENT_COMMAND;
        }
        featureLevel = Math.max(featureLevel, level);
    }

    /**
     * Why storage node {@code id} may not register with a build that knows feature level {@code registered} at most
     * (RegisterNodeCommand.max_feature_level), or null: from level 2 on, a node must know the cluster's level.
     */
    String olderThanTheCluster(int id, int registered) {
        int knows = FeatureLevels.ofStorageNode(registered);
        if (featureLevel < FeatureLevels.STORAGE_NODES_CHECKED || knows >= featureLevel) {
            return null;
        }
        return "storage node " + id + " registers with a build that knows feature level " + knows + " at most (segstore-admin"
                + " register-node names none), and the cluster is at level " + featureLevel + ": upgrade the node's build";
    }

    /** Why the raise {@code c} is refused for the storage nodes (from level 2, every alive one must be named), or null. */
    String raiseRefusal(SetFeatureLevelCommand c) {
        if (c.getLevel() <= featureLevel || c.getLevel() < FeatureLevels.STORAGE_NODES_CHECKED) {
            return null;
        }
        List<String> unknown = unlisted.apply(c.getStorageNodesList()).stream().map(n -> n.getNodeId() + " (incarnation " + n.getIncarnation() + ")").toList();
        // Only alive nodes: any other registers again before it takes part, and is checked then.
        return unknown.isEmpty() ? null : "storage nodes " + unknown + " have not shown the meta leader a build that knows feature level "
                + c.getLevel() + ": upgrade every storage node (or stop it), and raise the level once each has registered or"
                + " heartbeated to the meta leader since";
    }

    /**
     * Why a close by {@code rules} is refused at the current feature level whatever segment it names, or null: rules 2
     * or more below the level they need. Rules below 2 (the build that introduced close ahead) are not checked here.
     */
    String belowLevel(int rules) {
        return rules >= PLACEMENT_RULES ? closeAheadRefusal(rules) : null;
    }

    /** Why a close by {@code rules} (2 or more) is refused at the current feature level, or null when it is taken. */
    private String closeAheadRefusal(int rules) {
        // Rules 2 (from the build that brought feature levels) at level 1; this build's (3) at level 2, where every
        // storage node follows hand-overs.
        int needs = rules >= CLOSE_RULES ? CLOSE_AHEAD_LEVEL : FeatureLevels.CLOSE_SEGMENT_COMMAND;
        return featureLevel >= needs ? null : "segments do not close ahead at feature level " + featureLevel + " (it needs " + needs
                + ": segstore-admin feature-level --set " + needs + ", once every meta node and storage node runs a build that knows it)";
    }

    /**
     * Why open segment {@code s} (not closing yet) rolls as before instead of closing ahead, or null when it may close.
     * Its next segment would be a copy of it (replicas, leader, epoch, ISR), so it closes only where that copy is what
     * placement would want: otherwise the roll places the next segment, as without close ahead.
     */
    String closeRefusal(Segment s, int rules) {
        ShardSettings settings = shardByName.apply(s.getShard()).getSettings();
        List<Integer> placement = settings.getPlacementList();
        if (s.getReplicasCount() != settings.getReplicaCount() || (!placement.isEmpty() && !placement.equals(s.getReplicasList()))) {
            // alter-shard set a placement this segment is not on, or another replica count.
            return "the next segment is placed anew (replica count " + settings.getReplicaCount()
                    + (placement.isEmpty() ? "" : ", placement " + placement) + ", this one on " + s.getReplicasList() + ")";
        }
        if (settings.getUncleanLeaderElection() || !s.getIsrList().contains(s.getLeader())) {
            // A closing segment is never led from outside its ISR (its end is what the ISR holds): a shard that allows
            // unclean election rolls as before, so that such an election can always end a segment.
            return "its shard allows unclean leader election, or its leader is outside its ISR";
        }
        if (rules < PLACEMENT_RULES) {
            return null; // a command of the build that introduced close ahead: applied by its rules, as it was then
        }
        String belowLevel = closeAheadRefusal(rules);
        if (belowLevel != null) {
            return belowLevel;
        }
        if (s.getLeader() != s.getReplicas(0)) {
            // Leaders spread as placement spreads them: a leadership moved (a failover, a controlled shutdown) comes
            // back to the preferred replica, or elsewhere, at the next placement, which a copy would skip for good.
            return "its leader " + s.getLeader() + " is not its preferred replica " + s.getReplicas(0) + ": the roll places leaders anew";
        }
        for (int r : s.getReplicasList()) {
            if (!placeable.test(r) || s.getOfflineReplicasList().contains(r)) {
                // A dead, fenced, stopping or decommissioned node, or a replica on a lost disk, would be copied into
                // the next segment too, which placement would put elsewhere.
                return "replica " + r + " is not one placement would choose (not alive, shutting down, decommissioned, or offline)";
            }
        }
        return null;
    }
}
