package dev.segstore.bench;

import dev.segstore.meta.state.CommandResult;
import dev.segstore.meta.state.MetaState;
import dev.segstore.protocol.meta.Command;
import dev.segstore.protocol.meta.CreateShardCommand;
import dev.segstore.protocol.meta.NodeAssignments;
import dev.segstore.protocol.meta.RegisterNodeCommand;
import dev.segstore.protocol.meta.ShardRoute;
import dev.segstore.protocol.meta.ShardSettings;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

/**
 * The meta-service's state machine alone ({@link MetaState}, no Raft, no RPC), holding {@code shards} shards of 3
 * replicas on 3 storage nodes, so every node is a replica of every shard:
 * <ul>
 *   <li>{@code createShard}: applies one CreateShard command (built in the call, a new name each time), as the
 *       Raft apply thread does once the command is committed. The state is rebuilt before every iteration, so
 *       it grows by one iteration's creations at most;</li>
 *   <li>{@code route}: a route look-up ({@code MetaState.route}), what a client's GetRoute reads;</li>
 *   <li>{@code heartbeatAnswer}: the assignments of one node ({@code MetaState.assignments}), what the
 *       meta-service answers a storage node's heartbeat with: one segment and one shard per shard here.</li>
 * </ul>
 * The Raft round trips of the same operations are measured by {@code MetaBenchmark} (meta-service tests).
 */
@State(Scope.Thread)
public class MetaStateBenchmark {
    private static final ShardSettings SETTINGS = ShardSettings.newBuilder().setReplicaCount(3).setMinInSyncReplicas(2)
            .setSegmentBytes(256L << 20).setSegmentMs(604_800_000L).setRetentionMs(-1).build();

    @Param({"1000", "100000"})
    int shards;

    private MetaState state;
    private String[] names;
    private int next;

    @Setup(Level.Iteration)
    public void populate() {
        state = new MetaState();
        for (int n = 1; n <= 3; n++) {
            state.apply(command(2).setRegisterNode(RegisterNodeCommand.newBuilder().setNodeId(n).setHost("127.0.0.1")
                    .setPort(9000 + n)).build());
        }
        names = new String[shards];
        for (int i = 0; i < shards; i++) {
            names[i] = "shard-" + i;
            apply(createShard(names[i], i));
        }
        next = 0;
    }

    @Benchmark
    public CommandResult createShard() {
        int i = shards + next++;
        return apply(createShard("new-" + i, i));
    }

    @Benchmark
    public ShardRoute route() {
        // 7919 is prime: look-ups jump across the shard map rather than walk it in order.
        next = (next + 7919) % shards;
        return state.route(names[next]);
    }

    @Benchmark
    public NodeAssignments heartbeatAnswer() {
        return state.assignments(1);
    }

    private CommandResult apply(Command c) {
        CommandResult r = state.apply(c);
        if (!r.isOk()) {
            throw new IllegalStateException("command failed: " + r);
        }
        return r;
    }

    private static Command createShard(String name, int i) {
        return command(3).setCreateShard(CreateShardCommand.newBuilder().setName(name).setSettings(SETTINGS)
                .addReplicas(1 + i % 3).addReplicas(1 + (i + 1) % 3).addReplicas(1 + (i + 2) % 3)).build();
    }

    private static Command.Builder command(long timestampMs) {
        return Command.newBuilder().setVersion(MetaState.VERSION).setTimestampMs(timestampMs);
    }
}
