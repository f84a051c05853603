package dev.segstore.it.faults;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.Appender;
import ch.qos.logback.core.AppenderBase;
import org.slf4j.LoggerFactory;

import java.time.Instant;
import java.time.ZoneId;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;

/**
 * The cluster's log lines kept in memory for the run in progress instead of printed: faults make nodes warn by
 * design, and a fault run's console would be thousands of lines. A run that fails saves its lines beside its
 * history ({@link RunFiles}). While capturing, the console appender is detached from the root logger and our
 * own loggers ({@code dev.segstore}) log at INFO (roles, epochs, truncations, seals: what explains a failed run);
 * {@link #stop()} puts both back.
 */
final class CapturedLog extends AppenderBase<ILoggingEvent> {
    private static final int MAX_LINES = 20_000;
    private static final DateTimeFormatter TIME = DateTimeFormatter.ofPattern("HH:mm:ss.SSS").withZone(ZoneId.systemDefault());
    private final List<String> lines = new ArrayList<>();
    private int dropped;
    private final List<Appender<ILoggingEvent>> detached = new ArrayList<>();
    private Level ourLevel;

    /** Starts capturing every log line of this JVM. */
    static CapturedLog capture() {
        LoggerContext context = (LoggerContext) LoggerFactory.getILoggerFactory();
        Logger root = context.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
        CapturedLog log = new CapturedLog();
        log.setContext(context);
        log.setName("fault-run-capture");
        log.start();
        root.iteratorForAppenders().forEachRemaining(log.detached::add);
        log.detached.forEach(root::detachAppender);
        root.addAppender(log);
        Logger ours = context.getLogger("dev.segstore");
        log.ourLevel = ours.getLevel();
        ours.setLevel(Level.INFO);
        return log;
    }

    @Override
    protected synchronized void append(ILoggingEvent e) {
        if (lines.size() >= MAX_LINES) {
            dropped++;
            return;
        }
        StringBuilder b = new StringBuilder().append(TIME.format(Instant.ofEpochMilli(e.getTimeStamp()))).append(' ')
                .append(e.getLevel()).append(" [").append(e.getThreadName()).append("] ").append(e.getLoggerName())
                .append(" - ").append(e.getFormattedMessage());
        if (e.getThrowableProxy() != null) {
            b.append(" (").append(e.getThrowableProxy().getClassName()).append(": ").append(e.getThrowableProxy().getMessage()).append(')');
        }
        lines.add(b.toString());
    }

    /** The lines logged since the last drain (and how many were dropped over the limit), and forgets them. */
    synchronized List<String> drain() {
        List<String> out = new ArrayList<>(lines);
        if (dropped > 0) {
            out.add("... " + dropped + " more lines dropped");
        }
        lines.clear();
        dropped = 0;
        return out;
    }

    @Override
    public void stop() {
        LoggerContext context = (LoggerContext) getContext();
        Logger root = context.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
        root.detachAppender(this);
        detached.forEach(root::addAppender);
        detached.clear();
        context.getLogger("dev.segstore").setLevel(ourLevel);
        super.stop();
    }
}
