package dev.segstore.chaos;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * WRITER_ORDER: when a process invokes a write to a shard after an earlier acknowledged write of its own to
 * that shard completed, the later one takes effect later, so all its offsets are greater. Writes that overlap
 * in time (a process that pipelines) may take effect in either order and are not compared; writes whose
 * outcome is unknown or failed have no offsets.
 */
final class WriterOrderCheck {
    private WriterOrderCheck() {
    }

    private record ProcessShard(String process, String shard) {
    }

    static void run(List<Op> ops, List<Anomaly> out) {
        Map<ProcessShard, List<Op>> streams = new LinkedHashMap<>();
        for (Op op : ops) {
            if (op.isOk() && op.type().isWrite()) {
                streams.computeIfAbsent(new ProcessShard(op.process(), op.shard()), s -> new ArrayList<>()).add(op);
            }
        }
        for (List<Op> writes : streams.values()) {
            List<Op> byInvoke = new ArrayList<>(writes);
            byInvoke.sort(Comparator.comparingLong(Op::invokeNanos));
            List<Op> byComplete = new ArrayList<>(writes);
            byComplete.sort(Comparator.comparingLong(Op::completeNanos));
            Op highest = null;
            int done = 0;
            for (Op next : byInvoke) {
                for (; done < byComplete.size() && byComplete.get(done).completeNanos() < next.invokeNanos(); done++) {
                    Op before = byComplete.get(done);
                    if (highest == null || maxOffset(before) > maxOffset(highest)) {
                        highest = before;
                    }
                }
                if (highest != null && minOffset(next) <= maxOffset(highest)) {
                    out.add(new Anomaly(Anomaly.Kind.WRITER_ORDER, Describe.op(next) + " was invoked after "
                            + Describe.op(highest) + " completed, but got offset " + minOffset(next) + " of shard "
                            + next.shard() + ", not above " + maxOffset(highest), List.of(highest.id(), next.id())));
                }
            }
        }
    }

    private static long minOffset(Op write) {
        return write.result().offsets().stream().mapToLong(Long::longValue).min().orElseThrow();
    }

    private static long maxOffset(Op write) {
        return write.result().offsets().stream().mapToLong(Long::longValue).max().orElseThrow();
    }
}
