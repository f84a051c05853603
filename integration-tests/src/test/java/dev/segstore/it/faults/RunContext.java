package dev.segstore.it.faults;

import dev.segstore.chaos.History;

import java.util.concurrent.atomic.AtomicLong;

/**
 * What the client processes of one run share: the shard, the history they record into, when to stop, and the
 * highest offset acknowledged so far (readers and the deleter aim near it).
 */
final class RunContext {
    static final String[] KEYS = {"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9", "k10", "k11"};
    static final String[] TAGS = {"t0", "t1", "t2", "t3"};
    static final String[] GROUPS = {"g0", "g1"};

    final String runId;
    final String shard;
    final History history;
    final Workload workload;
    private volatile long stopAtNanos;
    final AtomicLong highestAcked = new AtomicLong(-1);

    RunContext(String runId, String shard, History history, Workload workload, long stopAtNanos) {
        this.runId = runId;
        this.shard = shard;
        this.history = history;
        this.workload = workload;
        this.stopAtNanos = stopAtNanos;
    }

    boolean running() {
        return System.nanoTime() < stopAtNanos;
    }

    /** The clients stop no earlier than {@code nanos} (the heal ran late: they still get their time after it). */
    void stopNoEarlierThan(long nanos) {
        stopAtNanos = Math.max(stopAtNanos, nanos);
    }

    void acked(long offset) {
        highestAcked.accumulateAndGet(offset, Math::max);
    }
}
