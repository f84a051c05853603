package dev.segstore.chaos;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;

/**
 * GROUP_OFFSET_REGRESSED: a group offset is a last-writer-wins register per (group, shard), so a read returns
 * the value of the commit that took effect last before it. For an ok READ_GROUP_OFFSET r:
 * <ul>
 *   <li>A = the acknowledged commits of the group and shard that completed before r was invoked;</li>
 *   <li>a commit in A is <em>superseded</em> if another commit in A was invoked after it completed (that one
 *       took effect after it, and before r);</li>
 *   <li>C = the commits, acknowledged or unknown, invoked before r completed and not in A (they may take effect
 *       just before r: an unknown one at any time after its invocation).</li>
 * </ul>
 * r may return the value of any commit in A that is not superseded, or of any commit in C; it may return empty
 * only if A is empty. Anything else is reported. Failed commits explain nothing. No false positives: the commit
 * that took effect last before r is either in C, or in A and then not superseded (one that superseded it would
 * have taken effect after it and before r); and if A is not empty, some commit took effect before r.
 */
final class GroupOffsetCheck {
    private GroupOffsetCheck() {
    }

    private record Register(String group, String shard) {
    }

    /** The commits of one register. */
    private static final class Commits {
        final List<Op> applied = new ArrayList<>();
        final Map<Long, List<Op>> byValue = new HashMap<>();
        Op[] acknowledged;
        /** {@code latestInvoked[i]}: of acknowledged[0..i] (by completion), the one invoked last. */
        Op[] latestInvoked;

        void index() {
            acknowledged = applied.stream().filter(Op::isOk)
                    .sorted(Comparator.comparingLong(Op::completeNanos)).toArray(Op[]::new);
            latestInvoked = new Op[acknowledged.length];
            for (int i = 0; i < acknowledged.length; i++) {
                Op prev = i == 0 ? null : latestInvoked[i - 1];
                latestInvoked[i] = prev != null && prev.invokeNanos() >= acknowledged[i].invokeNanos() ? prev : acknowledged[i];
            }
            for (Op c : applied) {
                byValue.computeIfAbsent(c.invocation().offset(), v -> new ArrayList<>()).add(c);
            }
        }

        /** How many acknowledged commits completed before {@code t}. */
        int completedBefore(long t) {
            int lo = 0;
            int hi = acknowledged.length;
            while (lo < hi) {
                int mid = (lo + hi) >>> 1;
                if (acknowledged[mid].completeNanos() < t) {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            return lo;
        }
    }

    static void run(List<Op> ops, List<Anomaly> out) {
        Map<Register, Commits> registers = new LinkedHashMap<>();
        for (Op op : ops) {
            if (op.type() == OpType.COMMIT_OFFSET && op.mayHaveApplied()) {
                registers.computeIfAbsent(register(op), r -> new Commits()).applied.add(op);
            }
        }
        registers.values().forEach(Commits::index);
        Commits none = new Commits();
        none.index();
        for (Op read : ops) {
            if (read.type() == OpType.READ_GROUP_OFFSET && read.isOk()) {
                check(read, registers.getOrDefault(register(read), none), out);
            }
        }
    }

    private static void check(Op read, Commits commits, List<Anomaly> out) {
        OptionalLong value = read.result().groupOffset();
        int before = commits.completedBefore(read.invokeNanos());
        // The commits of A not superseded: those that completed at or after the latest invocation in A.
        List<Op> latest = new ArrayList<>();
        if (before > 0) {
            long t = commits.latestInvoked[before - 1].invokeNanos();
            for (int i = before - 1; i >= 0 && commits.acknowledged[i].completeNanos() >= t; i--) {
                latest.add(commits.acknowledged[i]);
            }
        }
        if (value.isEmpty() ? before == 0 : explains(value.getAsLong(), latest, commits, read)) {
            return;
        }
        List<Long> ids = new ArrayList<>(List.of(read.id()));
        latest.forEach(c -> ids.add(c.id()));
        List<String> values = latest.stream().map(c -> c.invocation().offset() + " by " + Describe.op(c)).toList();
        String committed = latest.isEmpty() ? "no commit was acknowledged before it was invoked"
                : "the latest commits acknowledged before it was invoked set " + String.join(" or ", values);
        out.add(new Anomaly(Anomaly.Kind.GROUP_OFFSET_REGRESSED, Describe.op(read) + " read the offset of group "
                + read.invocation().group() + " on shard " + read.shard() + " as "
                + (value.isEmpty() ? "empty" : String.valueOf(value.getAsLong())) + ", but " + committed
                + ", and no commit of that value was in flight with the read or invoked during it", ids));
    }

    private static boolean explains(long value, List<Op> latest, Commits commits, Op read) {
        if (latest.stream().anyMatch(c -> c.invocation().offset() == value)) {
            return true;
        }
        for (Op c : commits.byValue.getOrDefault(value, List.of())) {
            boolean inA = c.isOk() && c.completeNanos() < read.invokeNanos();
            if (!inA && c.invokeNanos() < read.completeNanos()) {
                return true;
            }
        }
        return false;
    }

    private static Register register(Op op) {
        return new Register(op.invocation().group(), op.shard());
    }
}
