package dev.segstore.meta.server;

import dev.segstore.meta.raft.Consensus;
import dev.segstore.meta.state.MetaState;
import dev.segstore.protocol.meta.Command;
import dev.segstore.protocol.meta.NodeState;
import dev.segstore.protocol.meta.ReassignReplicaCommand;
import dev.segstore.protocol.meta.Segment;
import dev.segstore.protocol.meta.StorageNode;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.LongSupplier;

/**
 * Moves replicas off storage nodes lost for good: once a node has been seen not alive for
 * {@code replica.reassign.after.ms} in a row, each of its replicas that is not in its segment's ISR (the others
 * are the last holders of their records: those segments wait for the node) is moved to the live node holding
 * the fewest replicas that is not one already ({@code ReassignReplica}; the state machine checks the rules again).
 * The new replica starts empty, fetches from the leader and joins the ISR once caught up. If the node comes back
 * later, its registration deletes the logs it no longer hosts. A decommissioned node's replicas move as soon as it
 * is not alive (the operator retired it), and decommissioned nodes take no new replica.
 *
 * <p>Time is this leader's own monotonic clock, from the first tick at which it saw the node not alive: a wall-clock
 * step cannot make it move replicas early, and a new leader counts afresh (a failover delays a move, never hastens
 * it). Kafka leaves this to an operator's reassignment; Redpanda's continuous balancing does it after a node has been
 * unavailable for a while (15 minutes by default), as here.
 *
 * <p>Thread: {@link #tick} runs on one timer thread.
 */
final class ReplicaReassigner {
    private static final Logger LOG = LoggerFactory.getLogger(ReplicaReassigner.class);
    /** Moves proposed per tick at most, so a large node's loss spreads over ticks instead of flooding the log. */
    static final int MAX_MOVES_PER_TICK = 64;

    private final MetaState state;
    private final Consensus raft;
    private final long afterMs;
    private final LongSupplier monotonicMs;
    private final LongSupplier wallMs;
    /** When this leader first saw each node not alive (monotonic ms); cleared when it does not lead. */
    private final Map<Integer, Long> notAliveSince = new HashMap<>();
    /** Moves proposed and not answered yet ("shardId/sequence"), so a slow commit is not proposed twice. */
    private final Set<String> inFlight = java.util.concurrent.ConcurrentHashMap.newKeySet();

    /**
     * @param afterMs     how long a node must have been not alive before its replicas move; negative: never
     * @param monotonicMs the clock that measures that (never steps)
     * @param wallMs      the time stamped on the commands
     */
    ReplicaReassigner(MetaState state, Consensus raft, long afterMs, LongSupplier monotonicMs, LongSupplier wallMs) {
        this.state = state;
        this.raft = raft;
        this.afterMs = afterMs;
        this.monotonicMs = monotonicMs;
        this.wallMs = wallMs;
    }

    /** How often {@link #tick} should run for this setting. */
    static long period(long afterMs) {
        return Math.max(100, Math.min(5_000, afterMs / 4));
    }

    void tick() {
        if (afterMs < 0) {
            return;
        }
        if (!raft.isLeader()) {
            notAliveSince.clear(); // a leader counts from what it saw itself
            return;
        }
        long now = monotonicMs.getAsLong();
        List<Integer> lost = new ArrayList<>();
        Map<Integer, Integer> load = new HashMap<>();
        for (StorageNode n : state.nodes()) {
            if (n.getState() == NodeState.ALIVE) {
                notAliveSince.remove(n.getNodeId());
                if (!n.getShuttingDown() && !n.getDecommissioned()) {
                    load.put(n.getNodeId(), 0); // a target (a node shutting down or decommissioned takes no new replica)
                }
            } else if (n.getDecommissioned() || now - notAliveSince.computeIfAbsent(n.getNodeId(), k -> now) >= afterMs) {
                // (a decommissioned node's replicas move as soon as it is not alive: the operator retired it)
                lost.add(n.getNodeId());
            }
        }
        if (lost.isEmpty() || load.isEmpty()) {
            return;
        }
        state.replicaCounts().forEach((node, count) -> load.computeIfPresent(node, (k, v) -> count));
        int moves = 0;
        for (int node : lost) {
            for (Segment s : state.reassignable(node)) {
                if (moves == MAX_MOVES_PER_TICK) {
                    return;
                }
                String key = s.getShardId() + "/" + s.getSequence();
                if (inFlight.contains(key)) {
                    continue;
                }
                Integer target = load.keySet().stream().filter(n -> !s.getReplicasList().contains(n))
                        .min(Comparator.<Integer>comparingInt(load::get).thenComparingInt(n -> n)).orElse(null);
                if (target == null) {
                    continue; // every live node holds a replica already
                }
                load.merge(target, 1, Integer::sum);
                moves++;
                propose(s, node, target, key);
            }
        }
    }

    private void propose(Segment s, int from, int to, String key) {
        inFlight.add(key);
        LOG.info("Storage node {} has been gone for {} ms or more: moving its replica of {}/{} to node {}", from, afterMs,
                s.getShard(), s.getSequence(), to);
        raft.propose(state.stamped(Command.newBuilder(), wallMs.getAsLong())
                .setReassignReplica(ReassignReplicaCommand.newBuilder().setShard(s.getShard()).setShardId(s.getShardId())
                        .setSequence(s.getSequence()).setOldNode(from).setNewNode(to)).build())
                .whenComplete((r, e) -> {
                    inFlight.remove(key);
                    if (e != null || !r.isOk()) {
                        LOG.warn("Moving the replica of {}/{} from node {} to node {} failed: {}", s.getShard(), s.getSequence(),
                                from, to, e != null ? e.toString() : r.message());
                    }
                });
    }

    /** Nodes this leader currently counts as lost (for tests and logs). */
    Set<Integer> watched() {
        return new HashSet<>(notAliveSince.keySet());
    }
}
