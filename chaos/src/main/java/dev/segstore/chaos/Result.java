package dev.segstore.chaos;

import java.util.Arrays;
import java.util.List;
import java.util.OptionalLong;

/**
 * What an operation that completed {@link Outcome#OK ok} answered. Fields its type does not answer are empty.
 *
 * @param offsets     WRITE, BATCH_WRITE: the offset of each record, in the order of the invocation's records
 * @param records     READ, READ_TAG, READ_KEY: the records returned, in the order returned
 * @param count       DELETE_OFFSET: 1 if a live record was deleted, 0 if it was already deleted;
 *                    DELETE_KEY: the number of live records deleted
 * @param groupOffset READ_GROUP_OFFSET: the committed offset, or empty if the group has none
 */
public record Result(List<Long> offsets, List<ReadRecord> records, long count, OptionalLong groupOffset) {
    private static final Result NONE = new Result(List.of(), List.of(), 0, OptionalLong.empty());

    public Result {
        offsets = List.copyOf(offsets);
        records = List.copyOf(records);
    }

    public static Result offsets(List<Long> offsets) {
        return new Result(offsets, List.of(), 0, OptionalLong.empty());
    }

    public static Result offsets(long... offsets) {
        return offsets(Arrays.stream(offsets).boxed().toList());
    }

    public static Result records(List<ReadRecord> records) {
        return new Result(List.of(), records, 0, OptionalLong.empty());
    }

    public static Result deleted(boolean deleted) {
        return count(deleted ? 1 : 0);
    }

    public static Result count(long count) {
        return new Result(List.of(), List.of(), count, OptionalLong.empty());
    }

    public static Result groupOffset(OptionalLong offset) {
        return new Result(List.of(), List.of(), 0, offset);
    }

    /** The answer of an operation that returns nothing (COMMIT_OFFSET). */
    public static Result none() {
        return NONE;
    }
}
