package dev.segstore.chaos;

import dev.segstore.chaos.ValidHistories.GenOp;
import dev.segstore.chaos.ValidHistories.Generated;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Assume;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.lifecycle.AfterContainer;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.Random;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Function;
import java.util.function.Predicate;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The checker against generated histories ({@link ValidHistories}), each drawn from a seed that jqwik prints
 * and every failure message repeats (replay with {@code @Property(seed = "...")}): a valid history has no
 * anomaly (no false positives), and the same history with one anomaly injected has it (no false negatives for
 * that injection).
 */
class CheckerProperties {
    private static final long FAR = 1_000_000;
    private static final AtomicLong OPS = new AtomicLong();
    private static final AtomicLong UNKNOWN = new AtomicLong();
    private static final Map<Anomaly.Kind, AtomicLong> INJECTED = new EnumMap<>(Anomaly.Kind.class);

    @AfterContainer
    static void report() {
        System.out.println("CheckerProperties: " + OPS.get() + " operations checked (" + UNKNOWN.get()
                + " with unknown outcome); anomalies injected by kind: " + INJECTED);
    }

    @Provide
    Arbitrary<Long> seeds() {
        return Arbitraries.longs();
    }

    @Property(tries = 300)
    void validHistoriesHaveNoAnomalies(@ForAll("seeds") long seed) {
        Random random = new Random(seed);
        Generated g = ValidHistories.generate(random, 20 + random.nextInt(300));
        History h = g.history();
        OPS.addAndGet(g.ops().size());
        UNKNOWN.addAndGet(g.ops().stream().filter(o -> o.outcome() == Outcome.INFO).count());
        List<Anomaly> anomalies = Checker.check(h);
        assertEquals(List.of(), anomalies, () -> "seed " + seed + "\n" + dump(h));
    }

    @Property(tries = 300)
    void anInjectedAnomalyIsFound(@ForAll("seeds") long seed) {
        Random random = new Random(seed);
        Generated g = ValidHistories.generate(random, 40 + random.nextInt(300));
        Anomaly.Kind[] kinds = Anomaly.Kind.values();
        int first = random.nextInt(kinds.length);
        for (int i = 0; i < kinds.length; i++) {
            Anomaly.Kind kind = kinds[(first + i) % kinds.length];
            List<GenOp> ops = new ArrayList<>(g.ops());
            if (inject(kind, ops, g, random)) {
                INJECTED.computeIfAbsent(kind, k -> new AtomicLong()).incrementAndGet();
                History h = ValidHistories.history(ops);
                List<Anomaly> anomalies = Checker.check(h);
                assertTrue(anomalies.stream().anyMatch(a -> a.kind() == kind),
                        () -> "seed " + seed + ": injected " + kind + ", found " + anomalies + "\n" + dump(h));
                return;
            }
        }
        Assume.that(false);
    }

