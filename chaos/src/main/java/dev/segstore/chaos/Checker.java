package dev.segstore.chaos;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * Finds the anomalies of a {@link History}: what no correct store could have answered, given when each
 * operation was invoked and completed. The final state of the store (a full read of every shard after the
 * faults healed) is the history's final reads ({@link Invocation#finalRead(String, long, int)}); the shards'
 * seal points, if recorded ({@link History#sealPoints(String, List)}), bound what a short read that is not final
 * proves ({@link MissingRecordCheck}).
 *
 * <p>The rules, one check class each (the javadoc of each says exactly what it assumes and why no valid history
 * trips it; {@code docs/architecture.md} has them together):
 * <ul>
 *   <li>{@link PayloadCheck}: PHANTOM, DUPLICATE, WRONG_OFFSET;</li>
 *   <li>{@link OffsetCheck}: OFFSET_REUSED, and UNSTABLE_READ where reads disagree about one offset;</li>
 *   <li>{@link MissingRecordCheck}: LOST_WRITE, and UNSTABLE_READ where a read misses what an earlier read
 *       returned;</li>
 *   <li>{@link DeleteCheck}: DELETE_UNDONE;</li>
 *   <li>{@link WriterOrderCheck}: WRITER_ORDER;</li>
 *   <li>{@link GroupOffsetCheck}: GROUP_OFFSET_REGRESSED.</li>
 * </ul>
 *
 * <p>Every rule is lenient where time or outcome leaves room: an operation may take effect at any point between
 * its invocation and its completion, an info operation at any point after its invocation or never, a failed
 * one never. Only "A completed before B was invoked" orders two operations. Payloads must be unique across the
 * history (a payload written twice is refused with {@link IllegalArgumentException}). Shards are assumed not
 * deleted and records not expired by retention during the run.
 *
 * <p>Cost: O(n log n) in operations plus records read (indexes by payload, offset and key; sweeps in time
 * order), so a history of 100,000 operations checks in well under a few seconds.
 */
public final class Checker {
    private Checker() {
    }

    /** The anomalies of {@code history}, by kind and then by their first operation's id. */
    public static List<Anomaly> check(History history) {
        List<Op> ops = history.ops();
        RecordIndex index = new RecordIndex(ops);
        List<Anomaly> out = new ArrayList<>();
        PayloadCheck.run(index, out);
        OffsetCheck.run(index, out);
        MissingRecordCheck.run(index, history.sealPoints(), out);
        DeleteCheck.run(index, out);
        WriterOrderCheck.run(ops, out);
        GroupOffsetCheck.run(ops, out);
        out.sort(Comparator.comparing(Anomaly::kind).thenComparingLong(a -> a.opIds().isEmpty() ? 0 : a.opIds().get(0)));
        return out;
    }
}
