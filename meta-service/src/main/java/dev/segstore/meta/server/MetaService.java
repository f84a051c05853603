package dev.segstore.meta.server;

import dev.segstore.protocol.MetaMethods;
import com.google.protobuf.Message;
import dev.segstore.adapter.ErrorCode;
import dev.segstore.adapter.Limits;
import dev.segstore.adapter.StorageException;
import dev.segstore.adapter.Validation;
import dev.segstore.meta.raft.Consensus;
import dev.segstore.meta.state.CommandResult;
import dev.segstore.meta.state.MetaState;
import dev.segstore.protocol.FeatureLevels;
import dev.segstore.protocol.meta.ChangeIsrCommand;
import dev.segstore.protocol.meta.Command;
import dev.segstore.protocol.meta.CommitOffsetsRequest;
import dev.segstore.protocol.meta.CreateShardCommand;
import dev.segstore.protocol.meta.CreateShardRequest;
import dev.segstore.protocol.meta.DeleteShardCommand;
import dev.segstore.protocol.meta.DeleteShardRequest;
import dev.segstore.protocol.meta.DescribeClusterResponse;
import dev.segstore.protocol.meta.DurabilityMode;
import dev.segstore.protocol.meta.FenceNodeCommand;
import dev.segstore.protocol.meta.Empty;
import dev.segstore.protocol.meta.GetOffsetRequest;
import dev.segstore.protocol.meta.GetOffsetResponse;
import dev.segstore.protocol.meta.GetRouteRequest;
import dev.segstore.protocol.meta.GroupOffset;
import dev.segstore.protocol.meta.HeartbeatRequest;
import dev.segstore.protocol.meta.ListShardsRequest;
import dev.segstore.protocol.meta.ListShardsResponse;
import dev.segstore.protocol.meta.NodeState;
import dev.segstore.protocol.meta.ProposeIsrRequest;
import dev.segstore.protocol.meta.RegisterNodeCommand;
import dev.segstore.protocol.meta.RegisterNodeRequest;
import dev.segstore.protocol.meta.RollSegmentCommand;
import dev.segstore.protocol.meta.RollSegmentRequest;
import dev.segstore.protocol.meta.NodeAssignments;
import dev.segstore.protocol.meta.ShardRoute;
import dev.segstore.protocol.meta.ShardSettings;
import dev.segstore.protocol.meta.StorageNode;
import dev.segstore.protocol.rpc.RpcException;
import dev.segstore.protocol.rpc.RpcHandler;
import dev.segstore.protocol.rpc.RpcServer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;
import java.util.function.Supplier;

/**
 * The meta-service's RPC methods (names in {@link MetaMethods}). Writes are proposed to Raft and answered with
 * the command's result; reads that must be current wait for a ReadIndex barrier. A node that is not the Raft
 * leader answers NOT_LEADER with the leader's RPC address. Input is validated here, before anything is proposed.
 */
public final class MetaService {
    private static final Logger LOG = LoggerFactory.getLogger(MetaService.class);
    private final MetaState state;
    private final Consensus raft;
    private final Controller controller;
    private final LongSupplier clockMs;
    private final CommitBatcher commits;
    private final List<MetaPeer> peers;
    private final AssignmentWatches watches;
    /**
     * What each storage node incarnation said its build knows (RegisterNodeRequest and HeartbeatRequest
     * max_feature_level), as this meta node heard it: names the nodes that know a level in the commands that raise it
     * (SetFeatureLevelCommand.storage_nodes), which the state machine checks against the nodes alive as it applies.
     */
    private final java.util.concurrent.ConcurrentHashMap<Integer, dev.segstore.protocol.meta.NodeIncarnation> nodesKnowingMax =
            new java.util.concurrent.ConcurrentHashMap<>();
    /** Every storage node incarnation this meta node heard say its level, at any level (a new cluster's wait: everyNodeHeard). */
    private final java.util.concurrent.ConcurrentHashMap<Integer, dev.segstore.protocol.meta.NodeIncarnation> nodesHeard =
            new java.util.concurrent.ConcurrentHashMap<>();

    public MetaService(MetaState state, Consensus raft, Controller controller, LongSupplier clockMs, List<MetaPeer> peers) {
        this(state, raft, controller, clockMs, peers, new AssignmentWatches());
    }

    /** As above, with {@code watches} told of applied commands by the state machine ({@code meta.WatchAssignments}). */
    public MetaService(MetaState state, Consensus raft, Controller controller, LongSupplier clockMs, List<MetaPeer> peers,
                       AssignmentWatches watches) {
        this.watches = watches;
        this.state = state;
        this.raft = raft;
        this.controller = controller;
        this.clockMs = clockMs;
        this.peers = peers;
        controller.onLeaseReleased(watches::leaseReleased);
        this.commits = new CommitBatcher(offsets -> propose(Command.newBuilder().setCommitOffsets(
                dev.segstore.protocol.meta.CommitOffsetsCommand.newBuilder().addAllOffsets(offsets))));
    }

