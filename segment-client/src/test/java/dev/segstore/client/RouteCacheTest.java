package dev.segstore.client;

import dev.segstore.adapter.ErrorCode;
import dev.segstore.adapter.StorageException;
import dev.segstore.protocol.MetaMethods;
import dev.segstore.protocol.meta.GetRouteRequest;
import dev.segstore.protocol.meta.Segment;
import dev.segstore.protocol.meta.SegmentStatus;
import dev.segstore.protocol.meta.ShardRoute;
import dev.segstore.protocol.rpc.RpcClient;
import dev.segstore.protocol.rpc.RpcException;
import dev.segstore.protocol.rpc.RpcHandler;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import static dev.segstore.client.ScriptedServer.route;
import static dev.segstore.client.ScriptedServer.segment;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The segment engine's route cache against a scripted meta-service whose route the test sets ({@code served}), counting
 * the look-ups it answers: what is read, what is kept, what a node's word that a segment is sealed refreshes, and which
 * next segments a refused write may move the cached route to.
 */
@Timeout(30)
class RouteCacheTest {
    private final AtomicReference<ShardRoute> served = new AtomicReference<>(route(segment(0, 0, -1)));
    /** While set, look-ups fail with this error instead. */
    private final AtomicReference<RpcException> failing = new AtomicReference<>();
    private final AtomicInteger lookUps = new AtomicInteger();
    private ScriptedServer meta;
    private MetaClient client;
    private RpcClient nodes;
    private RouteCache routes;

    @BeforeEach
    void start() throws Exception {
        meta = ScriptedServer.start(RpcHandler.of(MetaMethods.GET_ROUTE, GetRouteRequest.parser(), r -> {
            lookUps.incrementAndGet();
            RpcException e = failing.get();
            return e != null ? CompletableFuture.failedFuture(e) : CompletableFuture.completedFuture(served.get());
        }));
        client = new MetaClient(List.of(meta.address()), 2_000, 3_000);
        nodes = new RpcClient(1, 1 << 20);
        routes = new RouteCache(client, new ReplicaConnections(nodes, id -> CompletableFuture.completedFuture(meta.address()), System::nanoTime));
    }

    @AfterEach
    void stop() {
        nodes.close();
        client.close();
        meta.close();
    }

    private static ShardRoute await(CompletableFuture<ShardRoute> f) throws Exception {
        return f.get(10, TimeUnit.SECONDS);
    }

    /** Segment 0 sealed at {@code end}, segment 1 open from there: the route once the roll committed. */
    private static ShardRoute rolledAt(long end) {
        return route(segment(0, 0, end), segment(1, end, -1));
    }

    @Test
    void aRouteIsReadOnceAndKeptUntilDropped() throws Exception {
        assertEquals(served.get(), await(routes.getOrRead("s")));
        assertEquals(served.get(), await(routes.getOrRead("s")));
        assertEquals(1, lookUps.get(), "the cached route serves the second call");
        assertEquals(7, routes.knownShardId("s"));
        routes.drop("s");
        assertNull(routes.cached("s"));
        assertEquals(7, routes.knownShardId("s"), "the shard id is kept after the route is dropped");
        await(routes.getOrRead("s"));
        assertEquals(2, lookUps.get());
    }

    @Test
    void aFailedLookUpIsNotCached() throws Exception {
        failing.set(new RpcException(ErrorCode.SHARD_NOT_FOUND.code(), "no shard s"));
        ExecutionException e = assertThrows(ExecutionException.class, () -> await(routes.getOrRead("s")));
        assertInstanceOf(StorageException.class, e.getCause());
        failing.set(null);
        Await.until("the failed look-up to leave the cache", 10_000, () -> routes.cached("s") == null);
        assertEquals(served.get(), await(routes.getOrRead("s")), "the next call asks again");
    }

    @Test
    void aSealANodeReportsIsReadPastOnceAndAnOlderAnswerIsRefused() throws Exception {
        await(routes.getOrRead("s"));
        served.set(rolledAt(100));
        assertEquals(rolledAt(100), await(routes.past("s", 0)));
        assertEquals(2, lookUps.get());
        assertEquals(rolledAt(100), await(routes.past("s", 0)), "another call refreshed it already: kept");
        assertEquals(2, lookUps.get());
        ExecutionException stale = assertThrows(ExecutionException.class, () -> await(routes.past("s", 1)),
                "the meta-service's route still calls segment 1 open");
        assertEquals(ErrorCode.UNAVAILABLE, ((StorageException) stale.getCause()).code());
    }

    @Test
    void aRefusedWriteMovesTheCachedRouteToTheNextSegmentOnlyWhenItFollowsTheOpenOne() throws Exception {
        await(routes.getOrRead("s"));
        assertFalse(routes.adoptNext("s", segment(2, 100, -1)), "not the next one: a roll the cache missed");
        assertFalse(routes.adoptNext("s", segment(1, 100, -1).toBuilder().setShardId(8).build()), "another shard of the name");
        assertFalse(routes.adoptNext("t", segment(1, 100, -1)), "no cached route to build on");
        assertEquals(route(segment(0, 0, -1)), routes.cached("s").join(), "unchanged");
        assertTrue(routes.adoptNext("s", segment(1, 100, -1)));
        ShardRoute moved = routes.cached("s").join();
        assertEquals(rolledAt(100), moved, "the open segment sealed where the next starts, the next one open");
        assertSame(SegmentStatus.SEALED, moved.getSegments(0).getStatus());
        assertTrue(routes.adoptNext("s", segment(1, 100, -1)), "already past it: nothing to do");
        assertEquals(1, lookUps.get(), "no look-up");
    }
}
