package dev.segstore.chaos;

import java.io.IOException;
import java.io.Reader;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.LongSupplier;

/**
 * A recorder of operations as Jepsen keeps them: each operation is an {@code invoke} event followed by exactly
 * one completion ({@code ok}, {@code fail} or {@code info}, see {@link Outcome}), and nemesis events mark when
 * faults start and stop. Operation ids are given out in invocation order, from 1.
 *
 * <p>Thread contract: every method may be called from any thread. Recording methods take the history's
 * monitor and read the clock under it, so the event list is in time order and the times of one operation are
 * consistent with every other's. A completion for an id that is not in flight (never invoked, or completed
 * already) is a harness bug and throws {@link IllegalStateException}.
 *
 * <p>A history is saved as JSON lines ({@link #write(Path)}, format in {@code docs/chaos-history.md}) and
 * read back with {@link #read(Path)}, so the {@link Checker} and the {@link Report} can run on a saved file.
 */
public final class History {
    private final LongSupplier clock;
    private final List<Event> events = new ArrayList<>();
    /** Operations invoked and not yet completed. */
    private final Map<Long, Event.Invoke> inFlight = new HashMap<>();
    private final Set<Long> invoked = new HashSet<>();
    private long nextId = 1;

    /** A history timed by {@link System#nanoTime()}. */
    public History() {
        this(System::nanoTime);
    }

    /** A history timed by {@code clock} (monotonic nanoseconds; tests pass a manual clock). */
    public History(LongSupplier clock) {
        this.clock = clock;
    }

    /**
     * A history of these events, checked as if recorded one by one (each completion follows its invocation,
     * once). The events need not be in time order.
     */
    public static History of(List<? extends Event> events) {
        History h = new History();
        synchronized (h) {
            for (Event e : events) {
                h.append(e);
            }
        }
        return h;
    }

    /** Records the invocation of an operation by {@code process} and returns its id. */
    public synchronized long invoke(String process, Invocation invocation) {
        long id = nextId;
        append(new Event.Invoke(id, process, clock.getAsLong(), invocation));
        return id;
    }

    /** Operation {@code id} completed with {@code result}. */
    public synchronized void ok(long id, Result result) {
        append(new Event.Complete(id, clock.getAsLong(), Outcome.OK, result, null));
    }

    /** Operation {@code id} definitely did not take effect; {@code error} is the error code name. */
    public synchronized void fail(long id, String error) {
        append(new Event.Complete(id, clock.getAsLong(), Outcome.FAIL, null, error));
    }

    /** The outcome of operation {@code id} is unknown ({@code TIMEOUT}, {@code OUTCOME_UNKNOWN}, ...). */
    public synchronized void info(long id, String error) {
        append(new Event.Complete(id, clock.getAsLong(), Outcome.INFO, null, error));
    }

    /** A fault of {@code kind} starts. */
    public synchronized void nemesisStart(String kind, String description) {
        append(new Event.Nemesis(clock.getAsLong(), Event.Phase.START, kind, description));
    }

    /** The oldest running fault of {@code kind} stops. */
    public synchronized void nemesisStop(String kind, String description) {
        append(new Event.Nemesis(clock.getAsLong(), Event.Phase.STOP, kind, description));
    }

    /**
     * Where {@code shard}'s segments were sealed, read from the store after the run ({@link Event.SealPoints}):
     * the checker then holds a short read that is not final only to records before the first seal point past
     * what it returned.
     */
    public synchronized void sealPoints(String shard, List<Long> offsets) {
        append(new Event.SealPoints(clock.getAsLong(), shard, offsets));
    }

    /** Per shard, the seal points recorded ({@link #sealPoints(String, List)}), in offset order. */
    public Map<String, java.util.NavigableSet<Long>> sealPoints() {
        Map<String, java.util.NavigableSet<Long>> out = new HashMap<>();
        for (Event e : events()) {
            if (e instanceof Event.SealPoints p) {
                out.computeIfAbsent(p.shard(), k -> new java.util.TreeSet<>()).addAll(p.offsets());
            }
        }
        return out;
    }