    public void register(RpcServer server) {
        server.register(RpcHandler.of(MetaMethods.REGISTER_NODE, RegisterNodeRequest.parser(), this::registerNode))
                .register(RpcHandler.of(MetaMethods.HEARTBEAT, HeartbeatRequest.parser(), this::heartbeat))
                .register(RpcHandler.of(MetaMethods.WATCH_ASSIGNMENTS, dev.segstore.protocol.meta.WatchAssignmentsRequest.parser(),
                        this::watchAssignments))
                .register(RpcHandler.of(MetaMethods.CONTROLLED_SHUTDOWN, dev.segstore.protocol.meta.ControlledShutdownRequest.parser(),
                        this::controlledShutdown))
                .register(RpcHandler.of(MetaMethods.PROPOSE_ISR, ProposeIsrRequest.parser(), this::proposeIsr))
                .register(RpcHandler.of(MetaMethods.ROLL_SEGMENT, RollSegmentRequest.parser(), this::rollSegment))
                .register(RpcHandler.of(MetaMethods.CLOSE_SEGMENT, dev.segstore.protocol.meta.CloseSegmentRequest.parser(), this::closeSegment))
                .register(RpcHandler.of(MetaMethods.SET_FEATURE_LEVEL, dev.segstore.protocol.meta.SetFeatureLevelRequest.parser(),
                        this::setFeatureLevel))
                .register(RpcHandler.of(MetaMethods.CREATE_SHARD, CreateShardRequest.parser(), this::createShard))
                .register(RpcHandler.of(MetaMethods.DELETE_SHARD, DeleteShardRequest.parser(), this::deleteShard))
                .register(RpcHandler.of(MetaMethods.LIST_SHARDS, ListShardsRequest.parser(), this::listShards))
                .register(RpcHandler.of(MetaMethods.GET_ROUTE, GetRouteRequest.parser(), this::getRoute))
                .register(RpcHandler.of(MetaMethods.COMMIT_OFFSETS, CommitOffsetsRequest.parser(), this::commitOffsets))
                .register(RpcHandler.of(MetaMethods.GET_OFFSET, GetOffsetRequest.parser(), this::getOffset))
                .register(RpcHandler.of(MetaMethods.DESCRIBE_CLUSTER, Empty.parser(), r -> describeCluster()))
                .register(RpcHandler.of(MetaMethods.ALTER_SHARD, dev.segstore.protocol.meta.AlterShardRequest.parser(), this::alterShard))
                .register(RpcHandler.of(MetaMethods.MOVE_LEADER, dev.segstore.protocol.meta.MoveLeaderRequest.parser(), this::moveLeader))
                .register(RpcHandler.of(MetaMethods.DECOMMISSION_NODE, dev.segstore.protocol.meta.DecommissionNodeRequest.parser(),
                        this::decommissionNode))
                .register(RpcHandler.of(MetaMethods.LIST_GROUPS, dev.segstore.protocol.meta.ListGroupsRequest.parser(), this::listGroups));
    }

    // ---- storage nodes -------------------------------------------------------------------------------------

    CompletableFuture<Message> registerNode(RegisterNodeRequest r) {
        if (r.getNodeId() < 0 || r.getHost().isBlank() || r.getPort() < 1 || r.getPort() > 65535) {
            return invalid("register: node id must be >= 0, host non-empty and port in 1..65535, got " + r);
        }
        if (r.getStorageOffline()) {
            return fail(ErrorCode.UNAVAILABLE, "storage node " + r.getNodeId() + ": its storage is offline; registration is"
                    + " refused until it is back (retry then)");
        }
        String tooOld = raft.isLeader() ? state.olderThanTheCluster(r.getNodeId(), r.getMaxFeatureLevel()) : null;
        if (tooOld != null) {
            // Before it counts as a sign of life: an older incarnation still registered must be fenced when it goes quiet.
            return invalid(tooOld);
        }
        // Counted first, as a heartbeat is, then refused while a fence of the node id is in flight: its answer (the same
        // process again gets its assignments) would confirm leaderships the fence hands over without a wait.
        controller.heartbeat(r.getNodeId());
        if (controller.fencing(r.getNodeId())) {
            return fail(ErrorCode.UNAVAILABLE, "storage node " + r.getNodeId() + " is being fenced (no heartbeat for session.timeout.ms); retry");
        }
        return propose(Command.newBuilder().setRegisterNode(RegisterNodeCommand.newBuilder().setNodeId(r.getNodeId())
                .setHost(r.getHost()).setPort(r.getPort()).setInstanceId(r.getInstanceId()).setPageCacheId(r.getPageCacheId())
                .setHeldReported(r.getHeldReported()).addAllHeldSegments(r.getHeldSegmentsList()).setReadLeaseMs(r.getReadLeaseMs())
                .setMaxFeatureLevel(r.getMaxFeatureLevel())))
                .thenApply(m -> {
                    controller.heartbeat(r.getNodeId());
                    controller.invalidateLoad();
                    if (m instanceof NodeAssignments a) {
                        heardLevel(r.getNodeId(), a.getNode().getIncarnation(), r.getMaxFeatureLevel());
                    }
                    return m;
                });
    }

