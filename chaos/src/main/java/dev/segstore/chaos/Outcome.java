package dev.segstore.chaos;

/** How an operation ended, as Jepsen calls it. */
public enum Outcome {
    /** Completed; its result is known. */
    OK,
    /** Definitely not applied (the error code says so, e.g. {@code NOT_LEADER}, {@code INVALID_ARGUMENT}). */
    FAIL,
    /**
     * Unknown: it may or may not have been applied, and if it was, at any time after its invocation, also
     * after the completion was recorded ({@code TIMEOUT}, {@code OUTCOME_UNKNOWN}, connection lost). An
     * operation without a completion when the history ends counts as info.
     */
    INFO
}
