package dev.segstore.node.server;

import dev.segstore.protocol.meta.Segment;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Writes refused while a leader's segment seals wait for its roll's answer, and are let go in the order they came. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class HostedAwaitNextTest {
    private final Hosted hosted = new Hosted(null, null);
    private final Hosted.NextSegment next = new Hosted.NextSegment(Segment.newBuilder().setSequence(5).setStartOffset(100).build(), null);

    @Test
    void waitersAreToldTheNextSegmentInTheOrderTheyCame() throws Exception {
        List<Integer> told = new CopyOnWriteArrayList<>();
        for (int i = 0; i < 5; i++) {
            int n = i;
            hosted.awaitNext(60_000).thenAccept(s -> told.add(n));
        }
        assertTrue(told.isEmpty(), "waiting for the roll's answer");
        hosted.rolledTo(next);
        assertEquals(List.of(0, 1, 2, 3, 4), told); // CompletableFuture's own dependents would run last-first
        assertSame(next, hosted.awaitNext(60_000).getNow(null), "once answered, at once");
    }

    @Test
    void aFailedRollLetsTheWaitersGoWithoutANextSegment() throws Exception {
        CompletableFuture<Hosted.NextSegment> w = hosted.awaitNext(60_000);
        assertFalse(w.isDone());
        hosted.rollUnanswered();
        assertNull(w.get(1, TimeUnit.SECONDS));
        assertFalse(hosted.awaitNext(60_000).isDone(), "the roll is asked again: later writes wait for its answer");
    }

    @Test
    void aWaiterGoesAfterItsLimit() throws Exception {
        assertNull(hosted.awaitNext(50).get(10, TimeUnit.SECONDS));
    }
}
