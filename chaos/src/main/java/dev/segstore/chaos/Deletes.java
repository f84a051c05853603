package dev.segstore.chaos;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The deletes of a history, indexed to answer the two questions the checker asks of a record (shard, offset,
 * key): which delete <em>may</em> have removed it (to excuse a read that misses it), and which acknowledged
 * delete <em>must</em> have removed it (to convict a read that returns it). Failed deletes took no effect and
 * answer neither.
 *
 * <p>May have removed it, at the earliest from the delete's invocation (an info delete may take effect at any
 * time after that):
 * <ul>
 *   <li>a {@code deleteByOffset} of its offset that answered {@code true}, or whose outcome is unknown (one that
 *       answered {@code false} found the offset dead already and removed nothing);</li>
 *   <li>a {@code deleteByKey} of its key whose outcome is unknown, or that answered a count above 0 and
 *       completed after the record's write was invoked (one that completed before could not see it).</li>
 * </ul>
 * Must have removed it, by the delete's completion:
 * <ul>
 *   <li>any acknowledged {@code deleteByOffset} of its offset (true or false: after either, the offset is dead,
 *       and offsets are never reused);</li>
 *   <li>an acknowledged {@code deleteByKey} of its key invoked after the record was known to be stored (its
 *       write acknowledged, or a read returned it).</li>
 * </ul>
 */
final class Deletes {
    private record ShardOffset(String shard, long offset) {
    }

    private record ShardKey(String shard, String key) {
    }

    /** Per offset: the earliest invocation of an offset delete that may have removed its record. */
    private final Map<ShardOffset, Op> mayByOffset = new HashMap<>();
    /** Per offset: the acknowledged offset delete that completed first. */
    private final Map<ShardOffset, Op> mustByOffset = new HashMap<>();
    /** Per key: the earliest invoked key delete whose outcome is unknown. */
    private final Map<ShardKey, Op> unknownByKey = new HashMap<>();
    /** Per key: acknowledged key deletes that deleted something, by completion; least invocation after. */
    private final Map<ShardKey, TimeIndex> removingByKey = new HashMap<>();
    /** Per key: every acknowledged key delete, by invocation; least completion after. */
    private final Map<ShardKey, TimeIndex> acknowledgedByKey = new HashMap<>();

    Deletes(List<Op> ops) {
        Map<ShardKey, List<Op>> removing = new HashMap<>();
        Map<ShardKey, List<Op>> acknowledged = new HashMap<>();
        for (Op op : ops) {
            if (!op.mayHaveApplied()) {
                continue;
            }
            if (op.type() == OpType.DELETE_OFFSET) {
                ShardOffset at = new ShardOffset(op.shard(), op.invocation().offset());
                if (!op.isOk() || op.result().count() > 0) {
                    mayByOffset.merge(at, op, Deletes::invokedFirst);
                }
                if (op.isOk()) {
                    mustByOffset.merge(at, op, (a, b) -> a.completeNanos() <= b.completeNanos() ? a : b);
                }
            } else if (op.type() == OpType.DELETE_KEY) {
                ShardKey key = new ShardKey(op.shard(), op.invocation().key());
                if (!op.isOk()) {
                    unknownByKey.merge(key, op, Deletes::invokedFirst);
                } else {
                    acknowledged.computeIfAbsent(key, k -> new ArrayList<>()).add(op);
                    if (op.result().count() > 0) {
                        removing.computeIfAbsent(key, k -> new ArrayList<>()).add(op);
                    }
                }
            }
        }
        removing.forEach((k, list) -> removingByKey.put(k, new TimeIndex(list, Op::completeNanos, Op::invokeNanos)));
        acknowledged.forEach((k, list) -> acknowledgedByKey.put(k, new TimeIndex(list, Op::invokeNanos, Op::completeNanos)));
    }

    /**
     * The earliest invocation time of a delete that may have removed the record {@code w} stored at
     * {@code offset}, or {@link Long#MAX_VALUE} if none may have.
     */
    long mayHaveRemovedFrom(Written w, long offset) {
        long earliest = Long.MAX_VALUE;
        Op byOffset = mayByOffset.get(new ShardOffset(w.shard(), offset));
        if (byOffset != null) {
            earliest = byOffset.invokeNanos();
        }
        if (w.record().key() != null) {
            ShardKey key = new ShardKey(w.shard(), w.record().key());
            Op unknown = unknownByKey.get(key);
            if (unknown != null) {
                earliest = Math.min(earliest, unknown.invokeNanos());
            }
            TimeIndex removing = removingByKey.get(key);
            Op ack = removing == null ? null : removing.leastAfter(w.op().invokeNanos());
            if (ack != null) {
                earliest = Math.min(earliest, ack.invokeNanos());
            }
        }
        return earliest;
    }

    /**
     * The acknowledged delete that completed first among those that must have removed the record {@code w}
     * stored at {@code offset}, known to be stored from {@code storedNanos} on; null if none.
     */
    Op mustHaveRemoved(Written w, long offset, long storedNanos) {
        Op first = mustByOffset.get(new ShardOffset(w.shard(), offset));
        if (w.record().key() != null) {
            TimeIndex byKey = acknowledgedByKey.get(new ShardKey(w.shard(), w.record().key()));
            Op ack = byKey == null ? null : byKey.leastAfter(storedNanos);
            if (ack != null && (first == null || ack.completeNanos() < first.completeNanos())) {
                first = ack;
            }
        }
        return first;
    }

    private static Op invokedFirst(Op a, Op b) {
        return a.invokeNanos() <= b.invokeNanos() ? a : b;
    }
}