    /**
     * Answered from the state after a ReadIndex barrier, never from local state alone: a node deletes every
     * hosted replica its answer does not list, and a deposed leader that still believes it leads would hand it
     * an old assignment. The answer carries the state's metadata version.
     */
    CompletableFuture<Message> heartbeat(HeartbeatRequest r) {
        return raft.readBarrier().thenCompose(v -> {
            Optional<StorageNode> node = state.node(r.getNodeId());
            if (node.isEmpty() || node.get().getState() != NodeState.ALIVE || node.get().getIncarnation() != r.getIncarnation()) {
                return fail(ErrorCode.FENCED_EPOCH, "storage node " + r.getNodeId() + " incarnation "
                        + r.getIncarnation() + " is not registered and alive: register again");
            }
            heardLevel(r.getNodeId(), r.getIncarnation(), r.getMaxFeatureLevel());
            if (r.getStorageOffline()) {
                return fenceOffline(r.getNodeId(), r.getIncarnation());
            }
            controller.heartbeat(r.getNodeId());
            if (controller.beingFenced(r.getNodeId(), r.getIncarnation())) {
                // No answer may confirm its leaderships now: their successors, elected by the fence, do not wait.
                return fail(ErrorCode.UNAVAILABLE, "storage node " + r.getNodeId() + " incarnation " + r.getIncarnation()
                        + " is being fenced: it sent no heartbeat for session.timeout.ms; retry");
            }
            controller.applied(r.getNodeId(), r.getAppliedMetadataVersion());
            if (r.getUnreachableLeadersCount() > 0) {
                // Moves go on in the background: the answer below does not wait for them (the node learns of them
                // by its assignment watch, as every node involved does).
                for (dev.segstore.protocol.meta.MoveLeaderCommand move : controller.leadersUnreachable(r.getNodeId(), r.getUnreachableLeadersList())) {
                    proposeMove(move, openIn(move.getShard(), move.getSequence(), move.getLeaderEpoch())).whenComplete((m, e) -> {
                        if (e != null) {
                            LOG.info("Moving the leadership of {}/{} away from a silent leader was not applied: {}", move.getShard(),
                                    move.getSequence(), e.toString());
                        }
                    });
                }
            }
            if (r.getOfflineSegmentsCount() > 0 && !state.offlineAlready(r.getNodeId(), r.getOfflineSegmentsList())) {
                // Some of its replicas are on a data directory that failed: they leave their ISRs and leaderships now.
                return propose(Command.newBuilder().setMarkReplicasOffline(dev.segstore.protocol.meta.MarkReplicasOfflineCommand.newBuilder()
                        .setNodeId(r.getNodeId()).setIncarnation(r.getIncarnation()).addAllSegments(r.getOfflineSegmentsList())));
            }
            return CompletableFuture.completedFuture(withLeaseWaits(r.getNodeId(), state.assignments(r.getNodeId())));
        });
    }

    /** {@code a} with what the controller knows of the read leases node {@code nodeId} waits out (NodeAssignments.lease_waits). */
    private NodeAssignments withLeaseWaits(int nodeId, NodeAssignments a) {
        List<dev.segstore.protocol.meta.LeaseWait> waits = controller.leaseWaits(nodeId);
        return waits.isEmpty() ? a : a.toBuilder().addAllLeaseWaits(waits).build();
    }

    /** Segment {@code sequence} of {@code shard} if it is the open one, in {@code epoch}; else null. */
    private dev.segstore.protocol.meta.Segment openIn(String shard, long sequence, int epoch) {
        ShardRoute route = state.route(shard);
        if (route == null || route.getSegmentsCount() == 0) {
            return null;
        }
        dev.segstore.protocol.meta.Segment open = route.getSegments(route.getSegmentsCount() - 1);
        return open.getSequence() == sequence && open.getLeaderEpoch() == epoch ? open : null;
    }

    /**
     * A storage node's long poll: answered "changed" once a command that may change assignments was applied above
     * the version it names (it then heartbeats at once), or "nothing new" after its wait (AssignmentWatches). On the
     * leader only, for the node's registered, alive incarnation (else FENCED_EPOCH: it heartbeats and registers as
     * it would anyway). It needs no read barrier: it hands out nothing; a deposed leader's watch at worst waits for
     * nothing, and heartbeats go on every period.
     */
    CompletableFuture<Message> watchAssignments(dev.segstore.protocol.meta.WatchAssignmentsRequest r) {
        if (!raft.isLeader()) {
            return CompletableFuture.failedFuture(raft.notLeader());
        }
        Optional<StorageNode> node = state.node(r.getNodeId());
        if (node.isEmpty() || node.get().getState() != NodeState.ALIVE || node.get().getIncarnation() != r.getIncarnation()) {
            return fail(ErrorCode.FENCED_EPOCH, "storage node " + r.getNodeId() + " incarnation " + r.getIncarnation()
                    + " is not registered and alive: register again");
        }
        dev.segstore.protocol.rpc.RpcServer.Caller connection = dev.segstore.protocol.rpc.RpcServer.caller();
        if (connection != null) {
            controller.watchedOn(r.getNodeId(), connection); // its close may tell the node died (Controller.connectionClosed)
        }
        return watches.watch(r.getNodeId(), r.getAppliedMetadataVersion(), r.getMaxWaitMs()).thenApply(m -> m);
    }

