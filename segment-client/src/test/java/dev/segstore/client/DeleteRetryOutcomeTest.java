package dev.segstore.client;

import dev.segstore.adapter.ErrorCode;
import dev.segstore.adapter.StorageException;
import dev.segstore.protocol.NodeMethods;
import dev.segstore.protocol.node.DeleteRequest;
import dev.segstore.protocol.node.DeleteResponse;
import dev.segstore.protocol.rpc.RpcException;
import dev.segstore.protocol.rpc.RpcHandler;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A delete retried after an attempt whose answer was lost: the node deleted the record on the first attempt and
 * the retry finds it deleted. Answering "already deleted" (false, or a count of 0) would say the record was dead
 * before the call, which nobody knows (found by the fault schedules: the checker took the record for lost). The
 * call fails OUTCOME_UNKNOWN instead; an attempt the node refused before doing anything leaves the answer as it is.
 */
@Timeout(60)
class DeleteRetryOutcomeTest {

    /** A node that applies the first delete and never answers it, then answers every retry with nothing deleted. */
    private static RpcHandler<DeleteRequest> firstAnswerLost(AtomicInteger calls) {
        return RpcHandler.of(NodeMethods.DELETE, DeleteRequest.parser(), r -> calls.incrementAndGet() == 1
                ? new CompletableFuture<>()
                : CompletableFuture.completedFuture(DeleteResponse.newBuilder().setDeleted(0).build()));
    }

    private static ErrorCode failure(CompletableFuture<?> f) {
        ExecutionException e = assertThrows(ExecutionException.class, () -> f.get(30, TimeUnit.SECONDS));
        assertTrue(e.getCause() instanceof StorageException, String.valueOf(e.getCause()));
        return ((StorageException) e.getCause()).code();
    }

    @Test
    void aDeleteByOffsetWhoseFirstAnswerWasLostDoesNotSayTheRecordWasDeletedAlready() throws Exception {
        AtomicInteger calls = new AtomicInteger();
        try (ScriptedServer server = ScriptedServer.start(ScriptedServer.oneOpenSegment(), firstAnswerLost(calls));
             SegmentStorageAdapter adapter = server.adapter(20_000, 300)) {
            assertEquals(ErrorCode.OUTCOME_UNKNOWN, failure(adapter.deleteByOffset("s", 3)));
            assertEquals(2, calls.get(), "asked again after the lost answer");
        }
    }

    @Test
    void aDeleteByKeyWhoseFirstAnswerWasLostDoesNotCountZero() throws Exception {
        AtomicInteger calls = new AtomicInteger();
        try (ScriptedServer server = ScriptedServer.start(ScriptedServer.oneOpenSegment(), firstAnswerLost(calls));
             SegmentStorageAdapter adapter = server.adapter(20_000, 300)) {
            assertEquals(ErrorCode.OUTCOME_UNKNOWN, failure(adapter.deleteByKey("s", "k")));
        }
    }

    @Test
    void anAttemptRefusedBeforeItDidAnythingLeavesTheAnswerKnown() throws Exception {
        AtomicInteger calls = new AtomicInteger();
        try (ScriptedServer server = ScriptedServer.start(ScriptedServer.oneOpenSegment(),
                RpcHandler.of(NodeMethods.DELETE, DeleteRequest.parser(), r -> calls.incrementAndGet() == 1
                        ? CompletableFuture.failedFuture(new RpcException(ErrorCode.NOT_LEADER.code(), "not the leader", "", true))
                        : CompletableFuture.completedFuture(DeleteResponse.newBuilder().setDeleted(0).build())));
             SegmentStorageAdapter adapter = server.adapter(20_000, 300)) {
            assertFalse(adapter.deleteByOffset("s", 3).get(30, TimeUnit.SECONDS), "already deleted");
            assertEquals(0L, adapter.deleteByKey("s", "k").get(30, TimeUnit.SECONDS));
        }
    }
}
