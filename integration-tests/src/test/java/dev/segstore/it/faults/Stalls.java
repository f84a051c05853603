package dev.segstore.it.faults;

import dev.segstore.chaos.Fault;
import dev.segstore.chaos.History;
import dev.segstore.chaos.Op;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * How long writes stalled after each fault began: from the fault's start to the first write acknowledged after
 * it. A fault that does not stop writes costs a fraction of one write's latency; one that does costs the time to
 * notice it, fail over, and for clients to find the new route, or until the heal.
 */
final class Stalls {
    /** One fault's stall; {@code ms} is -1 when no write was acknowledged after it began. */
    record Stall(String kind, long ms) {
    }

    private Stalls() {
    }

    static List<Stall> of(History history) {
        long[] acks = history.ops().stream().filter(o -> o.isOk() && o.type().isWrite()).mapToLong(Op::completeNanos).sorted().toArray();
        List<Stall> stalls = new ArrayList<>();
        for (Fault f : history.faults()) {
            int i = Arrays.binarySearch(acks, f.startNanos());
            int next = i >= 0 ? i : -i - 1;
            stalls.add(new Stall(f.kind(), next == acks.length ? -1 : TimeUnit.NANOSECONDS.toMillis(acks[next] - f.startNanos())));
        }
        return stalls;
    }
}