    /**
     * The registered, alive incarnation reports its storage offline: fence it at once, as a session timeout
     * would (its leaderships move to live ISR members, it leaves the ISRs), and fail the heartbeat. If the fence
     * cannot be committed here (leadership lost), that error is the answer and the node reports again.
     */
    private CompletableFuture<Message> fenceOffline(int nodeId, long incarnation) {
        LOG.warn("Storage node {} incarnation {} reports its storage offline: fencing it", nodeId, incarnation);
        // Only its first data directory is offline: logs on others may still answer reads from its leases, so the
        // successors wait them out (leader_may_serve).
        return propose(Command.newBuilder().setFenceNode(FenceNodeCommand.newBuilder().setNodeId(nodeId).setIncarnation(incarnation)
                .setLeaderMayServe(true)))
                .thenCompose(m -> {
                    controller.invalidateLoad();
                    return fail(ErrorCode.FENCED_EPOCH, "storage offline: storage node " + nodeId + " incarnation " + incarnation
                            + " reported its storage offline and is fenced; register again once it is back");
                });
    }

    /**
     * A storage node about to stop on purpose: the command moves its leaderships to active ISR members and takes it
     * out of the ISRs that keep one (MetaState), and the answer is its assignments after that, which it applies at
     * once. Placement leaves it out from now on. A stale incarnation fails FENCED_EPOCH and changes nothing.
     */
    CompletableFuture<Message> controlledShutdown(dev.segstore.protocol.meta.ControlledShutdownRequest r) {
        LOG.info("Storage node {} incarnation {} is shutting down: moving its leaderships and taking it out of ISRs",
                r.getNodeId(), r.getIncarnation());
        return propose(Command.newBuilder().setControlledShutdown(dev.segstore.protocol.meta.ControlledShutdownCommand.newBuilder()
                .setNodeId(r.getNodeId()).setIncarnation(r.getIncarnation())))
                .thenApply(m -> {
                    controller.invalidateLoad();
                    return m;
                });
    }

    private CompletableFuture<Message> proposeIsr(ProposeIsrRequest r) {
        return propose(Command.newBuilder().setChangeIsr(ChangeIsrCommand.newBuilder().setShard(r.getShard())
                .setSequence(r.getSequence()).setLeader(r.getLeader()).setLeaderEpoch(r.getLeaderEpoch())
                .setIsrVersion(r.getIsrVersion()).addAllNewIsr(r.getNewIsrList()).setShardId(r.getShardId())));
    }

    CompletableFuture<Message> rollSegment(RollSegmentRequest r) {
        Optional<dev.segstore.protocol.meta.Shard> shard = state.shard(r.getShard());
        if (shard.isEmpty() || (r.getShardId() != 0 && r.getShardId() != shard.get().getShardId())) {
            return fail(ErrorCode.SHARD_NOT_FOUND, "shard '" + r.getShard() + "'" + (r.getShardId() != 0 ? " id " + r.getShardId() : "")
                    + " does not exist");
        }
        // The command names the shard id and the leader asking: the state machine checks both, so a roll retried
        // across a delete and re-create, or asked by a deposed leader, changes nothing.
        long askedNanos = System.nanoTime();
        return guarded(() -> {
            // A closing segment's next one is the closing one's replicas, leader and epoch (the state machine
            // copies them): nothing to place, and no log to make ahead (its leader may have made it already).
            List<Integer> next = closing(r.getShard(), r.getSequence()) ? List.of()
                    : controller.placeForRoll(shard.get().getSettings().getReplicaCount(),
                    Math.max(1, shard.get().getSettings().getMinInSyncReplicas()), shard.get().getSettings().getPlacementList());
            CompletableFuture<Message> committed = propose(Command.newBuilder().setRollSegment(RollSegmentCommand.newBuilder()
                    .setShard(r.getShard()).setShardId(r.getShardId()).setLeader(r.getLeader())
                    .setSequence(r.getSequence()).setLeaderEpoch(r.getLeaderEpoch())
                    .setEndOffset(r.getEndOffset()).addAllNextReplicas(next)));
            tellUpcoming(r, shard.get().getShardId(), next);
            return committed;
        })
                .whenComplete((m, e) -> LOG.debug("Roll of {}/{} at {} from node {}: {} {} ms after it came", r.getShard(), r.getSequence(),
                        r.getEndOffset(), r.getLeader(), e == null ? "committed and answered" : "failed (" + e + ")",
                        (System.nanoTime() - askedNanos) / 1_000_000));
    }

    /** Whether segment {@code sequence} is the shard's open segment, closing (meta.proto, {@code Segment.closing_version}). */
    private boolean closing(String shardName, long sequence) {
        dev.segstore.protocol.meta.ShardRoute route = state.route(shardName);
        if (route == null || route.getSegmentsCount() == 0) {
            return false;
        }
        dev.segstore.protocol.meta.Segment open = route.getSegments(route.getSegmentsCount() - 1);
        return open.getSequence() == sequence && open.getClosingVersion() != 0;
    }

