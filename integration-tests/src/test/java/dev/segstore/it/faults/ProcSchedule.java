package dev.segstore.it.faults;

import dev.segstore.protocol.meta.DurabilityMode;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Random;
import java.util.Set;

/**
 * One process fault run: a {@link Workload}, the shard's durability mode and timed {@link ProcFault}s, drawn
 * from one seed ({@link #of}), so that a run's printed seed replays its schedule. As {@link Schedule}, the
 * workload runs until {@link #healAtMs()}, then every fault still in place is removed and every process is back,
 * and the clients go on for {@link #AFTER_HEAL_MS}. Times are longer than the in-JVM harness's: a process
 * restart takes seconds, the session timeout is {@value ProcCluster#SESSION_MS} ms.
 */
record ProcSchedule(long seed, Workload workload, DurabilityMode durability, List<ProcFault> faults) {
    static final int MIN_WORKLOAD_MS = 2_500;
    static final int AFTER_HEAL_MS = 1_000;
    static final int MAX_FAULTS = 3;
    static final int MAX_START_MS = 2_500;
    static final int MIN_FAULT_MS = 200;
    /** Longer than the session timeout, so that a lost leader is sometimes replaced. */
    static final int MAX_FAULT_MS = 4_000;

    ProcSchedule {
        faults = faults.stream().sorted(Comparator.comparingInt(ProcFault::atMs)).toList();
    }

    int healAtMs() {
        return Math.max(MIN_WORKLOAD_MS, faults.stream().mapToInt(ProcFault::endMs).max().orElse(0));
    }

    int workloadMs() {
        return healAtMs() + AFTER_HEAL_MS;
    }

    /** The schedule of {@code seed}, with faults of {@code kinds} only: 1 to 3 faults. */
    static ProcSchedule of(long seed, Set<ProcFaultKind> kinds) {
        Random r = new Random(seed);
        List<ProcFaultKind> mix = new ArrayList<>(new java.util.TreeSet<>(kinds));
        Workload.Mix m = new Workload.Mix(r.nextInt(101), r.nextInt(51), r.nextInt(51), r.nextInt(31), r.nextInt(101));
        Workload w = new Workload(1 + r.nextInt(3), r.nextInt(3), r.nextBoolean(), r.nextBoolean(), m, r.nextLong());
        DurabilityMode durability = r.nextBoolean() ? DurabilityMode.FSYNC : DurabilityMode.PAGE_CACHE;
        List<ProcFault> faults = new ArrayList<>();
        for (int i = 1 + r.nextInt(MAX_FAULTS); i > 0; i--) {
            faults.add(new ProcFault(mix.get(r.nextInt(mix.size())), r.nextInt(MAX_START_MS + 1),
                    MIN_FAULT_MS + r.nextInt(MAX_FAULT_MS - MIN_FAULT_MS + 1), r.nextInt(3), r.nextInt(2), 20 + r.nextInt(481)));
        }
        return new ProcSchedule(seed, w, durability, faults);
    }

    @Override
    public String toString() {
        StringBuilder b = new StringBuilder("ProcSchedule[seed ").append(seed).append("; ").append(workload)
                .append("; shard durability ").append(durability);
        for (ProcFault f : faults) {
            b.append("\n  ").append(f);
        }
        return b.append("\n  at ").append(healAtMs()).append(" ms: heal (every rule lifted, every process back); clients stop at ")
                .append(workloadMs()).append(" ms]").toString();
    }
}
