package dev.segstore.it.faults;

import dev.segstore.protocol.meta.DurabilityMode;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;

import java.util.Comparator;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

/**
 * One fault run, as jqwik generates it: a {@link Workload}, the shard's durability mode (acknowledged after
 * fsync on the ISR, or after the write reached their page cache) and timed {@link FaultAction}s. The workload runs
 * while the faults come and go, until {@link #healAtMs()}; then every fault still in place is removed and every
 * node is back (the heal), and the clients go on for {@link #AFTER_HEAL_MS} more, so that a write after the heal
 * shows the store took writes again.
 *
 * <p>{@link #arbitrary()} is built from jqwik combinators only (no seeds drawn inside, no {@code flatMap}), so
 * jqwik shrinks a failing schedule field by field: fewer faults, earlier and shorter, the simplest kind and the
 * leader's role, fewer processes, a smaller mix. {@link #toString()} prints it one fault a line.
 */
record Schedule(Workload workload, DurabilityMode durability, List<FaultAction> faults) {
    /** The workload runs at least this long before the heal. */
    static final int MIN_WORKLOAD_MS = 250;
    /** Clients go on this long after the heal. */
    static final int AFTER_HEAL_MS = 100;
    static final int MAX_FAULTS = 3;
    static final int MAX_START_MS = 300;
    static final int MIN_FAULT_MS = 20;
    /** Longer than the test cluster's session timeout, so that a killed leader is sometimes replaced. */
    static final int MAX_FAULT_MS = 900;

    Schedule {
        faults = faults.stream().sorted(Comparator.comparingInt(FaultAction::atMs)).toList();
    }

    /** When the faults end and the heal runs, in ms after the workload starts. */
    int healAtMs() {
        return Math.max(MIN_WORKLOAD_MS, faults.stream().mapToInt(FaultAction::endMs).max().orElse(0));
    }

    /** When the clients stop invoking operations, in ms after the workload starts. */
    int workloadMs() {
        return healAtMs() + AFTER_HEAL_MS;
    }

    /** Schedules with faults of every kind. */
    static Arbitrary<Schedule> arbitrary() {
        return arbitrary(EnumSet.allOf(FaultKind.class));
    }

    /** Schedules whose faults are of {@code kinds} only (a campaign's fault mix). */
    static Arbitrary<Schedule> arbitrary(Set<FaultKind> kinds) {
        return Combinators.combine(workloads(), Arbitraries.of(DurabilityMode.FSYNC, DurabilityMode.PAGE_CACHE),
                faultActions(kinds).list().ofMaxSize(MAX_FAULTS)).as(Schedule::new);
    }

    static Arbitrary<Workload> workloads() {
        Arbitrary<Integer> percent = Arbitraries.integers().between(0, 100);
        Arbitrary<Workload.Mix> mix = Combinators.combine(percent, Arbitraries.integers().between(0, 50),
                Arbitraries.integers().between(0, 50), Arbitraries.integers().between(0, 30), percent).as(Workload.Mix::new);
        return Combinators.combine(Arbitraries.integers().between(1, 3), Arbitraries.integers().between(0, 2),
                Arbitraries.of(false, true), Arbitraries.of(false, true), mix, Arbitraries.longs()).as(Workload::new);
    }

    static Arbitrary<FaultAction> faultActions(Set<FaultKind> kinds) {
        return Combinators.combine(Arbitraries.of(List.copyOf(new TreeSet<>(kinds))), Arbitraries.integers().between(0, MAX_START_MS),
                Arbitraries.integers().between(MIN_FAULT_MS, MAX_FAULT_MS), Arbitraries.integers().between(0, 2),
                Arbitraries.integers().between(0, 1), Arbitraries.integers().between(5, 300)).as(FaultAction::new);
    }

    @Override
    public String toString() {
        StringBuilder b = new StringBuilder("Schedule[").append(workload).append("; shard durability ").append(durability);
        for (FaultAction f : faults) {
            b.append("\n  ").append(f);
        }
        return b.append("\n  at ").append(healAtMs()).append(" ms: heal (every fault removed, every node back); clients stop at ")
                .append(workloadMs()).append(" ms]").toString();
    }
}
