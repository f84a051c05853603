package dev.segstore.chaos;

import java.util.List;
import java.util.Objects;

/**
 * Something a history shows that no correct store can do. {@code opIds} are the operations that show it (the
 * first is the one to look at first); the explanation says what they show and why nothing explains it.
 */
public record Anomaly(Kind kind, String explanation, List<Long> opIds) {
    public Anomaly {
        Objects.requireNonNull(kind, "kind");
        Objects.requireNonNull(explanation, "explanation");
        opIds = List.copyOf(opIds);
    }

    /** What went wrong. The rules are in {@link Checker} and {@code docs/architecture.md}. */
    public enum Kind {
        /** An acknowledged record is missing from the final read, and no delete can have removed it. */
        LOST_WRITE,
        /** Reads return a record at one offset, and only there, but its write was acknowledged at another. */
        WRONG_OFFSET,
        /** Reads return one payload at two offsets. */
        DUPLICATE,
        /** One offset holds two payloads, one of them acknowledged there. */
        OFFSET_REUSED,
        /** A read returned a payload no write could have stored there. */
        PHANTOM,
        /** A record a read returned is not returned by a later read that covers it, and no delete explains it. */
        UNSTABLE_READ,
        /** A process's sequential acknowledged writes to a shard got offsets that do not increase. */
        WRITER_ORDER,
        /** A read started after an acknowledged delete returns the deleted record. */
        DELETE_UNDONE,
        /** A group offset read returns a value that no commit explains. */
        GROUP_OFFSET_REGRESSED
    }
}