    /** A copy of the events so far, in the order recorded. */
    public synchronized List<Event> events() {
        return List.copyOf(events);
    }

    /**
     * The operations, in invocation order, each paired with its completion; one still in flight is
     * {@link Outcome#INFO} with error {@link Op#PENDING} and completion time {@link Op#NEVER}.
     */
    public List<Op> ops() {
        List<Event> snapshot = events();
        Map<Long, Event.Complete> completions = new HashMap<>();
        for (Event e : snapshot) {
            if (e instanceof Event.Complete c) {
                completions.put(c.id(), c);
            }
        }
        List<Op> ops = new ArrayList<>();
        for (Event e : snapshot) {
            if (e instanceof Event.Invoke i) {
                Event.Complete c = completions.get(i.id());
                ops.add(c == null
                        ? new Op(i.id(), i.process(), i.invocation(), i.nanos(), Outcome.INFO, null, Op.PENDING, Op.NEVER)
                        : new Op(i.id(), i.process(), i.invocation(), i.nanos(), c.outcome(), c.result(), c.error(), c.nanos()));
            }
        }
        return ops;
    }

    /** The fault intervals: each start paired with the next stop of its kind, in order of start. */
    public List<Fault> faults() {
        List<Event> snapshot = events();
        long end = snapshot.stream().mapToLong(Event::nanos).max().orElse(0);
        Map<String, ArrayDeque<Event.Nemesis>> running = new LinkedHashMap<>();
        List<Fault> faults = new ArrayList<>();
        for (Event e : snapshot) {
            if (e instanceof Event.Nemesis n) {
                ArrayDeque<Event.Nemesis> started = running.computeIfAbsent(n.kind(), k -> new ArrayDeque<>());
                if (n.phase() == Event.Phase.START) {
                    started.add(n);
                } else if (!started.isEmpty()) {
                    Event.Nemesis s = started.poll();
                    faults.add(new Fault(s.kind(), describe(s, n), s.nanos(), n.nanos()));
                }
            }
        }
        running.values().forEach(q -> q.forEach(s -> faults.add(new Fault(s.kind(), s.description(), s.nanos(), end))));
        faults.sort(Comparator.comparingLong(Fault::startNanos));
        return faults;
    }

    private static String describe(Event.Nemesis start, Event.Nemesis stop) {
        return stop.description().isEmpty() ? start.description() : start.description() + "; " + stop.description();
    }

    /** Writes the history as JSON lines (one event a line, in recorded order). */
    public void write(Path file) throws IOException {
        try (Writer w = Files.newBufferedWriter(file, StandardCharsets.UTF_8)) {
            write(w);
        }
    }

    public void write(Writer out) throws IOException {
        for (Event e : events()) {
            out.write(HistoryJson.encode(e));
            out.write('\n');
        }
    }

    /** Reads a history written by {@link #write(Path)}. */
    public static History read(Path file) throws IOException {
        try (Reader r = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            return read(r);
        }
    }

    public static History read(Reader in) throws IOException {
        return of(HistoryJson.decodeLines(in));
    }

    private void append(Event e) {
        if (e instanceof Event.Invoke i) {
            if (!invoked.add(i.id())) {
                throw new IllegalStateException("operation " + i.id() + " invoked twice");
            }
            inFlight.put(i.id(), i);
            nextId = Math.max(nextId, i.id() + 1);
        } else if (e instanceof Event.Complete c) {
            Event.Invoke i = inFlight.remove(c.id());
            if (i == null) {
                throw new IllegalStateException("completion of operation " + c.id() + ", which is not in flight");
            }
            checkResult(i, c);
        }
        events.add(e);
    }

    private static void checkResult(Event.Invoke i, Event.Complete c) {
        if (c.outcome() == Outcome.OK && i.invocation().type().isWrite()
                && c.result().offsets().size() != i.invocation().records().size()) {
            throw new IllegalArgumentException("op " + i.id() + " wrote " + i.invocation().records().size()
                    + " records but was answered " + c.result().offsets().size() + " offsets");
        }
    }
}
