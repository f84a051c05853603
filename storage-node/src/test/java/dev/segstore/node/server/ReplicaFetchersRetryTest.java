package dev.segstore.node.server;

import dev.segstore.adapter.ErrorCode;
import dev.segstore.node.replica.ReplicaException;
import dev.segstore.protocol.rpc.RpcException;
import org.junit.jupiter.api.Test;

import java.util.concurrent.CompletionException;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A follower's fetch loop after its leader's node refused a fetch because it hosts no replica of the segment yet
 * (a roll has just placed the segment on both; rpc.proto, {@code Error.rolling}): the next round goes out after
 * a few ms, not after the 100 ms of a failed round, which held up the first acknowledgement in each new
 * segment (the leader waits for its followers' fetches before it acknowledges).
 */
class ReplicaFetchersRetryTest {

    @Test
    void aRefusalFromARollKeepsItsMarkAsTheReplicaLayerReadsIt() {
        RpcException wire = new RpcException(ErrorCode.NOT_LEADER.code(), "node 2 hosts no replica of segment 7/1", "", -1, true, true);
        RuntimeException read = ReplicaFetchers.asReplicaException(new CompletionException(wire));
        assertEquals(ErrorCode.NOT_LEADER, ReplicaException.codeOf(read));
        assertTrue(ReplicaFetchers.isRolling(read));
        assertTrue(ReplicaFetchers.isRolling(new CompletionException(read)), "also when wrapped");
        RpcException other = new RpcException(ErrorCode.NOT_LEADER.code(), "not the leader", "h:1", 3, true);
        assertFalse(ReplicaFetchers.isRolling(ReplicaFetchers.asReplicaException(other)));
    }

    @Test
    void theNextRoundAfterARefusalFromARollGoesOutSoon() {
        ReplicaException refused = new ReplicaException(ErrorCode.NOT_LEADER, "hosts no replica").rolling();
        assertEquals(ReplicaFetchers.ROLLING_FETCH_RETRY_MS, ReplicaFetchers.nextRoundDelayMs(null, refused, true));
        assertTrue(ReplicaFetchers.ROLLING_FETCH_RETRY_MS <= 10);
        assertEquals(ReplicaFetchers.FETCH_FAILED_MS, ReplicaFetchers.nextRoundDelayMs(null, refused, false),
                "once the loop has retried it MAX_ROLLING_FETCH_RETRIES times, the usual pause");
        assertEquals(ReplicaFetchers.FETCH_FAILED_MS, ReplicaFetchers.nextRoundDelayMs(null, new ReplicaException(ErrorCode.UNAVAILABLE, "down"), false));
        assertEquals(0, ReplicaFetchers.nextRoundDelayMs(3, null, false), "after news: at once");
        assertEquals(ReplicaFetchers.FETCH_IDLE_MS, ReplicaFetchers.nextRoundDelayMs(0, null, false));
    }
}
