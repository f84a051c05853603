package dev.segstore.client;

import dev.segstore.adapter.ErrorCode;
import dev.segstore.protocol.NodeMethods;
import dev.segstore.protocol.meta.ShardRoute;
import dev.segstore.protocol.node.DeleteRequest;
import dev.segstore.protocol.node.DeleteResponse;
import dev.segstore.protocol.rpc.RpcException;
import dev.segstore.protocol.rpc.RpcHandler;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * {@code deleteByKey} while retention drops the oldest segment of the route it walks: the node no longer hosts
 * that segment and says so (NOT_LEADER, "hosts no replica"). A dropped segment holds no live record, so the
 * delete reads the route again and goes on with the segments still there; every other segment is asked once.
 */
@Timeout(60)
class DeleteByKeyRetentionTest {
    private static final Map<Long, Long> LIVE = Map.of(1L, 2L, 2L, 1L); // live records with the key, per segment

    @Test
    void aSegmentDroppedWhileTheDeleteRunsIsSkippedAndTheRestDeleted() throws Exception {
        AtomicReference<ShardRoute> route = new AtomicReference<>(ScriptedServer.route(
                ScriptedServer.segment(0, 0, 10), ScriptedServer.segment(1, 10, 20), ScriptedServer.segment(2, 20, -1)));
        List<Long> asked = new CopyOnWriteArrayList<>();
        try (ScriptedServer server = ScriptedServer.start(
                ScriptedServer.routes(route::get),
                RpcHandler.of(NodeMethods.DELETE, DeleteRequest.parser(), r -> {
                    long seq = r.getSegment().getSequence();
                    asked.add(seq);
                    if (seq == 0) {
                        // Dropped by retention after the client read its route: the meta-service lists it no more.
                        route.set(ScriptedServer.route(ScriptedServer.segment(1, 10, 20), ScriptedServer.segment(2, 20, -1)));
                        return CompletableFuture.failedFuture(new RpcException(ErrorCode.NOT_LEADER.code(),
                                "node 1 hosts no replica of segment 7/0", "", true));
                    }
                    return CompletableFuture.completedFuture(DeleteResponse.newBuilder().setDeleted(LIVE.get(seq))
                            .setSealed(seq < 2).setSealedEnd(seq < 2 ? seq * 10 + 10 : 0).build());
                }));
             SegmentStorageAdapter adapter = server.adapter(20_000, 2_000)) {
            assertEquals(3L, adapter.deleteByKey("s", "k").get(30, TimeUnit.SECONDS), "the live records of segments 1 and 2");
        }
        assertEquals(List.of(0L, 1L, 2L), asked.stream().sorted().toList(), "each segment asked once: " + asked);
    }
}