    /** Changes {@code ops} to show one anomaly of {@code kind}; false if this history offers no place for it. */
    private static boolean inject(Anomaly.Kind kind, List<GenOp> ops, Generated g, Random random) {
        return switch (kind) {
            case LOST_WRITE -> lose(ops, random);
            case WRONG_OFFSET -> replaceOne(ops, random, o -> o.outcome() == Outcome.OK && o.invocation().type() == OpType.WRITE
                    && seenAnywhere(ops, o.invocation().records().get(0).payload()), o -> o.withResult(Result.offsets(FAR)));
            case DUPLICATE -> {
                GenOp page = lastFinalPage(ops, random);
                List<ReadRecord> all = finalRecords(ops, page.invocation().shard());
                if (all.isEmpty()) {
                    yield false;
                }
                ReadRecord r = all.get(random.nextInt(all.size()));
                yield appendToPage(ops, page, new ReadRecord(FAR, r.payload(), r.key(), r.tags()));
            }
            case OFFSET_REUSED -> {
                List<GenOp> writes = ops.stream().filter(o -> o.outcome() == Outcome.OK && o.invocation().type().isWrite()).toList();
                if (writes.isEmpty()) {
                    yield false;
                }
                GenOp w = writes.get(random.nextInt(writes.size()));
                ops.add(injectedWrite(g, 0, w.invocation().shard(), "reused", w.result().offsets().get(0)));
                yield true;
            }
            case PHANTOM -> appendToPage(ops, lastFinalPage(ops, random), ReadRecord.of(FAR, "phantom"));
            case UNSTABLE_READ -> unstable(ops, random);
            case WRITER_ORDER -> {
                GenOp page = lastFinalPage(ops, random);
                String shard = page.invocation().shard();
                ops.add(injectedWrite(g, 0, shard, "first", FAR + 1));
                ops.add(injectedWrite(g, 2, shard, "second", FAR));
                yield appendToPage(ops, page, ReadRecord.of(FAR, "second"), ReadRecord.of(FAR + 1, "first"));
            }
            case DELETE_UNDONE -> undelete(ops, g, random);
            case GROUP_OFFSET_REGRESSED -> replaceOne(ops, random, o -> o.outcome() == Outcome.OK
                    && o.invocation().type() == OpType.READ_GROUP_OFFSET && commitBefore(ops, o),
                    o -> o.withResult(Result.groupOffset(OptionalLong.of(FAR))));
        };
    }

    /** Drops from a final page an acknowledged record no delete of its offset or key can explain. */
    private static boolean lose(List<GenOp> ops, Random random) {
        List<int[]> places = new ArrayList<>();
        for (int i = 0; i < ops.size(); i++) {
            GenOp o = ops.get(i);
            if (o.invocation().finalRead()) {
                List<ReadRecord> records = o.result().records();
                for (int j = 0; j < records.size(); j++) {
                    ReadRecord r = records.get(j);
                    if (r.key() == null && !deleteTargets(ops, o.invocation().shard(), r.offset())
                            && acknowledged(ops, r.payload())) {
                        places.add(new int[] {i, j});
                    }
                }
            }
        }
        return dropOne(ops, places, random);
    }

    /**
     * Drops from an ordinary read by offset a record an earlier read returned, inside the read's proven window
     * (below its last record), where no delete of its offset or key can explain it.
     */
    private static boolean unstable(List<GenOp> ops, Random random) {
        List<int[]> places = new ArrayList<>();
        for (int i = 0; i < ops.size(); i++) {
            GenOp r2 = ops.get(i);
            if (r2.outcome() != Outcome.OK || r2.invocation().type() != OpType.READ || r2.invocation().finalRead()) {
                continue;
            }
            List<ReadRecord> records = r2.result().records();
            for (int j = 0; j + 1 < records.size(); j++) {
                ReadRecord r = records.get(j);
                if (r.key() == null && !deleteTargets(ops, r2.invocation().shard(), r.offset())
                        && seenBefore(ops, r, r2.invoke())) {
                    places.add(new int[] {i, j});
                }
            }
        }
        return dropOne(ops, places, random);
    }

    /** Removes one of the places (op index, record index) from its read's answer; false if there are none. */
    private static boolean dropOne(List<GenOp> ops, List<int[]> places, Random random) {
        if (places.isEmpty()) {
            return false;
        }
        int[] at = places.get(random.nextInt(places.size()));
        GenOp read = ops.get(at[0]);
        List<ReadRecord> records = new ArrayList<>(read.result().records());
        records.remove(at[1]);
        ops.set(at[0], read.withResult(Result.records(records)));
        return true;
    }

    /** Puts a record an acknowledged delete of its offset removed back into the final read. */
    private static boolean undelete(List<GenOp> ops, Generated g, Random random) {
        List<GenOp> deletes = ops.stream().filter(o -> o.outcome() == Outcome.OK
                && o.invocation().type() == OpType.DELETE_OFFSET && o.result().count() == 1).toList();
        if (deletes.isEmpty()) {
            return false;
        }
        GenOp d = deletes.get(random.nextInt(deletes.size()));
        String shard = d.invocation().shard();
        long offset = d.invocation().offset();
        WrittenRecord w = g.stored().get(shard).get(offset);
        GenOp page = null;
        for (GenOp o : ops) {
            if (o.invocation().finalRead() && o.invocation().shard().equals(shard) && o.invocation().offset() <= offset
                    && (page == null || o.invocation().offset() > page.invocation().offset())) {
                page = o;
            }
        }
        List<ReadRecord> records = new ArrayList<>(page.result().records());
        records.add(ValidHistories.record(offset, w));
        records.sort(Comparator.comparingLong(ReadRecord::offset));
        ops.set(ops.indexOf(page), page.withResult(Result.records(records)));
        return true;
    }

