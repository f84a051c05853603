package dev.segstore.node.server;

import org.junit.jupiter.api.Test;

import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * When a follower counts its leader silent (leader.unreachable.ms, Hosted#leaderSilentNanos): only while a call it
 * sent the leader goes unanswered. It counted from the last answer, so a follower whose own node was too busy to send
 * (its fetch loops waiting on disk forces while 1,000 replicas opened) reported its leaders, and the controller moved
 * hundreds of leaderships away from leaders that were answering every fetch they got.
 */
class HostedSilenceTest {
    private static final long MS = TimeUnit.MILLISECONDS.toNanos(1);

    private static Hosted hosted(long leaderSinceNanos) {
        Hosted h = new Hosted(null, null);
        h.leaderSinceNanos = leaderSinceNanos;
        return h;
    }

    @Test
    void aFollowerThatSentNothingSinceTheLastAnswerDoesNotCountItsLeaderSilent() {
        long t = 1_000_000 * MS;
        Hosted h = hosted(t);
        h.leaderCalled(t + 10 * MS);
        h.leaderAnswered(t + 20 * MS);
        assertEquals(0, h.leaderSilentNanos(t + 5_000 * MS), "nothing sent since the last answer: no news, not silence");
    }

    @Test
    void anUnansweredCallCountsFromWhenItWentOut() {
        long t = 1_000_000 * MS;
        Hosted h = hosted(t);
        h.leaderCalled(t + 100 * MS);
        h.leaderCalled(t + 5_200 * MS); // the first timed out (no answer); the next round goes out
        assertEquals(6_000 * MS, h.leaderSilentNanos(t + 6_100 * MS), "from the first call left unanswered");
        h.leaderAnswered(t + 6_200 * MS);
        assertEquals(0, h.leaderSilentNanos(t + 6_300 * MS));
    }

    @Test
    void aNewLeaderGetsAsLongAsAnOldOne() {
        long t = 1_000_000 * MS;
        Hosted h = hosted(t);
        h.leaderCalled(t);
        h.leaderSinceNanos = t + 3_000 * MS; // a new epoch
        assertEquals(500 * MS, h.leaderSilentNanos(t + 3_500 * MS));
    }
}
