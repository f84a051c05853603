package dev.segstore.chaos;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.NavigableMap;
import java.util.Set;
import java.util.TreeMap;

/**
 * LOST_WRITE and UNSTABLE_READ in its "missing record" form: a range read (by offset or by tag) that covers a
 * record known to be stored, and does not return it, although no delete can have removed it by then.
 *
 * <p><b>What a range read proves.</b> An ok read of {@code limit} records from offset {@code from} returns
 * the live records (with the tag, for a tag read) from {@code from} on, in offset order, up to {@code limit}.
 * If it returned {@code last} as its greatest offset, every live record in {@code [from, last]} was returned
 * (the proven window). If it returned fewer than {@code limit} records, it also saw the end of the log
 * (the tail, {@code (last, +inf)}, or {@code [from, +inf)} if it returned none); in the tail it answers only for
 * records acknowledged before it was invoked (a record only seen by another read may lie past its end).
 *
 * <p><b>The roll window.</b> The adapter contract lets a reader whose route is older than a roll read a sealed
 * segment up to its seal point and answer "the end" there, for as long as the segment's old leader has not
 * learnt of the seal (one heartbeat, longer if the meta-service fails over). A short read that is not final
 * therefore answers only up to the first seal point at or past {@code max(from, last + 1)}, if the history
 * records the shard's seal points ({@link Event.SealPoints}); a history without them (one segment, or an engine
 * without segments) keeps the whole tail. Final reads are made once every replica has taken its seal, so their
 * tail is never cut.
 *
 * <p><b>What a record needs to be missed.</b> The record p of write w at offset o (o is w's acknowledged
 * offset, or, for an info write, the one offset reads returned p at) is known stored from {@code stored}: w's
 * acknowledgement, or the completion of the first read that returned it. A read R invoked after that, covering
 * o, that returns nothing at o, misses p unless a delete that may have removed p (see {@link Deletes}) was
 * invoked before R completed. A miss is LOST_WRITE if R is a final read and w was acknowledged before R was
 * invoked; else UNSTABLE_READ if a read that returned p completed before R was invoked; else nothing is
 * reported (an ordinary read that misses an acknowledged record no read returned is stale, not proof of loss;
 * the final read settles it). A read that returns another payload at o is {@link OffsetCheck}'s to report.
 *
 * <p><b>Cost.</b> A sweep over reads in invocation order keeps, per shard (and per shard and tag), the records
 * known stored by then and not yet excusably deleted, in an offset-sorted map; each read visits only that map's
 * entries in its window. In a valid history those are the records it returned, and in the tail only records
 * deleted while it ran, so a check is O(n log n) in operations plus records read.
 */
final class MissingRecordCheck {
    private MissingRecordCheck() {
    }

    private record Candidate(Written w, long offset, long storedNanos, Op seenBy, long excusedNanos) {
        long ackNanos() {
            return w.ackNanos();
        }

        long seenNanos() {
            return seenBy == null ? Long.MAX_VALUE : seenBy.completeNanos();
        }
    }

    /** The map a read looks in: all records of a shard (tag null), or those carrying one tag. */
    private record Window(String shard, String tag) {
    }

    static void run(RecordIndex index, Map<String, java.util.NavigableSet<Long>> sealPoints, List<Anomaly> out) {
        List<Candidate> candidates = candidates(index);
        Candidate[] byStored = candidates.toArray(new Candidate[0]);
        Arrays.sort(byStored, Comparator.comparingLong(Candidate::storedNanos));
        Candidate[] byExcused = candidates.toArray(new Candidate[0]);
        Arrays.sort(byExcused, Comparator.comparingLong(Candidate::excusedNanos));
        List<Op> reads = new ArrayList<>(index.reads().stream().filter(r -> r.type() != OpType.READ_KEY).toList());
        reads.sort(Comparator.comparingLong(Op::invokeNanos));

        Map<Window, NavigableMap<Long, Candidate>> live = new HashMap<>();
        Set<String> reported = new HashSet<>();
        int added = 0;
        int removed = 0;
        for (Op read : reads) {
            long t = read.invokeNanos();
            for (; added < byStored.length && byStored[added].storedNanos() < t; added++) {
                Candidate c = byStored[added];
                if (c.excusedNanos() >= t) {
                    windows(c).forEach(win -> live.computeIfAbsent(win, x -> new TreeMap<>()).putIfAbsent(c.offset(), c));
                }
            }
            for (; removed < byExcused.length && byExcused[removed].excusedNanos() < t; removed++) {
                Candidate c = byExcused[removed];
                windows(c).forEach(win -> {
                    NavigableMap<Long, Candidate> m = live.get(win);
                    if (m != null) {
                        m.remove(c.offset(), c);
                    }
                });
            }
            NavigableMap<Long, Candidate> window = live.get(new Window(read.shard(), read.invocation().tag()));
            if (window != null) {
                check(read, window, sealPoints.get(read.shard()), reported, out);
            }
        }
    }