    CompletableFuture<Message> closeSegment(dev.segstore.protocol.meta.CloseSegmentRequest r) {
        dev.segstore.protocol.meta.CloseSegmentCommand close = dev.segstore.protocol.meta.CloseSegmentCommand.newBuilder()
                .setShard(r.getShard()).setShardId(r.getShardId()).setSequence(r.getSequence())
                .setLeader(r.getLeader()).setLeaderEpoch(r.getLeaderEpoch()).setRules(MetaState.CLOSE_RULES).build();
        // Only the leader answers from its state (a follower's may be stale: propose answers NOT_LEADER).
        String refusal = raft.isLeader() ? state.closeRefusal(close) : null;
        if (refusal != null) {
            // Not proposed: a meta node of an older build may not know the command (below the feature level), and a
            // refusal changes nothing, so it need not take a log entry and wake every node's assignment watch.
            return invalid(refusal);
        }
        return propose(Command.newBuilder().setCloseSegment(close));
    }

    /**
     * While the roll {@code r} commits, its next segment's replicas are told of it ({@link AssignmentWatches#upcoming}),
     * so they create its log meanwhile: only when the roll looks as the state machine will take it (the open
     * segment, its leader and epoch as asked), so that a stale or duplicate request makes no logs for nothing.
     */
    private void tellUpcoming(RollSegmentRequest r, long shardId, List<Integer> next) {
        dev.segstore.protocol.meta.ShardRoute route = state.route(r.getShard());
        if (route == null || route.getSegmentsCount() == 0 || next.isEmpty()) {
            return;
        }
        dev.segstore.protocol.meta.Segment open = route.getSegments(route.getSegmentsCount() - 1);
        if (open.getSequence() != r.getSequence() || open.getStatus() != dev.segstore.protocol.meta.SegmentStatus.OPEN
                || open.getLeader() != r.getLeader() || open.getLeaderEpoch() != r.getLeaderEpoch()
                || r.getEndOffset() < open.getStartOffset()) {
            return;
        }
        watches.upcoming(dev.segstore.protocol.meta.Segment.newBuilder().setShard(r.getShard()).setShardId(shardId)
                .setSequence(r.getSequence() + 1).setStartOffset(r.getEndOffset()).setEndOffset(-1)
                .setStatus(dev.segstore.protocol.meta.SegmentStatus.OPEN).addAllReplicas(next).setLeader(next.get(0))
                .setLeaderEpoch(0).build());
    }

    // ---- clients ---------------------------------------------------------------------------------------------

    CompletableFuture<Message> createShard(CreateShardRequest r) {
        ShardSettings s = r.getSettings();
        try {
            Validation.shardName(r.getName());
            require(s.getReplicaCount() >= 1 && s.getReplicaCount() <= Limits.MAX_REPLICA_COUNT,
                    "settings.replica_count must be in 1.." + Limits.MAX_REPLICA_COUNT + ", got " + s.getReplicaCount());
            require(s.getPlacementCount() == 0, "settings.placement is set on an existing shard (alter-shard --placement), not at creation");
            require(s.getMinInSyncReplicas() >= 1 && s.getMinInSyncReplicas() <= s.getReplicaCount(),
                    "settings.min_in_sync_replicas must be in 1..replica_count, got " + s.getMinInSyncReplicas());
            require(s.getSegmentBytes() == 0 || (s.getSegmentBytes() >= Limits.MIN_SEGMENT_BYTES && s.getSegmentBytes() <= Limits.MAX_SEGMENT_BYTES),
                    "settings.segment_bytes must be 0 (default) or in " + Limits.MIN_SEGMENT_BYTES + ".." + Limits.MAX_SEGMENT_BYTES);
            require(s.getSegmentMs() >= 0, "settings.segment_ms must be >= 0 (0 = default)");
            require(s.getRetentionMs() == -1 || s.getRetentionMs() >= 0, "settings.retention_ms must be -1, 0 (default) or > 0");
            require(r.getRequestId().size() <= MAX_REQUEST_ID_BYTES, "request_id must be at most " + MAX_REQUEST_ID_BYTES + " bytes");
        } catch (StorageException e) {
            return fail(e.code(), e.getMessage());
        } catch (IllegalArgumentException e) {
            return invalid(e.getMessage());
        }
        ShardSettings settings = s.toBuilder()
                .setSegmentBytes(s.getSegmentBytes() == 0 ? 256L << 20 : s.getSegmentBytes())
                .setSegmentMs(s.getSegmentMs() == 0 ? 7L * 24 * 3600 * 1000 : s.getSegmentMs())
                .setRetentionMs(s.getRetentionMs() == 0 ? -1 : s.getRetentionMs())
                .setDurability(s.getDurability() == DurabilityMode.DURABILITY_UNSPECIFIED ? DurabilityMode.FSYNC : s.getDurability())
                .build();
        // A retry of a create that was applied is answered by the state machine from its record; it needs no
        // placement (which could fail by now, if nodes went away since).
        return everyNodeHeard(System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(NEW_CLUSTER_HEAR_MS)).thenCompose(v -> guarded(() -> propose(
                Command.newBuilder().setCreateShard(CreateShardCommand.newBuilder().setName(r.getName())
                .setSettings(settings).setRequestId(r.getRequestId()).setNewClusterFeatureLevel(newClusterLevel())
                .addAllStorageNodes(state.neverHadShard() ? nodesKnowing(MetaState.MAX_FEATURE_LEVEL) : List.of())
                .addAllReplicas(state.appliedRequest(r.getRequestId()) ? List.of() : controller.place(settings.getReplicaCount()))))));
    }

