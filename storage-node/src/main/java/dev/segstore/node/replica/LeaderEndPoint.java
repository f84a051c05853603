package dev.segstore.node.replica;

import dev.segstore.log.epoch.EpochEndOffset;

import java.nio.ByteBuffer;
import java.util.concurrent.CompletableFuture;

/**
 * How a follower reaches its leader: the seam under which tests put an in-memory leader (Kafka's
 * {@code LeaderEndPoint}); the storage node implements it with RPCs.
 */
public interface LeaderEndPoint {

    /** The leader's answer to "where does epoch E end in your log?". */
    CompletableFuture<EpochEndOffset> endOffsetForEpoch(int leaderEpoch, int epoch);

    /**
     * Batches from {@code fetchOffset} (whole batches, as the leader stores them), tombstones from position
     * {@code tombstoneFrom}, and the leader's watermarks.
     */
    CompletableFuture<FetchResult> fetch(int followerId, int leaderEpoch, long fetchOffset, long tombstoneFrom, int maxBytes);

    /** A fetch answer: bytes to append as they are, the leader's high watermark and log end, and tombstones. */
    record FetchResult(ByteBuffer batches, long highWatermark, long leaderLogEnd, Tombstones.Slice tombstones) {
    }
}
