package dev.segstore.log;

import java.nio.ByteBuffer;
import java.util.concurrent.CompletableFuture;

/** Work for a data directory's I/O thread, in the order it was queued. */
sealed interface IoTask {

    /**
     * Write one batch at its reserved position. {@code future} (may be null for all but the last batch of a
     * follower append) completes per {@code durability}; the reservation of {@code size} bytes is released
     * when it does.
     */
    record Write(SegmentLog log, Segment segment, long position, ByteBuffer bytes, long baseOffset, long nextOffset,
                 long maxTimestamp, Durability durability, long enqueuedNanos, int appends,
                 CompletableFuture<AppendResult> future, AppendResult result) implements IoTask {
        int size() {
            return bytes.remaining();
        }
    }

    /** Seal {@code segment} (after every write queued before it) and advance the log's recovery point. */
    record Seal(SegmentLog log, Segment segment, long recoveryPoint) implements IoTask {
    }

    /** Run {@code action} on the I/O thread after every earlier task, with everything written before forced. */
    record Run(String what, IoAction action, CompletableFuture<Object> future) implements IoTask {
    }

    /**
     * Run {@code action} on a force thread once every earlier task's bytes are written (not forced): the I/O thread
     * goes on with the other logs meanwhile. Every later {@link Run} (a truncation, a close, a delete) waits for it.
     */
    record Offload(String what, IoAction action, CompletableFuture<Object> future) implements IoTask {
    }

    @FunctionalInterface
    interface IoAction {
        Object run() throws Exception;
    }
}
