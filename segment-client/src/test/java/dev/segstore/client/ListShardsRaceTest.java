package dev.segstore.client;

import dev.segstore.adapter.ErrorCode;
import dev.segstore.adapter.ShardFilter;
import dev.segstore.adapter.ShardInfo;
import dev.segstore.protocol.MetaMethods;
import dev.segstore.protocol.NodeMethods;
import dev.segstore.protocol.meta.GetRouteRequest;
import dev.segstore.protocol.meta.ListShardsRequest;
import dev.segstore.protocol.meta.ListShardsResponse;
import dev.segstore.protocol.meta.Segment;
import dev.segstore.protocol.meta.SegmentStatus;
import dev.segstore.protocol.meta.Shard;
import dev.segstore.protocol.meta.ShardRoute;
import dev.segstore.protocol.meta.ShardSettings;
import dev.segstore.protocol.node.FetchRequest;
import dev.segstore.protocol.node.FetchResponse;
import dev.segstore.protocol.rpc.RpcException;
import dev.segstore.protocol.rpc.RpcHandler;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * {@code listShards} reads the names from the meta-service in one call, then each shard's route and log end. A
 * shard deleted between the two is no longer there when its route is read: the list leaves it out instead of
 * failing. Scripted: the meta-service lists "a" and "b", then knows only "a".
 */
@Timeout(60)
class ListShardsRaceTest {
    private static Shard shard(String name, long id) {
        return Shard.newBuilder().setName(name).setShardId(id).setCreatedAtMs(1_000 + id).setSettings(ShardSettings.newBuilder()
                .setReplicaCount(1).setMinInSyncReplicas(1).setSegmentBytes(1 << 20).setRetentionMs(-1)).build();
    }

    @Test
    void aShardDeletedWhileTheListRunsIsLeftOut() throws Exception {
        Shard a = shard("a", 1);
        Segment open = Segment.newBuilder().setShard("a").setShardId(1).setSequence(0).setStatus(SegmentStatus.OPEN)
                .addReplicas(1).setLeader(1).addIsr(1).build();
        try (ScriptedServer server = ScriptedServer.start(
                RpcHandler.of(MetaMethods.LIST_SHARDS, ListShardsRequest.parser(), r -> CompletableFuture.completedFuture(
                        ListShardsResponse.newBuilder().addShards(a).addShards(shard("b", 2)).build())),
                RpcHandler.of(MetaMethods.GET_ROUTE, GetRouteRequest.parser(), r -> r.getShard().equals("a")
                        ? CompletableFuture.completedFuture(ShardRoute.newBuilder().setShard(a).addSegments(open).build())
                        : CompletableFuture.failedFuture(new RpcException(ErrorCode.SHARD_NOT_FOUND.code(),
                                "shard '" + r.getShard() + "' does not exist"))),
                RpcHandler.of(NodeMethods.FETCH, FetchRequest.parser(), r -> CompletableFuture.completedFuture(
                        FetchResponse.newBuilder().setHighWatermark(5).build())));
             SegmentStorageAdapter adapter = server.adapter(10_000, 2_000)) {
            List<ShardInfo> shards = adapter.listShards(ShardFilter.all()).get(30, TimeUnit.SECONDS);
            assertEquals(List.of("a"), shards.stream().map(ShardInfo::name).toList(), "b was deleted meanwhile: " + shards);
            assertEquals(5, shards.get(0).logEndOffset());
            assertEquals(1_001, shards.get(0).createdAtMs());
        }
    }
}