    private static GenOp injectedWrite(Generated g, int slot, String shard, String payload, long offset) {
        long invoke = g.quietFrom() + slot * ValidHistories.STEP;
        return new GenOp("injector", Invocation.write(shard, WrittenRecord.of(payload)), invoke,
                invoke + ValidHistories.STEP / 2, Outcome.OK, Result.offsets(offset), null);
    }

    private static boolean replaceOne(List<GenOp> ops, Random random, Predicate<GenOp> eligible,
                                      Function<GenOp, GenOp> change) {
        List<Integer> places = new ArrayList<>();
        for (int i = 0; i < ops.size(); i++) {
            if (eligible.test(ops.get(i))) {
                places.add(i);
            }
        }
        if (places.isEmpty()) {
            return false;
        }
        int i = places.get(random.nextInt(places.size()));
        ops.set(i, change.apply(ops.get(i)));
        return true;
    }

    private static GenOp lastFinalPage(List<GenOp> ops, Random random) {
        String shard = ValidHistories.SHARDS.get(random.nextInt(ValidHistories.SHARDS.size()));
        GenOp last = null;
        for (GenOp o : ops) {
            if (o.invocation().finalRead() && o.invocation().shard().equals(shard)) {
                last = o;
            }
        }
        return last;
    }

    private static boolean appendToPage(List<GenOp> ops, GenOp page, ReadRecord... added) {
        List<ReadRecord> records = new ArrayList<>(page.result().records());
        records.addAll(List.of(added));
        ops.set(ops.indexOf(page), page.withResult(Result.records(records)));
        return true;
    }

    private static List<ReadRecord> finalRecords(List<GenOp> ops, String shard) {
        return ops.stream().filter(o -> o.invocation().finalRead() && o.invocation().shard().equals(shard))
                .flatMap(o -> o.result().records().stream()).toList();
    }

    private static boolean deleteTargets(List<GenOp> ops, String shard, long offset) {
        return ops.stream().anyMatch(o -> o.outcome() != Outcome.FAIL && o.invocation().type() == OpType.DELETE_OFFSET
                && o.invocation().shard().equals(shard) && o.invocation().offset() == offset);
    }

    private static boolean acknowledged(List<GenOp> ops, String payload) {
        return ops.stream().anyMatch(o -> o.outcome() == Outcome.OK && o.invocation().type().isWrite()
                && o.invocation().records().stream().anyMatch(r -> r.payload().equals(payload)));
    }

    private static boolean seenAnywhere(List<GenOp> ops, String payload) {
        return ops.stream().anyMatch(o -> o.outcome() == Outcome.OK && o.invocation().type().isRead()
                && o.result().records().stream().anyMatch(r -> r.payload().equals(payload)));
    }

    private static boolean seenBefore(List<GenOp> ops, ReadRecord record, long before) {
        return ops.stream().anyMatch(o -> o.outcome() == Outcome.OK && o.invocation().type().isRead()
                && o.complete() < before && o.result().records().contains(record));
    }

    private static boolean commitBefore(List<GenOp> ops, GenOp read) {
        return ops.stream().anyMatch(o -> o.outcome() == Outcome.OK && o.invocation().type() == OpType.COMMIT_OFFSET
                && o.invocation().group().equals(read.invocation().group())
                && o.invocation().shard().equals(read.invocation().shard()) && o.complete() < read.invoke());
    }

    private static String dump(History h) {
        return h.ops().stream().map(Object::toString).collect(Collectors.joining("\n"));
    }
}
