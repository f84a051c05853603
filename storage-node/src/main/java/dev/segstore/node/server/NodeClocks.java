package dev.segstore.node.server;

import java.util.function.LongSupplier;

/**
 * A storage node's two clocks, in milliseconds (a seam: tests drive both, and make the wall clock jump).
 *
 * @param wallMs      wall-clock time: for what is about dates (the segment log's file roll by age)
 * @param monotonicMs a clock that only moves forward, at the rate of real time (System.nanoTime based), with an
 *                    arbitrary origin: for every duration a replica decides on (how long a follower has lagged,
 *                    how old the open segment is), which a wall clock stepped by NTP or an operator must not move
 */
public record NodeClocks(LongSupplier wallMs, LongSupplier monotonicMs) {
    public static final NodeClocks SYSTEM = new NodeClocks(System::currentTimeMillis, () -> System.nanoTime() / 1_000_000);
}
