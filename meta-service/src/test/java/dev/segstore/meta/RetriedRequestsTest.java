package dev.segstore.meta;

import com.google.protobuf.ByteString;
import dev.segstore.adapter.ErrorCode;
import dev.segstore.meta.state.CommandResult;
import dev.segstore.meta.state.MetaState;
import dev.segstore.protocol.meta.Command;
import dev.segstore.protocol.meta.CreateShardCommand;
import dev.segstore.protocol.meta.DeleteShardCommand;
import dev.segstore.protocol.meta.FinishDeleteShardCommand;
import dev.segstore.protocol.meta.MetaSnapshot;
import dev.segstore.protocol.meta.RegisterNodeCommand;
import dev.segstore.protocol.meta.ShardRoute;
import dev.segstore.protocol.meta.ShardSettings;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Creates and deletes are idempotent per request id (issue 15 item 8): a retry of one that was applied, whose
 * answer the client never got, is answered as the first attempt was, not with SHARD_EXISTS / SHARD_NOT_FOUND for
 * its own success; a different request for the same name is not mistaken for a retry.
 */
class RetriedRequestsTest {
    private static final ByteString R1 = ByteString.copyFromUtf8("request-0000001");
    private static final ByteString R2 = ByteString.copyFromUtf8("request-0000002");

    private MetaState state = new MetaState();
    private long now = 1;

    private CommandResult apply(Command.Builder c) {
        return state.apply(c.setVersion(MetaState.VERSION).setTimestampMs(now++).build());
    }

    private CommandResult create(String name, ByteString requestId) {
        return apply(Command.newBuilder().setCreateShard(CreateShardCommand.newBuilder().setName(name).setRequestId(requestId)
                .setSettings(ShardSettings.newBuilder().setReplicaCount(1).setMinInSyncReplicas(1)).addReplicas(1)));
    }

    private CommandResult delete(String name, ByteString requestId) {
        return apply(Command.newBuilder().setDeleteShard(DeleteShardCommand.newBuilder().setName(name).setTwoPhase(true).setRequestId(requestId)));
    }

    private void finishDelete(String name, long shardId) {
        assertEquals(null, apply(Command.newBuilder().setFinishDeleteShard(FinishDeleteShardCommand.newBuilder().setName(name).setShardId(shardId))).error());
    }

    private long idOf(String name) {
        return state.route(name).getShard().getShardId();
    }

    private void registerNode() {
        apply(Command.newBuilder().setRegisterNode(RegisterNodeCommand.newBuilder().setNodeId(1).setHost("h").setPort(1)));
    }

    @Test
    void aRetriedCreateThatWasAppliedIsAnsweredWithTheShardItMade() {
        registerNode();
        CommandResult first = create("s", R1);
        assertEquals(null, first.error(), first.message());
        CommandResult retry = create("s", R1);
        assertEquals(null, retry.error(), "a retry of the applied create: " + retry.message());
        assertEquals(first.value(), retry.value(), "answered with the same route");
        assertEquals(1, state.listShards("").size(), "and nothing else was created");
        assertEquals(ErrorCode.SHARD_EXISTS, create("s", R2).error(), "another request for the name is not a retry");
        assertEquals(ErrorCode.SHARD_EXISTS, create("s", ByteString.EMPTY).error(), "nor is a request without an id");
    }

    @Test
    void aRetriedCreateWhoseShardWasDeletedSinceIsAnsweredWithThatShardAndNoSegments() {
        registerNode();
        create("s", R1);
        long id = idOf("s");
        assertEquals(null, delete("s", R2).error());
        finishDelete("s", id);
        CommandResult retry = create("s", R1);
        assertEquals(null, retry.error(), retry.message());
        ShardRoute route = (ShardRoute) retry.value();
        assertEquals(id, route.getShard().getShardId(), "the shard this request made");
        assertEquals(0, route.getSegmentsCount(), "which holds nothing now");
        assertEquals(null, state.route("s"), "the retry did not create the shard again");
    }

    @Test
    void aRetriedDeleteIsAnsweredOkBeforeAndAfterTheDeleteFinished() {
        registerNode();
        create("s", R1);
        long id = idOf("s");
        assertEquals(null, delete("s", R2).error());
        assertEquals(null, delete("s", R2).error(), "a retry while the shard is DELETING");
        finishDelete("s", id);
        CommandResult retry = delete("s", R2);
        assertEquals(null, retry.error(), "a retry after the delete finished: " + retry.message());
        assertEquals(id, ((dev.segstore.protocol.meta.Shard) retry.value()).getShardId());
        assertEquals(ErrorCode.SHARD_NOT_FOUND, delete("s", ByteString.copyFromUtf8("another")).error(), "another delete of the name is not a retry");
    }

    @Test
    void aRetriedDeleteDoesNotDeleteAShardCreatedUnderTheNameSince() {
        registerNode();
        create("s", R1);
        long old = idOf("s");
        delete("s", R2);
        finishDelete("s", old);
        assertEquals(null, create("s", ByteString.copyFromUtf8("create-again")).error());
        long newer = idOf("s");
        assertEquals(null, delete("s", R2).error(), "the old delete's retry is answered as it was");
        assertNotNull(state.route("s"), "and the newer shard is still there");
        assertEquals(newer, idOf("s"));
    }

    @Test
    void requestsAreRememberedAcrossASnapshotAndForgottenAfterTheirRetention() throws Exception {
        registerNode();
        create("s", R1);
        MetaState restored = new MetaState();
        restored.restore(MetaSnapshot.parseFrom(state.snapshot().toByteArray()));
        assertEquals(state.snapshot(), restored.snapshot(), "the snapshot keeps the requests");
        state = restored;
        assertEquals(null, create("s", R1).error(), "the restored state answers the retry");
        now += 15 * 60 * 1000L; // the retention of requests, in command time
        create("other", ByteString.copyFromUtf8("later")); // requests are forgotten as new ones are recorded
        assertEquals(ErrorCode.SHARD_EXISTS, create("s", R1).error(), "a request older than the retention is forgotten");
        assertTrue(state.appliedRequest(ByteString.copyFromUtf8("later")));
        assertEquals(List.of("later"), state.snapshot().getAppliedRequestsList().stream().map(r -> r.getRequestId().toStringUtf8()).toList());
    }
}
