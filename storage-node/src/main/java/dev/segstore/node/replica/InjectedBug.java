package dev.segstore.node.replica;

import java.util.Locale;

/**
 * TEST ONLY: a safety bug this replica layer once had or could have, put back on purpose so that a fault test can
 * show it catches it (integration-tests {@code FaultScheduleBugTest}; docs/architecture.md, "Fault schedules").
 * The one place the switch is read: the system property {@value #PROPERTY}, unset by default, which turns nothing
 * on. It is read at each use (not once), so a test can set it for a while and clear it. Never set it on a
 * running cluster. The meta-service reads the same property for its own bugs ({@code InjectedMetaBug}).
 */
public enum InjectedBug {
    /** No bug: the default. */
    NONE,
    /**
     * A follower skips leader-epoch truncation: it takes itself for reconciled with its new leader at once and
     * fetches from its own log end, keeping records a deposed leader appended and the new leader never had (the
     * design's rule "a replica that comes back truncates to the end of the last epoch it shares with the
     * leader", safety property 5).
     */
    SKIP_EPOCH_TRUNCATION,
    /**
     * A leader forgets an ISR change whose answer failed or was lost: it drops the pending change at once and
     * computes the high watermark over its old ISR only, instead of counting the union of the old and proposed
     * sets until it learns the committed state (the design's rule "the leader's ISR is never narrower than the
     * controller's", KIP-497's maximal ISR; safety property 1). An expansion the controller committed is then
     * forgotten: the leader acknowledges writes the new member does not hold, and the controller may elect it.
     */
    FORGET_ISR_EXPANSION;

    /** The system property that turns a bug on, by its name in lower case with dashes: {@code skip-epoch-truncation}. */
    public static final String PROPERTY = "segstore.testonly.bug";

    /** Whether {@code bug} is on now. */
    static boolean on(InjectedBug bug) {
        String value = System.getProperty(PROPERTY);
        return value != null && bug.name().equals(value.trim().toUpperCase(Locale.ROOT).replace('-', '_'));
    }
}
