package dev.segstore.client;

import com.google.protobuf.ByteString;
import com.google.protobuf.Message;
import com.google.protobuf.Parser;
import dev.segstore.adapter.ErrorCode;
import dev.segstore.protocol.MetaMethods;
import dev.segstore.protocol.meta.CommitOffsetsRequest;
import dev.segstore.protocol.meta.CreateShardRequest;
import dev.segstore.protocol.meta.DeleteShardRequest;
import dev.segstore.protocol.meta.DescribeClusterResponse;
import dev.segstore.protocol.meta.Empty;
import dev.segstore.protocol.meta.GetOffsetRequest;
import dev.segstore.protocol.meta.GetOffsetResponse;
import dev.segstore.protocol.meta.GetRouteRequest;
import dev.segstore.protocol.meta.GroupOffset;
import dev.segstore.protocol.meta.HeartbeatRequest;
import dev.segstore.protocol.meta.ListShardsRequest;
import dev.segstore.protocol.meta.ListShardsResponse;
import dev.segstore.protocol.meta.NodeAssignments;
import dev.segstore.protocol.meta.ProposeIsrRequest;
import dev.segstore.protocol.meta.RegisterNodeRequest;
import dev.segstore.protocol.meta.RollSegmentRequest;
import dev.segstore.protocol.meta.SegmentResponse;
import dev.segstore.protocol.meta.ShardRoute;
import dev.segstore.protocol.meta.ShardSettings;
import dev.segstore.protocol.rpc.RpcClient;
import dev.segstore.protocol.rpc.RpcException;

import java.nio.ByteBuffer;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.TimeUnit;

/**
 * Talks to the meta-service for storage nodes and clients: sends each call to the node it believes leads,
 * follows NOT_LEADER hints, tries the other nodes on UNAVAILABLE or TIMEOUT, and gives up after the deadline
 * with the last error. Retries are safe because every meta write is either idempotent (register, commits) or
 * conditional on what the caller saw (ISR changes, rolls), or carries a request id the state machine remembers
 * (creates and deletes): a retried create is not answered SHARD_EXISTS for its own success.
 *
 * <p>{@link #close()} completes every call not answered yet, those waiting for a retry included, with a
 * CLOSED error ({@link RpcException#code()} 14); a call made after it fails CLOSED at once.
 */
public final class MetaClient implements AutoCloseable {
    private final List<String> addresses;
    private final RpcClient rpc;
    private final long callTimeoutMs;
    private final long deadlineMs;
    private final RetryScheduler retries = new RetryScheduler("meta-client-retry");
    private final InFlightOperations calls = new InFlightOperations();
    private volatile boolean closed;
    private volatile String leader;

    /**
     * @param addresses    RPC addresses ("host:port") of the meta-service nodes
     * @param callTimeoutMs timeout of one attempt
     * @param deadlineMs    total time for a call, retries included
     */
    public MetaClient(List<String> addresses, long callTimeoutMs, long deadlineMs) {
        this(addresses, callTimeoutMs, deadlineMs, null, null);
    }

    /** As above, over TLS with {@code tls} (null: plain TCP; docs/security.md). */
    public MetaClient(List<String> addresses, long callTimeoutMs, long deadlineMs, dev.segstore.protocol.rpc.TlsConfig tls) {
        this(addresses, callTimeoutMs, deadlineMs, tls, null);
    }

    /** Without TLS, the connections leaving from {@code localHost} (see below). */
    public MetaClient(List<String> addresses, long callTimeoutMs, long deadlineMs, String localHost) {
        this(addresses, callTimeoutMs, deadlineMs, null, localHost);
    }

    /**
     * As above, with the connections leaving from {@code localHost} (null: the operating system picks the
     * source address; see {@link RpcClient#RpcClient(int, int, String)}).
     */
    public MetaClient(List<String> addresses, long callTimeoutMs, long deadlineMs, dev.segstore.protocol.rpc.TlsConfig tls, String localHost) {
        if (addresses.isEmpty()) {
            throw new IllegalArgumentException("at least one meta-service address is needed");
        }
        this.addresses = List.copyOf(addresses);
        this.rpc = new RpcClient(1, dev.segstore.protocol.rpc.Frames.DEFAULT_MAX_FRAME_BYTES, tls, localHost);
        this.callTimeoutMs = callTimeoutMs;
        this.deadlineMs = deadlineMs;
        this.leader = addresses.get(0);
    }

