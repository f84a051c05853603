package dev.segstore.node.server;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Requests for a roll's next segment that come before the node hosts it wait for it, in the order they came. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class ReplicaWaitsTest {
    private static final Hosted.Key KEY = new Hosted.Key(7, 3);
    private final ShardOwners owners = new ShardOwners(2, "test-owner");
    private final java.util.Set<Hosted.Key> hosted = java.util.concurrent.ConcurrentHashMap.newKeySet();
    /** Waits of a minute: a request released before that was released by its replica being hosted. */
    private final ReplicaWaits waits = new ReplicaWaits(owners, hosted::contains, () -> System.nanoTime() / 1_000_000, 60_000);
    private final List<String> ran = new CopyOnWriteArrayList<>();

    @AfterEach
    void stop() {
        owners.close();
    }

    /** Request {@code name} for {@link #KEY}, on the shard's owner thread as the node runs it: its answer. */
    private CompletableFuture<String> request(String name) throws Exception {
        return owners.of(KEY.shardId()).submit(() -> {
            CompletableFuture<String> waited = waits.waitFor(KEY, () -> {
                ran.add(name);
                return CompletableFuture.completedFuture(name);
            });
            if (waited != null) {
                return waited;
            }
            ran.add(name);
            return CompletableFuture.completedFuture(name);
        }).get(10, TimeUnit.SECONDS);
    }

    @Test
    void aRequestForAReplicaNotToldOfRunsAtOnce() throws Exception {
        CompletableFuture<String> f = request("a");
        assertTrue(f.isDone());
        assertEquals(List.of("a"), ran);
        assertNull(owners.of(KEY.shardId()).submit(() -> waits.waitFor(KEY, () -> CompletableFuture.completedFuture("x"))).get());
    }

    @Test
    void requestsForAnExpectedReplicaRunOnceItIsHostedInTheOrderTheyCameBeforeLaterOnes() throws Exception {
        waits.expect(KEY);
        CompletableFuture<String> a = request("a");
        CompletableFuture<String> b = request("b");
        assertFalse(a.isDone() || b.isDone(), "they wait for the replica");
        assertTrue(ran.isEmpty());
        hosted.add(KEY);
        waits.hosted(KEY);
        CompletableFuture<String> c = request("c"); // after the replica is hosted: behind the waiting ones
        assertEquals("a", a.get(10, TimeUnit.SECONDS));
        assertEquals("b", b.get(10, TimeUnit.SECONDS));
        assertEquals("c", c.get(10, TimeUnit.SECONDS));
        assertEquals(List.of("a", "b", "c"), ran);
    }

    @Test
    void aRequestWaitsAtMostItsLimitThenRunsAsAnyOther() throws Exception {
        ReplicaWaits shortWaits = new ReplicaWaits(owners, hosted::contains, () -> System.nanoTime() / 1_000_000, 200);
        shortWaits.expect(KEY);
        long start = System.nanoTime();
        CompletableFuture<String> a = owners.of(KEY.shardId()).submit(() -> shortWaits.waitFor(KEY,
                () -> CompletableFuture.completedFuture("a"))).get(10, TimeUnit.SECONDS);
        assertEquals("a", a.get(10, TimeUnit.SECONDS));
        long waitedMs = (System.nanoTime() - start) / 1_000_000;
        assertTrue(waitedMs >= 195, "waited " + waitedMs + " ms, never hosted");
        assertNull(owners.of(KEY.shardId()).submit(() -> shortWaits.waitFor(KEY, () -> CompletableFuture.completedFuture("b")))
                .get(10, TimeUnit.SECONDS), "the wait is over: later requests run at once");
    }

    @Test
    void aReplicaToldOfOnceHostedAlreadyIsNotWaitedFor() throws Exception {
        hosted.add(KEY);
        waits.expect(KEY); // a hint that came after the replica was taken
        assertTrue(request("a").isDone());
    }

    @Test
    void closingRunsTheWaitingRequestsAtOnce() throws Exception {
        waits.expect(KEY);
        CompletableFuture<String> a = request("a");
        assertFalse(a.isDone());
        waits.close();
        assertEquals("a", a.get(10, TimeUnit.SECONDS), "answered as the closing node answers it, not after its minute");
    }
}
