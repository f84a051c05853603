package dev.segstore.chaos;

import java.util.Objects;

/**
 * One line of a history: an operation's invocation, its completion, or a fault's start or stop. Times are
 * monotonic nanoseconds ({@link System#nanoTime()} of the recording JVM): only differences mean anything.
 */
public sealed interface Event permits Event.Invoke, Event.Complete, Event.Nemesis {

    /** When the event happened. */
    long nanos();

    /** A client (process) starts operation {@code id}. */
    record Invoke(long id, String process, long nanos, Invocation invocation) implements Event {
        public Invoke {
            Objects.requireNonNull(process, "process");
            Objects.requireNonNull(invocation, "invocation");
        }
    }

    /**
     * Operation {@code id} ended. {@link Outcome#OK} carries a result and no error; {@link Outcome#FAIL} and
     * {@link Outcome#INFO} carry an error (an error code name, or a short reason such as "connection lost")
     * and no result.
     */
    record Complete(long id, long nanos, Outcome outcome, Result result, String error) implements Event {
        public Complete {
            Objects.requireNonNull(outcome, "outcome");
            if ((outcome == Outcome.OK) != (result != null) || (outcome == Outcome.OK) == (error != null)) {
                throw new IllegalArgumentException(outcome + " needs " + (outcome == Outcome.OK
                        ? "a result and no error" : "an error and no result") + " (op " + id + ")");
            }
        }
    }

    /** The nemesis starts or stops a fault of some kind ("partition", "kill", "pause", ...). */
    record Nemesis(long nanos, Phase phase, String kind, String description) implements Event {
        public Nemesis {
            Objects.requireNonNull(phase, "phase");
            Objects.requireNonNull(kind, "kind");
            Objects.requireNonNull(description, "description");
        }
    }

    /** Whether a nemesis event begins or ends a fault. */
    enum Phase { START, STOP }
}