    /**
     * Creates a shard. Every attempt of this call carries the same new request id, so an attempt retried after
     * the create was applied (its answer lost to a timeout or a leader change) is answered with the shard it
     * made, not SHARD_EXISTS. If that shard was deleted since, the answer's route has no segments.
     */
    public CompletableFuture<ShardRoute> createShard(String name, ShardSettings settings) {
        return call(MetaMethods.CREATE_SHARD, CreateShardRequest.newBuilder().setName(name).setSettings(settings)
                .setRequestId(newRequestId()).build(), ShardRoute.parser());
    }

    /** Deletes a shard; idempotent across this call's retries as {@link #createShard} is (no SHARD_NOT_FOUND for its own success). */
    public CompletableFuture<Empty> deleteShard(String name) {
        return call(MetaMethods.DELETE_SHARD, DeleteShardRequest.newBuilder().setName(name).setRequestId(newRequestId()).build(), Empty.parser());
    }

    /** 16 random bytes: unique per call for as long as the meta-service remembers requests (15 minutes). */
    static ByteString newRequestId() {
        UUID id = UUID.randomUUID();
        return ByteString.copyFrom(ByteBuffer.allocate(16).putLong(id.getMostSignificantBits()).putLong(id.getLeastSignificantBits()).array());
    }

    public CompletableFuture<ListShardsResponse> listShards(String prefix) {
        return call(MetaMethods.LIST_SHARDS, ListShardsRequest.newBuilder().setNamePrefix(prefix).build(), ListShardsResponse.parser());
    }

    /**
     * Alters a shard: its retention ({@code retentionMs} null: unchanged) and the next segments' placement
     * ({@code placement} null: unchanged; empty: the controller places them again).
     */
    public CompletableFuture<dev.segstore.protocol.meta.Shard> alterShard(String name, Long retentionMs, List<Integer> placement) {
        dev.segstore.protocol.meta.AlterShardRequest.Builder b = dev.segstore.protocol.meta.AlterShardRequest.newBuilder().setName(name)
                .setKeepRetention(retentionMs == null).setRetentionMs(retentionMs == null ? -1 : retentionMs);
        if (placement != null) {
            b.setSetPlacement(true).addAllPlacement(placement);
        }
        return call(MetaMethods.ALTER_SHARD, b.build(), dev.segstore.protocol.meta.Shard.parser());
    }

    /** Moves the leadership of the shard's open segment to storage node {@code to} (-1: its preferred replica). */
    public CompletableFuture<ShardRoute> moveLeader(String shard, int to) {
        return call(MetaMethods.MOVE_LEADER, dev.segstore.protocol.meta.MoveLeaderRequest.newBuilder().setShard(shard).setTo(to).build(),
                ShardRoute.parser());
    }

    /** Decommissions storage node {@code nodeId} ({@code decommissioned} false: takes that back); answers what is left on it. */
    public CompletableFuture<dev.segstore.protocol.meta.DecommissionNodeResponse> decommissionNode(int nodeId, boolean decommissioned) {
        return call(MetaMethods.DECOMMISSION_NODE, dev.segstore.protocol.meta.DecommissionNodeRequest.newBuilder().setNodeId(nodeId)
                .setDecommissioned(decommissioned).build(), dev.segstore.protocol.meta.DecommissionNodeResponse.parser());
    }

    /** The committed offsets of {@code group} (every group if empty), by shard then group. */
    public CompletableFuture<List<dev.segstore.protocol.meta.GroupOffset>> listGroups(String group) {
        return call(MetaMethods.LIST_GROUPS, dev.segstore.protocol.meta.ListGroupsRequest.newBuilder().setGroup(group).build(),
                dev.segstore.protocol.meta.ListGroupsResponse.parser()).thenApply(dev.segstore.protocol.meta.ListGroupsResponse::getOffsetsList);
    }

    public CompletableFuture<ShardRoute> route(String shard) {
        return call(MetaMethods.GET_ROUTE, GetRouteRequest.newBuilder().setShard(shard).build(), ShardRoute.parser());
    }

