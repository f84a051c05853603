package dev.segstore.chaos;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What a history says about each record, indexed by payload: the write that asked for it, and where and when
 * reads returned it. Built once, in one pass over the operations, for all the checks.
 *
 * <p>A payload a read returns is a <em>sighting</em> if its write could have stored it there (same shard, the
 * write did not fail, and was invoked before the read completed); otherwise the read is a phantom of it and
 * the sighting is kept apart, so that no other check reasons from an impossible record.
 */
final class RecordIndex {
    /** The reads of one payload at one offset: the one that completed first, and the one invoked last. */
    static final class Seen {
        Op earliest;
        Op latest;

        void add(Op read) {
            if (earliest == null || read.completeNanos() < earliest.completeNanos()) {
                earliest = read;
            }
            if (latest == null || read.invokeNanos() > latest.invokeNanos()) {
                latest = read;
            }
        }
    }

    /** A read that returned a payload no write could have stored there, and why. */
    record Phantom(String payload, Op read, String why) {
    }

    final List<Op> ops;
    final Map<String, Written> writes = new HashMap<>();
    /** Payload → offset → reads that returned it there (in order of first sighting). */
    final Map<String, Map<Long, Seen>> sightings = new HashMap<>();
    /** Payload → the first phantom read of it. */
    final Map<String, Phantom> phantoms = new LinkedHashMap<>();
    final Deletes deletes;

    RecordIndex(List<Op> ops) {
        this.ops = ops;
        for (Op op : ops) {
            if (op.type().isWrite()) {
                for (int i = 0; i < op.invocation().records().size(); i++) {
                    Written w = new Written(op, i);
                    Written before = writes.put(w.payload(), w);
                    if (before != null) {
                        throw new IllegalArgumentException("payload " + w.payload() + " is written by ops "
                                + before.op().id() + " and " + op.id() + ": the checker needs unique payloads");
                    }
                }
            }
        }
        for (Op op : ops) {
            if (op.isOk() && op.type().isRead()) {
                for (ReadRecord r : op.result().records()) {
                    String why = phantomReason(op, writes.get(r.payload()));
                    if (why != null) {
                        phantoms.putIfAbsent(r.payload(), new Phantom(r.payload(), op, why));
                    } else {
                        sightings.computeIfAbsent(r.payload(), p -> new LinkedHashMap<>(2))
                                .computeIfAbsent(r.offset(), o -> new Seen()).add(op);
                    }
                }
            }
        }
        deletes = new Deletes(ops);
    }

    /** The ok reads (by offset, tag and key, final ones too), in invocation order. */
    List<Op> reads() {
        List<Op> reads = new ArrayList<>();
        for (Op op : ops) {
            if (op.isOk() && op.type().isRead()) {
                reads.add(op);
            }
        }
        return reads;
    }

    /** Where reads returned {@code payload}: offset → reads; empty if nowhere. */
    Map<Long, Seen> seen(String payload) {
        return sightings.getOrDefault(payload, Map.of());
    }

    /** The earliest time {@code w}'s record is known stored: its acknowledgement or a read's completion. */
    long storedNanos(Written w) {
        long t = w.ackNanos();
        for (Seen s : seen(w.payload()).values()) {
            t = Math.min(t, s.earliest.completeNanos());
        }
        return t;
    }

    private static String phantomReason(Op read, Written w) {
        if (w == null) {
            return "no write ever invoked it";
        }
        if (!w.shard().equals(read.shard())) {
            return "it was written to shard " + w.shard() + " by " + Describe.op(w.op());
        }
        if (w.op().outcome() == Outcome.FAIL) {
            return "its write " + Describe.op(w.op()) + " failed (" + w.op().error() + "), so it was never applied";
        }
        if (w.op().invokeNanos() > read.completeNanos()) {
            return "its write " + Describe.op(w.op()) + " was invoked only after the read completed";
        }
        return null;
    }
}