    /**
     * How long a new cluster's first shard waits, at most, for this meta leader to hear every alive storage node say
     * which feature level its build knows: a leader elected after the nodes registered hears them at their next
     * heartbeat (heartbeat.ms, 500 by default). After that the cluster starts at level 1 (newClusterLevel).
     */
    static final long NEW_CLUSTER_HEAR_MS = 2_000;

    /**
     * Completes once this leader has heard every alive storage node's level, or at {@code deadlineNanos}, or at once
     * unless this is the leader of a cluster that never had a shard (only its first shard takes a level).
     */
    private CompletableFuture<Void> everyNodeHeard(long deadlineNanos) {
        // Heard at any level: a node heard to know less (an older build, one registered by segstore-admin) will not say
        // more, and waiting for it could outlast its session (newClusterLevel starts the cluster at 1 for it).
        if (!raft.isLeader() || !state.neverHadShard() || state.unlisted(List.copyOf(nodesHeard.values())).isEmpty()
                || System.nanoTime() >= deadlineNanos) {
            return CompletableFuture.completedFuture(null);
        }
        return CompletableFuture.runAsync(() -> { }, CompletableFuture.delayedExecutor(50, TimeUnit.MILLISECONDS))
                .thenCompose(v -> everyNodeHeard(deadlineNanos));
    }

    /** Request ids are kept in the state machine for a while (RecentRequests): bounded, as they come from clients. */
    static final int MAX_REQUEST_ID_BYTES = 64;

    private static void require(boolean ok, String message) {
        if (!ok) {
            throw new IllegalArgumentException(message);
        }
    }

    /**
     * Two phases (MetaState.deleteShard): the command makes the shard DELETING and takes its replicas out of every
     * assignment; the answer waits until every node that hosted one has applied that (or is no longer alive) and
     * the controller has finished the delete. So once a delete is answered no storage node serves the old shard:
     * a write on a route cached before it cannot be acknowledged into it. On the leader only (the controller waits).
     */
    CompletableFuture<Message> deleteShard(DeleteShardRequest r) {
        if (r.getRequestId().size() > MAX_REQUEST_ID_BYTES) {
            return invalid("request_id must be at most " + MAX_REQUEST_ID_BYTES + " bytes");
        }
        return guarded(() -> propose(Command.newBuilder().setDeleteShard(DeleteShardCommand.newBuilder().setName(r.getName()).setTwoPhase(true)
                        .setRequestId(r.getRequestId())))
                .thenCompose(m -> controller.whenDeleted((dev.segstore.protocol.meta.Shard) m))
                .thenApply(v -> (Message) Empty.getDefaultInstance()));
    }

    private CompletableFuture<Message> listShards(ListShardsRequest r) {
        return raft.readBarrier().thenApply(v -> ListShardsResponse.newBuilder().addAllShards(state.listShards(r.getNamePrefix())).build());
    }

    private CompletableFuture<Message> getRoute(GetRouteRequest r) {
        return raft.readBarrier().thenApply(v -> {
            ShardRoute route = state.route(r.getShard());
            if (route == null) {
                throw new RpcException(ErrorCode.SHARD_NOT_FOUND.code(), "shard '" + r.getShard() + "' does not exist");
            }
            return route;
        });
    }

    /**
     * Validates, then checks leadership, then the shards: a follower (or a lagging new leader) whose state does
     * not hold a shard yet must not answer SHARD_NOT_FOUND, a final answer, for a shard that exists. A shard
     * missing from the leader's state is looked for again after a read barrier (its applied state may lag what
     * it committed) before the commit is refused; a shard that is there is checked once more when the command
     * applies (a commit for a shard deleted meanwhile is dropped).
     */
    CompletableFuture<Message> commitOffsets(CommitOffsetsRequest r) {
        for (GroupOffset o : r.getOffsetsList()) {
            try {
                Validation.groupName(o.getGroup());
                Validation.offset("offset", o.getOffset());
            } catch (StorageException e) {
                return fail(e.code(), e.getMessage());
            }
        }
        if (!raft.isLeader()) {
            return CompletableFuture.failedFuture(raft.notLeader());
        }
        if (missingShard(r).isEmpty()) {
            return commits.submit(r.getOffsetsList());
        }
        return raft.readBarrier().thenCompose(v -> {
            Optional<GroupOffset> missing = missingShard(r);
            if (missing.isPresent()) {
                GroupOffset o = missing.get();
                return fail(ErrorCode.SHARD_NOT_FOUND, "shard '" + o.getShard() + "'" + (o.getShardId() != 0 ? " id " + o.getShardId() : "")
                        + " does not exist");
            }
            return commits.submit(r.getOffsetsList());
        });
    }

    /** The first commit naming a shard (or shard id) this replica's state does not hold. */
    private Optional<GroupOffset> missingShard(CommitOffsetsRequest r) {
        for (GroupOffset o : r.getOffsetsList()) {
            Optional<dev.segstore.protocol.meta.Shard> shard = state.shard(o.getShard());
            if (shard.isEmpty() || (o.getShardId() != 0 && o.getShardId() != shard.get().getShardId())) {
                return Optional.of(o);
            }
        }
        return Optional.empty();
    }

