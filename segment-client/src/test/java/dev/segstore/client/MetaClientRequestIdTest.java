package dev.segstore.client;

import com.google.protobuf.ByteString;
import dev.segstore.adapter.ErrorCode;
import dev.segstore.protocol.MetaMethods;
import dev.segstore.protocol.meta.CreateShardRequest;
import dev.segstore.protocol.meta.DeleteShardRequest;
import dev.segstore.protocol.meta.Empty;
import dev.segstore.protocol.meta.Shard;
import dev.segstore.protocol.meta.ShardRoute;
import dev.segstore.protocol.meta.ShardSettings;
import dev.segstore.protocol.rpc.RpcException;
import dev.segstore.protocol.rpc.RpcHandler;
import dev.segstore.protocol.rpc.RpcServer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.net.InetSocketAddress;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

/**
 * Every attempt of one create or delete call carries the same request id, and two calls carry different ones:
 * the meta-service answers a retry of an applied request from its record only if the id is kept across attempts.
 * A scripted meta-service answers each call's first attempt TIMEOUT (as when the answer of an applied command is lost).
 */
@Timeout(30)
class MetaClientRequestIdTest {

    @Test
    void everyAttemptOfACallCarriesTheSameRequestIdAndCallsDiffer() throws Exception {
        List<ByteString> creates = new CopyOnWriteArrayList<>();
        List<ByteString> deletes = new CopyOnWriteArrayList<>();
        RpcServer server = new RpcServer(1, 1 << 20)
                .register(RpcHandler.of(MetaMethods.CREATE_SHARD, CreateShardRequest.parser(), r -> {
                    creates.add(r.getRequestId());
                    return creates.size() % 2 == 1 ? lost()
                            : CompletableFuture.completedFuture(ShardRoute.newBuilder().setShard(Shard.newBuilder().setName(r.getName())).build());
                }))
                .register(RpcHandler.of(MetaMethods.DELETE_SHARD, DeleteShardRequest.parser(), r -> {
                    deletes.add(r.getRequestId());
                    return deletes.size() % 2 == 1 ? lost() : CompletableFuture.completedFuture(Empty.getDefaultInstance());
                }));
        InetSocketAddress address = server.start("127.0.0.1", 0);
        try (MetaClient client = new MetaClient(List.of("127.0.0.1:" + address.getPort()), 1_000, 10_000)) {
            ShardSettings settings = ShardSettings.newBuilder().setReplicaCount(1).setMinInSyncReplicas(1).build();
            client.createShard("a", settings).get(10, TimeUnit.SECONDS);
            client.createShard("b", settings).get(10, TimeUnit.SECONDS);
            client.deleteShard("a").get(10, TimeUnit.SECONDS);
        } finally {
            server.close();
        }
        assertEquals(4, creates.size(), "each create answered on its second attempt: " + creates);
        assertFalse(creates.get(0).isEmpty(), "a create carries a request id");
        assertEquals(creates.get(0), creates.get(1), "the retry carries the first attempt's id");
        assertEquals(creates.get(2), creates.get(3));
        assertNotEquals(creates.get(0), creates.get(2), "another call, another id");
        assertEquals(2, deletes.size());
        assertFalse(deletes.get(0).isEmpty(), "a delete carries a request id");
        assertEquals(deletes.get(0), deletes.get(1));
    }

    private static <T> CompletableFuture<T> lost() {
        return CompletableFuture.failedFuture(new RpcException(ErrorCode.TIMEOUT.code(), "scripted: the answer was lost"));
    }
}
