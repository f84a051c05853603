package dev.segstore.chaos;

import org.HdrHistogram.Histogram;

import java.util.Comparator;
import java.util.List;

/**
 * The operations of a history in buckets of {@value #BUCKET_MS} ms by completion time: per bucket how many
 * completed with each outcome, and their latency p50, p99 and max (HdrHistogram, microseconds, 3 significant
 * digits). One histogram is reused bucket after bucket, so memory does not grow with the length of a run.
 * Operations that never completed are counted nowhere.
 */
final class Timeline {
    static final int BUCKET_MS = 100;
    static final long BUCKET_NANOS = BUCKET_MS * 1_000_000L;

    /** Time zero of the charts: the first event of the history. */
    final long originNanos;
    final int buckets;
    /** {@code completed[b][outcome.ordinal()]}. */
    final long[][] completed;
    /** Latency percentiles per bucket, microseconds; 0 where the bucket is empty. */
    final long[] p50;
    final long[] p99;
    final long[] max;
    /** Latency of every completed operation, microseconds. */
    final Histogram overall = new Histogram(3);

    Timeline(List<Op> ops, long originNanos, long endNanos) {
        this.originNanos = originNanos;
        this.buckets = (int) Math.max(1, (endNanos - originNanos) / BUCKET_NANOS + 1);
        completed = new long[buckets][Outcome.values().length];
        p50 = new long[buckets];
        p99 = new long[buckets];
        max = new long[buckets];
        List<Op> done = ops.stream().filter(op -> op.completeNanos() != Op.NEVER)
                .sorted(Comparator.comparingLong(Op::completeNanos)).toList();
        Histogram bucket = new Histogram(3);
        int current = -1;
        for (Op op : done) {
            int b = bucket(op.completeNanos());
            if (b != current) {
                flush(bucket, current);
                current = b;
            }
            long micros = Math.max(1, op.latencyNanos() / 1_000);
            bucket.recordValue(micros);
            overall.recordValue(micros);
            completed[b][op.outcome().ordinal()]++;
        }
        flush(bucket, current);
    }

    /** The bucket of a time (clamped to the timeline). */
    int bucket(long nanos) {
        return (int) Math.min(buckets - 1, Math.max(0, (nanos - originNanos) / BUCKET_NANOS));
    }

    /** Seconds since the origin. */
    double seconds(long nanos) {
        return (nanos - originNanos) / 1e9;
    }

    private void flush(Histogram h, int b) {
        if (b >= 0) {
            p50[b] = h.getValueAtPercentile(50);
            p99[b] = h.getValueAtPercentile(99);
            max[b] = h.getMaxValue();
        }
        h.reset();
    }
}
