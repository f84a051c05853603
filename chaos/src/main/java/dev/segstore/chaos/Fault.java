package dev.segstore.chaos;

/**
 * A fault interval, from a nemesis start to the next stop of the same kind (or to the end of the history if it
 * was never stopped, then {@code stopNanos} is the last event's time).
 */
public record Fault(String kind, String description, long startNanos, long stopNanos) {
}
