package dev.segstore.node.replica;

import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;

/**
 * Idempotent appends: per producer id, the last few batches appended (sequence range and offsets), so that a
 * retried batch is answered with its original offsets instead of being appended twice. Both leaders and
 * followers keep it up to date from the batches they append, so a new leader recognises retries at once.
 *
 * <p>Not thread-safe: owned by its partition's owner thread.
 */
public final class ProducerStateTable {
    /** How many recent batches per producer are remembered (a producer with more in flight gets errors). */
    public static final int BATCHES_PER_PRODUCER = 5;

    /** Offsets of an appended batch. */
    public record Appended(int baseSequence, int lastSequence, long baseOffset, long lastOffset) {
    }

    /** What to do with an incoming batch. */
    public sealed interface Check permits New, Duplicate, OutOfOrder {
    }

    public record New() implements Check {
    }

    public record Duplicate(Appended original) implements Check {
    }

    public record OutOfOrder(String reason) implements Check {
    }

    private final Map<Long, ArrayDeque<Appended>> producers = new HashMap<>();

    public Check check(long producerId, int baseSequence, int count) {
        if (producerId < 0) {
            return new New();
        }
        ArrayDeque<Appended> recent = producers.get(producerId);
        if (recent == null || recent.isEmpty()) {
            return new New();
        }
        for (Appended a : recent) {
            if (a.baseSequence() == baseSequence) {
                if (a.lastSequence() - a.baseSequence() + 1 != count) {
                    return new OutOfOrder("producer " + producerId + " sequence " + baseSequence + " was a batch of "
                            + (a.lastSequence() - a.baseSequence() + 1) + " records, the retry has " + count);
                }
                return new Duplicate(a);
            }
        }
        int last = recent.peekLast().lastSequence();
        if (baseSequence <= last) {
            return new OutOfOrder("producer " + producerId + " sequence " + baseSequence + " is at or below the last "
                    + "appended " + last + " and too old to be recognised as a retry");
        }
        return new New();
    }

    public void record(long producerId, int baseSequence, int count, long baseOffset) {
        if (producerId < 0) {
            return;
        }
        ArrayDeque<Appended> recent = producers.computeIfAbsent(producerId, k -> new ArrayDeque<>());
        recent.addLast(new Appended(baseSequence, baseSequence + count - 1, baseOffset, baseOffset + count - 1));
        while (recent.size() > BATCHES_PER_PRODUCER) {
            recent.removeFirst();
        }
    }

    /** Forgets batches at or after {@code offset} (the log was truncated there). */
    public void truncateTo(long offset) {
        producers.values().forEach(q -> q.removeIf(a -> a.lastOffset() >= offset));
        producers.values().removeIf(ArrayDeque::isEmpty);
    }

    public int producerCount() {
        return producers.size();
    }
}