    private static void check(Op read, NavigableMap<Long, Candidate> window, java.util.NavigableSet<Long> sealPoints,
                              Set<String> reported, List<Anomaly> out) {
        List<ReadRecord> returned = read.result().records();
        Set<Long> offsets = new HashSet<>();
        long last = -1;
        for (ReadRecord r : returned) {
            offsets.add(r.offset());
            last = Math.max(last, r.offset());
        }
        boolean sawEnd = returned.size() < read.invocation().limit();
        long from = read.invocation().offset();
        long to = sawEnd ? tailEnd(read, Math.max(from, last + 1), sealPoints) : last;
        if (to < from) {
            return;
        }
        for (Candidate c : window.subMap(from, true, to, true).values()) {
            if (offsets.contains(c.offset()) || c.excusedNanos() < read.completeNanos()) {
                continue;
            }
            boolean proven = c.offset() <= last;
            boolean ackedBefore = c.ackNanos() < read.invokeNanos();
            if (!proven && !ackedBefore) {
                continue;
            }
            String where = Describe.at(c.w().shard(), c.offset());
            String key = c.w().record().key() == null ? "" : " or of key " + c.w().record().key();
            String why = " covers " + where + " but does not return payload " + c.w().payload() + " there, and no delete"
                    + " of the offset" + key + " invoked before it completed can have removed it";
            if (read.invocation().finalRead() && ackedBefore) {
                if (reported.add("lost " + c.w().payload())) {
                    out.add(new Anomaly(Anomaly.Kind.LOST_WRITE, Describe.op(c.w().op()) + " was acknowledged at "
                            + where + " before final read " + Describe.op(read) + " was invoked; the final read" + why,
                            List.of(c.w().op().id(), read.id())));
                }
            } else if (c.seenNanos() < read.invokeNanos() && reported.add("unstable " + c.w().payload())) {
                out.add(new Anomaly(Anomaly.Kind.UNSTABLE_READ, Describe.op(c.seenBy()) + " returned payload "
                        + c.w().payload() + " at " + where + " and completed before " + Describe.op(read)
                        + " was invoked, which" + why, List.of(c.seenBy().id(), read.id())));
            }
        }
    }

    /**
     * The last offset a short read's tail answers for: unbounded for a final read or without seal points, else
     * just below the first seal point at or past {@code after} (where a reader with an older route may have seen
     * the end).
     */
    private static long tailEnd(Op read, long after, java.util.NavigableSet<Long> sealPoints) {
        if (read.invocation().finalRead() || sealPoints == null) {
            return Long.MAX_VALUE;
        }
        Long seal = sealPoints.ceiling(after);
        return seal == null ? Long.MAX_VALUE : seal - 1;
    }

    /**
     * One candidate per payload known stored: at its acknowledged offset, or (info write) at the one offset
     * reads returned it at. A payload reads returned elsewhere is {@link PayloadCheck}'s to report.
     */
    private static List<Candidate> candidates(RecordIndex index) {
        List<Candidate> candidates = new ArrayList<>();
        for (Written w : index.writes.values()) {
            Map<Long, RecordIndex.Seen> seen = index.seen(w.payload());
            long offset;
            if (w.acknowledged()) {
                offset = w.ackOffset();
            } else if (seen.size() == 1) {
                offset = seen.keySet().iterator().next();
            } else {
                continue;
            }
            if (seen.size() > 1 || (seen.size() == 1 && !seen.containsKey(offset))) {
                continue;
            }
            Op seenBy = seen.isEmpty() ? null : seen.get(offset).earliest;
            long stored = Math.min(w.ackNanos(), seenBy == null ? Long.MAX_VALUE : seenBy.completeNanos());
            if (stored == Long.MAX_VALUE) {
                continue;
            }
            candidates.add(new Candidate(w, offset, stored, seenBy, index.deletes.mayHaveRemovedFrom(w, offset)));
        }
        return candidates;
    }

    private static List<Window> windows(Candidate c) {
        List<Window> windows = new ArrayList<>(1 + c.w().record().tags().size());
        windows.add(new Window(c.w().shard(), null));
        for (String tag : c.w().record().tags()) {
            windows.add(new Window(c.w().shard(), tag));
        }
        return windows;
    }
}
