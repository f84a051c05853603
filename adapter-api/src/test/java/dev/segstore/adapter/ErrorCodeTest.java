package dev.segstore.adapter;

import org.junit.jupiter.api.Test;

import java.util.Map;

import static java.util.Map.entry;
import static org.junit.jupiter.api.Assertions.assertEquals;

class ErrorCodeTest {
    /** The numbers are on the wire and in logs: this table may grow but never change. */
    private static final Map<ErrorCode, Integer> RELEASED = Map.ofEntries(
            entry(ErrorCode.UNKNOWN, -1), entry(ErrorCode.SHARD_NOT_FOUND, 1), entry(ErrorCode.SHARD_EXISTS, 2),
            entry(ErrorCode.INVALID_ARGUMENT, 3), entry(ErrorCode.RECORD_TOO_LARGE, 4),
            entry(ErrorCode.OFFSET_OUT_OF_RANGE, 5), entry(ErrorCode.NOT_LEADER, 6), entry(ErrorCode.FENCED_EPOCH, 7),
            entry(ErrorCode.NOT_ENOUGH_REPLICAS, 8), entry(ErrorCode.TIMEOUT, 9), entry(ErrorCode.UNAVAILABLE, 10),
            entry(ErrorCode.OVERLOADED, 11), entry(ErrorCode.CORRUPT_DATA, 12), entry(ErrorCode.STORAGE_ERROR, 13),
            entry(ErrorCode.CLOSED, 14), entry(ErrorCode.UNKNOWN_STORAGE_TYPE, 15), entry(ErrorCode.INTERNAL, 16),
            entry(ErrorCode.OUTCOME_UNKNOWN, 17));

    @Test
    void releasedNumbersNeverChange() {
        assertEquals(RELEASED.size(), ErrorCode.values().length, "a new code needs a row in RELEASED");
        RELEASED.forEach((code, number) -> {
            assertEquals(number, code.code(), code.name());
            assertEquals(code, ErrorCode.fromCode(number));
        });
    }

    @Test
    void anUnknownNumberDecodesAsUnknown() {
        assertEquals(ErrorCode.UNKNOWN, ErrorCode.fromCode(999));
        assertEquals(ErrorCode.UNKNOWN, ErrorCode.fromCode(0), "0 means no error on the wire, not a code");
    }

    @Test
    void onlyTransientConditionsAreRetriable() {
        for (ErrorCode c : ErrorCode.values()) {
            boolean expected = switch (c) {
                case NOT_LEADER, FENCED_EPOCH, NOT_ENOUGH_REPLICAS, TIMEOUT, UNAVAILABLE, OVERLOADED -> true;
                default -> false;
            };
            assertEquals(expected, c.retriable(), c.name());
        }
    }
}