    public CompletableFuture<Empty> commitOffsets(List<GroupOffset> offsets) {
        return call(MetaMethods.COMMIT_OFFSETS, CommitOffsetsRequest.newBuilder().addAllOffsets(offsets).build(), Empty.parser());
    }

    public CompletableFuture<GetOffsetResponse> offset(String group, String shard) {
        return call(MetaMethods.GET_OFFSET, GetOffsetRequest.newBuilder().setGroup(group).setShard(shard).build(), GetOffsetResponse.parser());
    }

    public CompletableFuture<DescribeClusterResponse> describeCluster() {
        return call(MetaMethods.DESCRIBE_CLUSTER, Empty.getDefaultInstance(), DescribeClusterResponse.parser());
    }

    public CompletableFuture<NodeAssignments> registerNode(int nodeId, String host, int port) {
        return registerNode(nodeId, host, port, false);
    }

    /** Registers a storage node; {@code storageOffline}: its data directory failed (the meta-service refuses it then). */
    public CompletableFuture<NodeAssignments> registerNode(int nodeId, String host, int port, boolean storageOffline) {
        return registerNode(nodeId, host, port, storageOffline, 0);
    }

    /**
     * Registers a storage node; {@code instanceId}: the process's random id, so a retry of a registration that
     * was applied (its answer lost) is not taken for a restart (0: none).
     */
    public CompletableFuture<NodeAssignments> registerNode(int nodeId, String host, int port, boolean storageOffline, long instanceId) {
        return registerNode(nodeId, host, port, storageOffline, instanceId, "");
    }

    /**
     * Registers a storage node; {@code pageCacheId}: the identity of the page cache its segment files were
     * written through (RegisterNodeRequest.page_cache_id in meta.proto; empty: unknown).
     */
    public CompletableFuture<NodeAssignments> registerNode(int nodeId, String host, int port, boolean storageOffline, long instanceId,
                                                           String pageCacheId) {
        return registerNode(nodeId, host, port, storageOffline, instanceId, pageCacheId, null);
    }

    /**
     * As above, listing the segment logs the node holds on its online data directories ({@code held}; null: not
     * reported): every assigned segment it does not hold is marked offline for it (RegisterNodeRequest.held_segments).
     */
    public CompletableFuture<NodeAssignments> registerNode(int nodeId, String host, int port, boolean storageOffline, long instanceId,
                                                           String pageCacheId, List<dev.segstore.protocol.meta.SegmentId> held) {
        return registerNode(nodeId, host, port, storageOffline, instanceId, pageCacheId, held, 0);
    }

    /** As above, with the node's {@code read.lease.ms} (RegisterNodeRequest.read_lease_ms; 0: not given). */
    public CompletableFuture<NodeAssignments> registerNode(int nodeId, String host, int port, boolean storageOffline, long instanceId,
                                                           String pageCacheId, List<dev.segstore.protocol.meta.SegmentId> held,
                                                           long readLeaseMs) {
        return registerNode(nodeId, host, port, storageOffline, instanceId, pageCacheId, held, readLeaseMs, 0);
    }

    /**
     * As above, with the highest cluster feature level the node's build knows ({@code maxFeatureLevel},
     * RegisterNodeRequest.max_feature_level; 0: not given). Only a storage node can say it, of its own build.
     */
    public CompletableFuture<NodeAssignments> registerNode(int nodeId, String host, int port, boolean storageOffline, long instanceId,
                                                           String pageCacheId, List<dev.segstore.protocol.meta.SegmentId> held,
                                                           long readLeaseMs, int maxFeatureLevel) {
        RegisterNodeRequest.Builder b = RegisterNodeRequest.newBuilder().setNodeId(nodeId).setHost(host).setPort(port)
                .setStorageOffline(storageOffline).setInstanceId(instanceId).setPageCacheId(pageCacheId).setReadLeaseMs(readLeaseMs)
                .setMaxFeatureLevel(maxFeatureLevel);
        if (held != null) {
            b.setHeldReported(true).addAllHeldSegments(held);
        }
        return call(MetaMethods.REGISTER_NODE, b.build(), NodeAssignments.parser());
    }

    public CompletableFuture<NodeAssignments> heartbeat(int nodeId, long incarnation) {
        return heartbeat(nodeId, incarnation, false);
    }

