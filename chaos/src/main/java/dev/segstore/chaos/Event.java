package dev.segstore.chaos;

import java.util.List;
import java.util.Objects;

/**
 * One line of a history: an operation's invocation, its completion, a fault's start or stop, or where a shard's
 * segments were sealed. Times are monotonic nanoseconds ({@link System#nanoTime()} of the recording JVM): only
 * differences mean anything.
 */
public sealed interface Event permits Event.Invoke, Event.Complete, Event.Nemesis, Event.SealPoints {

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

    /**
     * The offsets at which {@code shard}'s segments were sealed (each the end of one segment and the start of the
     * next), as the harness read them from the store after the run: where a reader's route older than a roll may
     * see "the end" of the shard for a while (the adapter contract's roll window; see {@link Checker}).
     */
    record SealPoints(long nanos, String shard, List<Long> offsets) implements Event {
        public SealPoints {
            Objects.requireNonNull(shard, "shard");
            offsets = List.copyOf(offsets);
        }
    }

    /** Whether a nemesis event begins or ends a fault. */
    enum Phase { START, STOP }
}
