package dev.segstore.node.server;

import org.junit.jupiter.api.Test;

import java.util.concurrent.atomic.AtomicBoolean;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The fetch loop's start/stop rule, in the interleaving that lost the loop before (issue 11, item 6). */
class LoopGuardTest {

    @Test
    void aStartThatRacesTheLoopsEndIsNotLost() {
        LoopGuard guard = new LoopGuard();
        AtomicBoolean follower = new AtomicBoolean(false);
        assertTrue(guard.claim(), "the loop runs");
        // The loop has just found the replica a leader (not wanted). Before it lets go, an assignment makes the
        // replica a follower again and tries to start a loop: one runs still, so it starts none.
        follower.set(true);
        assertFalse(guard.claim());
        // The ending loop looks again and carries on: the follower is not left without a fetch loop.
        assertTrue(guard.release(follower::get));
        assertTrue(guard.isRunning());
        assertFalse(guard.claim(), "and it stays the only one");
    }

    @Test
    void anUnwantedLoopLetsGoAndTheNextStartRunsOne() {
        LoopGuard guard = new LoopGuard();
        assertTrue(guard.claim());
        assertFalse(guard.release(() -> false));
        assertFalse(guard.isRunning());
        assertTrue(guard.claim());
    }
}
