package dev.segstore.chaos;

import java.util.List;
import java.util.Objects;

/**
 * What an operation asked for: its type and arguments. Build one with the factory of its type; fields a type
 * does not use are empty (null, an empty list, 0 or -1).
 *
 * <table>
 *   <caption>fields by type</caption>
 *   <tr><th>type</th><th>fields</th></tr>
 *   <tr><td>WRITE, BATCH_WRITE</td><td>shard, records (one for WRITE)</td></tr>
 *   <tr><td>READ</td><td>shard, offset (the first offset asked for), limit, finalRead</td></tr>
 *   <tr><td>READ_TAG</td><td>shard, tag, offset, limit</td></tr>
 *   <tr><td>READ_KEY, DELETE_KEY</td><td>shard, key</td></tr>
 *   <tr><td>DELETE_OFFSET</td><td>shard, offset</td></tr>
 *   <tr><td>COMMIT_OFFSET</td><td>group, shard, offset (the value committed)</td></tr>
 *   <tr><td>READ_GROUP_OFFSET</td><td>group, shard</td></tr>
 * </table>
 *
 * <p>A read marked final is one page of the full read of a shard the harness makes after the faults have
 * healed and the cluster is quiet; the checker reads the final state of the store from these.
 */
public record Invocation(OpType type, String shard, List<WrittenRecord> records, long offset, int limit,
                         String key, String tag, String group, boolean finalRead) {
    public Invocation {
        Objects.requireNonNull(type, "type");
        Objects.requireNonNull(shard, "shard");
        records = List.copyOf(records);
        if (type.isWrite() && records.isEmpty()) {
            throw new IllegalArgumentException(type + " needs at least one record");
        }
        if (finalRead && type != OpType.READ) {
            throw new IllegalArgumentException("only a READ can be final, not " + type);
        }
    }

    public static Invocation write(String shard, WrittenRecord record) {
        return new Invocation(OpType.WRITE, shard, List.of(record), -1, 0, null, null, null, false);
    }

    public static Invocation batchWrite(String shard, List<WrittenRecord> records) {
        return new Invocation(OpType.BATCH_WRITE, shard, records, -1, 0, null, null, null, false);
    }

    public static Invocation read(String shard, long from, int limit) {
        return new Invocation(OpType.READ, shard, List.of(), from, limit, null, null, null, false);
    }

    /** One page of the full read of {@code shard} after heal (see the class comment). */
    public static Invocation finalRead(String shard, long from, int limit) {
        return new Invocation(OpType.READ, shard, List.of(), from, limit, null, null, null, true);
    }

    public static Invocation readKey(String shard, String key) {
        return new Invocation(OpType.READ_KEY, shard, List.of(), -1, 0, Objects.requireNonNull(key), null, null, false);
    }

    public static Invocation readTag(String shard, String tag, long from, int limit) {
        return new Invocation(OpType.READ_TAG, shard, List.of(), from, limit, null, Objects.requireNonNull(tag), null, false);
    }

    public static Invocation deleteOffset(String shard, long offset) {
        return new Invocation(OpType.DELETE_OFFSET, shard, List.of(), offset, 0, null, null, null, false);
    }

    public static Invocation deleteKey(String shard, String key) {
        return new Invocation(OpType.DELETE_KEY, shard, List.of(), -1, 0, Objects.requireNonNull(key), null, null, false);
    }

    public static Invocation commitOffset(String group, String shard, long offset) {
        return new Invocation(OpType.COMMIT_OFFSET, shard, List.of(), offset, 0, null, null, Objects.requireNonNull(group), false);
    }

    public static Invocation readGroupOffset(String group, String shard) {
        return new Invocation(OpType.READ_GROUP_OFFSET, shard, List.of(), -1, 0, null, null, Objects.requireNonNull(group), false);
    }
}
