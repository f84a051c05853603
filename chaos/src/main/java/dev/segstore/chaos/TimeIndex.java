package dev.segstore.chaos;

import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.function.ToLongFunction;

/**
 * Operations sorted by one of their times, answering in O(log n): among the operations whose sort time is
 * after {@code t}, which has the least value time? (A suffix minimum over the sorted array.) The checker asks
 * it, for instance, "of the acknowledged deletes invoked after this record was known to exist, which
 * completed first?"
 */
final class TimeIndex {
    private final long[] sortTimes;
    /** {@code least[i]}: the operation with the least value time among positions i.. of the sorted order. */
    private final Op[] least;
    private final long[] leastTimes;

    TimeIndex(List<Op> ops, ToLongFunction<Op> sortTime, ToLongFunction<Op> valueTime) {
        Op[] sorted = ops.toArray(new Op[0]);
        Arrays.sort(sorted, Comparator.comparingLong(sortTime));
        int n = sorted.length;
        sortTimes = new long[n];
        least = new Op[n];
        leastTimes = new long[n];
        for (int i = n - 1; i >= 0; i--) {
            sortTimes[i] = sortTime.applyAsLong(sorted[i]);
            long v = valueTime.applyAsLong(sorted[i]);
            boolean better = i == n - 1 || v < leastTimes[i + 1];
            least[i] = better ? sorted[i] : least[i + 1];
            leastTimes[i] = better ? v : leastTimes[i + 1];
        }
    }

    /** The operation with the least value time among those with sort time {@code > t}, or null if none. */
    Op leastAfter(long t) {
        int lo = 0;
        int hi = sortTimes.length;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (sortTimes[mid] > t) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        return lo < least.length ? least[lo] : null;
    }
}
