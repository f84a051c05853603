package dev.segstore.chaos;

import java.util.Locale;

/** The words anomaly explanations use for operations and records. */
final class Describe {
    private Describe() {
    }

    /** For example {@code op 12 (WRITE by w3, ok)}. */
    static String op(Op op) {
        String outcome = op.outcome() == Outcome.OK ? "ok" : op.outcome().name().toLowerCase(Locale.ROOT)
                + " " + op.error();
        return "op " + op.id() + " (" + (op.invocation().finalRead() ? "final READ" : op.type().name())
                + " by " + op.process() + ", " + outcome + ")";
    }

    /** For example {@code s0@17}. */
    static String at(String shard, long offset) {
        return shard + "@" + offset;
    }
}