    /** A heartbeat; {@code storageOffline}: the node's data directory failed, and the controller fences it at once. */
    public CompletableFuture<NodeAssignments> heartbeat(int nodeId, long incarnation, boolean storageOffline) {
        return heartbeat(nodeId, incarnation, storageOffline, 0);
    }

    /**
     * A heartbeat that also says which metadata version the node has applied ({@code appliedMetadataVersion}):
     * the controller finishes a shard's delete once every node that hosted it has applied the delete.
     */
    public CompletableFuture<NodeAssignments> heartbeat(int nodeId, long incarnation, boolean storageOffline, long appliedMetadataVersion) {
        return heartbeat(nodeId, incarnation, storageOffline, appliedMetadataVersion, List.of());
    }

    /** As above, naming the segments whose replica here is on a data directory that failed ({@code offlineSegments}). */
    public CompletableFuture<NodeAssignments> heartbeat(int nodeId, long incarnation, boolean storageOffline, long appliedMetadataVersion,
                                                        List<dev.segstore.protocol.meta.SegmentId> offlineSegments) {
        return heartbeat(nodeId, incarnation, storageOffline, appliedMetadataVersion, offlineSegments, List.of());
    }

    /** As above, naming the open segments whose leader answers none of this node's fetches ({@code silentLeaders}). */
    public CompletableFuture<NodeAssignments> heartbeat(int nodeId, long incarnation, boolean storageOffline, long appliedMetadataVersion,
                                                        List<dev.segstore.protocol.meta.SegmentId> offlineSegments,
                                                        List<dev.segstore.protocol.meta.UnreachableLeader> silentLeaders) {
        return heartbeat(nodeId, incarnation, storageOffline, appliedMetadataVersion, offlineSegments, silentLeaders, 0);
    }

    /** As above, with the highest cluster feature level the node's build knows (HeartbeatRequest.max_feature_level). */
    public CompletableFuture<NodeAssignments> heartbeat(int nodeId, long incarnation, boolean storageOffline, long appliedMetadataVersion,
                                                        List<dev.segstore.protocol.meta.SegmentId> offlineSegments,
                                                        List<dev.segstore.protocol.meta.UnreachableLeader> silentLeaders, int maxFeatureLevel) {
        return call(MetaMethods.HEARTBEAT, HeartbeatRequest.newBuilder().setNodeId(nodeId).setIncarnation(incarnation)
                .setStorageOffline(storageOffline).setAppliedMetadataVersion(appliedMetadataVersion).addAllOfflineSegments(offlineSegments)
                .addAllUnreachableLeaders(silentLeaders).setMaxFeatureLevel(maxFeatureLevel).build(), NodeAssignments.parser());
    }

    /**
     * A controlled shutdown of storage node {@code nodeId}'s incarnation {@code incarnation}: the meta-service moves
     * its leaderships to other in-sync replicas and takes it out of ISRs, and answers with its assignments after
     * that. Fails FENCED_EPOCH when the incarnation is not the node's current, alive one.
     */
    public CompletableFuture<NodeAssignments> controlledShutdown(int nodeId, long incarnation) {
        return call(MetaMethods.CONTROLLED_SHUTDOWN, dev.segstore.protocol.meta.ControlledShutdownRequest.newBuilder().setNodeId(nodeId)
                .setIncarnation(incarnation).build(), NodeAssignments.parser());
    }

    /**
     * A storage node's long poll (meta.WatchAssignments): completes with {@code changed} once the meta leader applied
     * a command that may change assignments above {@code appliedMetadataVersion}, or with nothing new after about
     * {@code maxWaitMs}. Each attempt may take that long; NOT_LEADER is followed as for every call. A meta-service
     * without the method fails it INVALID_ARGUMENT ("unknown method").
     */
    public CompletableFuture<dev.segstore.protocol.meta.WatchAssignmentsResponse> watchAssignments(int nodeId, long incarnation,
                                                                                                 long appliedMetadataVersion, long maxWaitMs) {
        return call(MetaMethods.WATCH_ASSIGNMENTS, dev.segstore.protocol.meta.WatchAssignmentsRequest.newBuilder().setNodeId(nodeId)
                        .setIncarnation(incarnation).setAppliedMetadataVersion(appliedMetadataVersion).setMaxWaitMs(maxWaitMs).build(),
                dev.segstore.protocol.meta.WatchAssignmentsResponse.parser(), maxWaitMs + callTimeoutMs, maxWaitMs + callTimeoutMs);
    }