    private CompletableFuture<Message> getOffset(GetOffsetRequest r) {
        return raft.readBarrier().thenApply(v -> {
            if (state.shard(r.getShard()).isEmpty()) {
                throw new RpcException(ErrorCode.SHARD_NOT_FOUND.code(), "shard '" + r.getShard() + "' does not exist");
            }
            Optional<Long> o = state.groupOffset(r.getGroup(), r.getShard());
            return GetOffsetResponse.newBuilder().setFound(o.isPresent()).setOffset(o.orElse(-1L)).build();
        });
    }

    /** Changes a shard's retention; answers with the shard as altered. On the leader, after a read barrier (the shard id). */
    CompletableFuture<Message> alterShard(dev.segstore.protocol.meta.AlterShardRequest r) {
        if (!r.getKeepRetention() && r.getRetentionMs() != -1 && r.getRetentionMs() <= 0) {
            return invalid("retention_ms must be -1 (keep every segment) or > 0, got " + r.getRetentionMs());
        }
        return guarded(() -> raft.readBarrier().thenCompose(v -> {
            dev.segstore.protocol.meta.Shard shard = state.shard(r.getName()).orElse(null);
            if (shard == null) {
                return fail(ErrorCode.SHARD_NOT_FOUND, "shard '" + r.getName() + "' does not exist");
            }
            return propose(Command.newBuilder().setAlterShard(dev.segstore.protocol.meta.AlterShardCommand.newBuilder()
                    .setName(r.getName()).setShardId(shard.getShardId()).setRetentionMs(r.getRetentionMs())
                    .setKeepRetention(r.getKeepRetention()).setSetPlacement(r.getSetPlacement()).addAllPlacement(r.getPlacementList())));
        }));
    }

    /**
     * Moves the open segment's leadership to an ISR member (to = -1: its first replica, the preferred leader);
     * answers with the route after the move. The command names the segment and epoch seen here, so a roll or
     * leader change in between makes it a no-op (FENCED_EPOCH) rather than a move of something else.
     */
    CompletableFuture<Message> moveLeader(dev.segstore.protocol.meta.MoveLeaderRequest r) {
        return guarded(() -> raft.readBarrier().thenCompose(v -> {
            ShardRoute route = state.route(r.getShard());
            if (route == null || route.getSegmentsCount() == 0) {
                return fail(ErrorCode.SHARD_NOT_FOUND, "shard '" + r.getShard() + "' does not exist");
            }
            dev.segstore.protocol.meta.Segment open = route.getSegments(route.getSegmentsCount() - 1);
            int to = r.getTo() >= 0 ? r.getTo() : open.getReplicas(0);
            dev.segstore.protocol.meta.MoveLeaderCommand move = dev.segstore.protocol.meta.MoveLeaderCommand.newBuilder()
                    .setShard(r.getShard()).setShardId(route.getShard().getShardId()).setSequence(open.getSequence())
                    .setLeaderEpoch(open.getLeaderEpoch()).setTo(to).build();
            return proposeMove(move, open);
        }));
    }

    /**
     * Proposes {@code move} of segment {@code before} (as read before proposing; null: not the open one in the move's
     * epoch) and, once applied, tells the controller whose read lease its new leader waits out (Controller.leadershipMoved).
     */
    private CompletableFuture<Message> proposeMove(dev.segstore.protocol.meta.MoveLeaderCommand move, dev.segstore.protocol.meta.Segment before) {
        long fromIncarnation = before == null ? -1 : controller.incarnation(before.getLeader());
        return propose(Command.newBuilder().setMoveLeader(move)).whenComplete((m, e) -> {
            if (e == null && before != null) {
                controller.leadershipMoved(move, before.getLeader(), fromIncarnation, before.getDeposedLeaderMayServe());
            }
        });
    }

    /**
     * Decommissions a storage node, or takes that back (meta.proto, {@code StorageNode.decommissioned}); answers
     * with what is left on it. The controller's cached load is counted afresh: the node takes no new replica.
     */
    CompletableFuture<Message> decommissionNode(dev.segstore.protocol.meta.DecommissionNodeRequest r) {
        return guarded(() -> propose(Command.newBuilder().setDecommissionNode(dev.segstore.protocol.meta.DecommissionNodeCommand.newBuilder()
                .setNodeId(r.getNodeId()).setDecommissioned(r.getDecommissioned()))).whenComplete((m, e) -> controller.invalidateLoad()));
    }

    private CompletableFuture<Message> listGroups(dev.segstore.protocol.meta.ListGroupsRequest r) {
        return raft.readBarrier().thenApply(v -> dev.segstore.protocol.meta.ListGroupsResponse.newBuilder()
                .addAllOffsets(state.groupOffsets(r.getGroup())).build());
    }

    private CompletableFuture<Message> describeCluster() {
        return raft.readBarrier().thenApply(v -> DescribeClusterResponse.newBuilder().setLeader(raft.leaderHint())
                .addAllPeers(peers.stream().map(MetaPeer::toString).toList()).addAllNodes(state.nodes())
                .setShardCount(state.shardCount()).setSegmentCount(state.segmentCount())
                .setFeatureLevel(state.featureLevel()).setMaxFeatureLevel(MetaState.MAX_FEATURE_LEVEL).build());
    }

