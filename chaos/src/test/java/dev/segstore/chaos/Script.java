package dev.segstore.chaos;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * A hand-built history with explicit times, for tests: each call adds one operation (its invocation and its
 * completion) or one fault, and returns the operation's id. Ids are given in call order.
 */
final class Script {
    private final List<Event> events = new ArrayList<>();
    private long nextId = 1;

    long ok(String process, long invoke, long complete, Invocation invocation, Result result) {
        return add(process, invoke, invocation, new Event.Complete(nextId, complete, Outcome.OK, result, null));
    }

    long fail(String process, long invoke, long complete, Invocation invocation, String error) {
        return add(process, invoke, invocation, new Event.Complete(nextId, complete, Outcome.FAIL, null, error));
    }

    long info(String process, long invoke, long complete, Invocation invocation, String error) {
        return add(process, invoke, invocation, new Event.Complete(nextId, complete, Outcome.INFO, null, error));
    }

    /** An acknowledged single write of {@code payload} (no key, no tags) at {@code offset}. */
    long write(String process, long invoke, long complete, String shard, String payload, long offset) {
        return ok(process, invoke, complete, Invocation.write(shard, WrittenRecord.of(payload)), Result.offsets(offset));
    }

    /** An acknowledged read by offset that returned {@code records}. */
    long read(String process, long invoke, long complete, String shard, long from, int limit, ReadRecord... records) {
        return ok(process, invoke, complete, Invocation.read(shard, from, limit), Result.records(List.of(records)));
    }

    /** An acknowledged final read (one page of the state after heal). */
    long finalRead(long invoke, long complete, String shard, long from, int limit, ReadRecord... records) {
        return ok("final", invoke, complete, Invocation.finalRead(shard, from, limit), Result.records(List.of(records)));
    }

    void fault(String kind, long start, long stop, String description) {
        events.add(new Event.Nemesis(start, Event.Phase.START, kind, description));
        events.add(new Event.Nemesis(stop, Event.Phase.STOP, kind, ""));
    }

    /** The shard's seal points, as a harness records them after the run. */
    void sealPoints(long time, String shard, Long... offsets) {
        events.add(new Event.SealPoints(time, shard, List.of(offsets)));
    }

    History history() {
        List<Event> sorted = new ArrayList<>(events);
        sorted.sort(Comparator.comparingLong(Event::nanos));
        return History.of(sorted);
    }

    List<Anomaly> check() {
        return Checker.check(history());
    }

    static ReadRecord at(long offset, String payload) {
        return ReadRecord.of(offset, payload);
    }

    private long add(String process, long invoke, Invocation invocation, Event.Complete completion) {
        if (completion.nanos() <= invoke) {
            throw new IllegalArgumentException("completion must follow invocation");
        }
        events.add(new Event.Invoke(nextId, process, invoke, invocation));
        events.add(completion);
        return nextId++;
    }
}