    public CompletableFuture<SegmentResponse> proposeIsr(ProposeIsrRequest request) {
        return call(MetaMethods.PROPOSE_ISR, request, SegmentResponse.parser());
    }

    public CompletableFuture<ShardRoute> rollSegment(RollSegmentRequest request) {
        return call(MetaMethods.ROLL_SEGMENT, request, ShardRoute.parser());
    }

    /** Raises the cluster's feature level (meta.proto, SetFeatureLevelRequest); answers the level after. */
    public CompletableFuture<dev.segstore.protocol.meta.FeatureLevelResponse> setFeatureLevel(int level) {
        return call(MetaMethods.SET_FEATURE_LEVEL, dev.segstore.protocol.meta.SetFeatureLevelRequest.newBuilder().setLevel(level).build(),
                dev.segstore.protocol.meta.FeatureLevelResponse.parser());
    }

    /** Close ahead: marks the open segment closing (meta.proto, {@code CloseSegmentRequest}). */
    public CompletableFuture<SegmentResponse> closeSegment(dev.segstore.protocol.meta.CloseSegmentRequest request) {
        return call(MetaMethods.CLOSE_SEGMENT, request, SegmentResponse.parser());
    }

    /** The RPC address the client currently sends to. */
    public String leaderGuess() {
        return leader;
    }

    private <R extends Message> CompletableFuture<R> call(String method, Message request, Parser<R> parser) {
        return call(method, request, parser, callTimeoutMs, deadlineMs);
    }

    private <R extends Message> CompletableFuture<R> call(String method, Message request, Parser<R> parser, long attemptTimeoutMs,
                                                          long callDeadlineMs) {
        CompletableFuture<R> result = calls.track(new CompletableFuture<>(), () -> closedError(method, null));
        attempt(method, request, parser, attemptTimeoutMs, System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(callDeadlineMs), 0, result);
        return result;
    }

    private <R extends Message> void attempt(String method, Message request, Parser<R> parser, long attemptTimeoutMs, long deadline,
                                             int tries, CompletableFuture<R> result) {
        if (closed) {
            result.completeExceptionally(closedError(method, null));
            return;
        }
        String target = leader;
        rpc.call(target, method, request, parser, attemptTimeoutMs).whenComplete((r, e) -> {
            if (e == null) {
                result.complete(r);
                return;
            }
            Throwable cause = e instanceof CompletionException && e.getCause() != null ? e.getCause() : e;
            if (!(cause instanceof RpcException re) || !retriable(re) || System.nanoTime() > deadline) {
                result.completeExceptionally(cause);
                return;
            }
            if (closed) {
                result.completeExceptionally(closedError(method, re)); // not retried: the retry would be refused
                return;
            }
            if (re.code() == ErrorCode.NOT_LEADER.code() && !re.leaderHint().isEmpty()) {
                leader = re.leaderHint();
            } else {
                int next = (addresses.indexOf(target) + 1) % addresses.size();
                leader = addresses.get(next);
            }
            long backoff = Math.min(200, 10L << Math.min(tries, 4));
            retries.schedule(() -> attempt(method, request, parser, attemptTimeoutMs, deadline, tries + 1, result), backoff);
        });
    }

    private static boolean retriable(RpcException e) {
        return e.code() == ErrorCode.NOT_LEADER.code() || e.code() == ErrorCode.UNAVAILABLE.code()
                || e.code() == ErrorCode.TIMEOUT.code();
    }

    private static RpcException closedError(String method, RpcException last) {
        return new RpcException(ErrorCode.CLOSED.code(), "the meta-service client was closed before " + method + " was answered"
                + (last == null ? "" : " (last error: " + last.getMessage() + ")"));
    }

    /**
     * Completes every call not answered yet with CLOSED: retries waiting for their pause run now and see the
     * client closed; calls on the wire fail as the connections close. Idempotent.
     */
    @Override
    public void close() {
        closed = true;
        retries.close();
        rpc.close();
        calls.completeAll(); // any call the two above left pending (none expected)
    }
}
