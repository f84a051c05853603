package dev.segstore.meta.state;

import java.util.Locale;

/**
 * TEST ONLY: a safety bug the meta-service once had, put back on purpose so that a fault test can show it catches
 * it (integration-tests {@code InjectedBugIsFoundTest}; docs/architecture.md, "Fault schedules"). The meta-service's
 * side of the storage node's {@code dev.segstore.node.replica.InjectedBug}, read from the same system property
 * {@value #PROPERTY}, unset by default, which turns nothing on; read at each use. Never set it on a running
 * cluster.
 */
public enum InjectedMetaBug {
    /** No bug: the default. */
    NONE,
    /**
     * A storage node that registers again while the meta-service still takes it for alive (a restart the session
     * did not notice, maybe an unclean one that lost unsynced bytes in page-cache mode) keeps its leaderships and
     * ISR places in the epochs it led before the restart, as the code did before commit 5e1e021: its followers,
     * ahead of its shortened log, are answered OFFSET_OUT_OF_RANGE, truncate to its end for that same epoch and
     * lose what was acknowledged (the design's rule "a leader that lost unsynced bytes does not lead in its old
     * epoch", safety property 1).
     */
    KEEP_EPOCH_AFTER_UNCLEAN_RESTART;

    /** The system property that turns a bug on, by its name in lower case with dashes. */
    public static final String PROPERTY = "segstore.testonly.bug";

    /** Whether {@code bug} is on now. */
    static boolean on(InjectedMetaBug bug) {
        String value = System.getProperty(PROPERTY);
        return value != null && bug.name().equals(value.trim().toUpperCase(Locale.ROOT).replace('-', '_'));
    }
}