    /**
     * Raises the cluster's feature level (meta.proto, SetFeatureLevelRequest): at most this build's, never down. The
     * operator asks once every meta node runs a build that knows the level; nothing here can check that. From level 2
     * the raise names the storage node incarnations this leader heard know it, and every alive one must be named: the
     * leader checks before it proposes, and the state machine as it applies.
     */
    CompletableFuture<Message> setFeatureLevel(dev.segstore.protocol.meta.SetFeatureLevelRequest r) {
        if (r.getLevel() < 0 || r.getLevel() > MetaState.MAX_FEATURE_LEVEL) {
            return invalid("feature level " + r.getLevel() + " is not known to this meta leader's build (it knows 0.."
                    + MetaState.MAX_FEATURE_LEVEL + ")");
        }
        dev.segstore.protocol.meta.SetFeatureLevelCommand raise = dev.segstore.protocol.meta.SetFeatureLevelCommand.newBuilder()
                .setLevel(r.getLevel()).addAllStorageNodes(nodesKnowing(r.getLevel())).build();
        String refusal = raft.isLeader() ? state.raiseRefusal(raise) : null;
        if (refusal != null) {
            return invalid(refusal); // not proposed: a meta node of an older build would stop at any raise above its level
        }
        return propose(Command.newBuilder().setSetFeatureLevel(raise));
    }

    /**
     * The level a new cluster takes with its first shard (CreateShardCommand.new_cluster_feature_level): this build's,
     * or 1 if an alive storage node was not heard to know it (the state machine would cap it so; sent as 1, it does
     * not stop a meta node of the build that knows level 1 at most).
     */
    private int newClusterLevel() {
        if (!state.neverHadShard()) {
            return MetaState.MAX_FEATURE_LEVEL; // not applied (only a cluster's first shard brings its level)
        }
        List<StorageNode> unheard = state.unlisted(nodesKnowing(MetaState.MAX_FEATURE_LEVEL));
        if (unheard.isEmpty()) {
            return MetaState.MAX_FEATURE_LEVEL;
        }
        LOG.info("A new cluster's first shard: it starts at feature level {}, as storage node(s) {} were not heard to know level {} (an older"
                + " build, one registered by segstore-admin, or a meta leader that has not heard them yet); raise it with segstore-admin"
                + " feature-level --set {}", FeatureLevels.CLOSE_SEGMENT_COMMAND, unheard.stream().map(StorageNode::getNodeId).toList(),
                MetaState.MAX_FEATURE_LEVEL, MetaState.MAX_FEATURE_LEVEL);
        return FeatureLevels.CLOSE_SEGMENT_COMMAND;
    }

    /** Storage node {@code id}'s incarnation {@code incarnation} said its build knows feature level {@code level}. */
    private void heardLevel(int id, long incarnation, int level) {
        nodesHeard.put(id, dev.segstore.protocol.meta.NodeIncarnation.newBuilder().setNodeId(id).setIncarnation(incarnation).build());
        if (FeatureLevels.ofStorageNode(level) >= MetaState.MAX_FEATURE_LEVEL) {
            nodesKnowingMax.put(id, dev.segstore.protocol.meta.NodeIncarnation.newBuilder().setNodeId(id).setIncarnation(incarnation).build());
        } else {
            nodesKnowingMax.remove(id);
        }
    }

    /** The storage node incarnations heard to know feature level {@code level} (none above this build's). */
    private List<dev.segstore.protocol.meta.NodeIncarnation> nodesKnowing(int level) {
        return level > MetaState.MAX_FEATURE_LEVEL ? List.of() : List.copyOf(nodesKnowingMax.values());
    }

    // ---- helpers ---------------------------------------------------------------------------------------------

    /**
     * Stamps the leader's time on a command (never below the newest command time applied), proposes it, and turns
     * its result into an answer.
     */
    CompletableFuture<Message> propose(Command.Builder command) {
        Command c = state.stamped(command, clockMs.getAsLong()).build();
        return raft.propose(c).thenApply(MetaService::unwrap);
    }

    private static Message unwrap(CommandResult r) {
        if (!r.isOk()) {
            throw new RpcException(r.error().code(), r.message());
        }
        return r.value();
    }

    /**
     * Runs a write that needs the controller (placement): only on the ready leader, since a follower's state
     * may lag and its placement would answer with a wrong, non-retriable error.
     */
    private CompletableFuture<Message> guarded(Supplier<CompletableFuture<Message>> call) {
        if (!raft.isLeader()) {
            return CompletableFuture.failedFuture(raft.notLeader());
        }
        try {
            return call.get();
        } catch (RpcException e) {
            return CompletableFuture.failedFuture(e);
        }
    }

    private static CompletableFuture<Message> invalid(String message) {
        return fail(ErrorCode.INVALID_ARGUMENT, message);
    }

    private static CompletableFuture<Message> fail(ErrorCode code, String message) {
        return CompletableFuture.failedFuture(new RpcException(code.code(), message));
    }
}
