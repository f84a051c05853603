package dev.segstore.node.replica;

import java.util.Collection;
import java.util.List;

/**
 * A leader's ISR change proposed to the controller and not settled yet: in flight, or its answer was lost (the
 * controller may have committed it), or refused as stale. While one is pending, the high watermark counts the
 * union of the committed ISR and the proposed one (the "maximal ISR" of Kafka's KIP-497) and no other change is
 * proposed: the leader narrows only after it learns the committed state, from an answer or from the controller's
 * assignment. Not thread-safe: the {@link Partition} uses it under its monitor, as it does {@link SegmentRoll}.
 */
final class PendingIsrChange {
    enum Phase {
        NONE,
        /** A proposal is out. */
        IN_FLIGHT,
        /** The answer was lost (the outcome is unknown): the next ISR tick proposes the same change again. */
        RETRY,
        /** The controller refused it as stale (FENCED_EPOCH): wait for its committed state in an assignment. */
        AWAIT_CONTROLLER
    }

    private List<Integer> proposed;
    private Phase phase = Phase.NONE;
    /** Counts proposals and settlements, so a late answer to an older proposal changes nothing. */
    private long seq;

    /** A new proposal of {@code isr} goes out; returns its number, which its answer brings back. */
    long start(List<Integer> isr) {
        proposed = List.copyOf(isr);
        phase = Phase.IN_FLIGHT;
        return ++seq;
    }

    /** Nothing is pending any more (the committed state is known, or the proposal was refused for good). */
    void settle() {
        proposed = null;
        phase = Phase.NONE;
        seq++;
    }

    void retryLater() {
        phase = Phase.RETRY;
    }

    void awaitController() {
        phase = Phase.AWAIT_CONTROLLER;
    }

    boolean isSettled() {
        return phase == Phase.NONE;
    }

    boolean needsRetry() {
        return phase == Phase.RETRY;
    }

    /** Whether {@code proposal} is the latest one and nothing settled it since. */
    boolean isCurrent(long proposal) {
        return proposal == seq;
    }

    /** The proposed ISR, or null when settled. */
    List<Integer> proposed() {
        return proposed;
    }

    /** Whether a pending proposal adds members to {@code isr} (an expansion, not settled yet). */
    boolean adds(Collection<Integer> isr) {
        return proposed != null && !isr.containsAll(proposed);
    }

    /** Adds the proposed members to {@code counted} (the ISR the high watermark is computed over). */
    void addProposedTo(Collection<Integer> counted) {
        if (proposed != null) {
            counted.addAll(proposed);
        }
    }
}
