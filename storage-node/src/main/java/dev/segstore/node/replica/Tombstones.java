package dev.segstore.node.replica;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The deletes of one segment replica: a list of deleted offsets in the order the leader took them (the
 * tombstone sequence), replicated leader→follower beside the log, and the set they make for reads.
 *
 * <p>Why beside the log and not in it: a delete must not take an offset (offsets stay dense and a write after a
 * delete gets the next one, on every engine), and a delete may hit a sealed segment, which takes no appends.
 * The sequence gives the replication its cursor: a follower fetches tombstones from its end as it fetches
 * batches from its log end, and the leader acknowledges a delete once every ISR member's tombstone end covers
 * it (the tombstone watermark), under the same min-ISR rule as writes. docs/architecture.md has the protocol.
 *
 * <p>A follower overwrites its list from the leader's (it may hold a deposed leader's unacknowledged deletes at
 * the same positions), and after each new epoch it re-reads the leader's whole list from 0: an acknowledged
 * delete sits at the same position on every ISR member, so overwriting never loses one.
 *
 * <p>Not thread-safe: the partition calls it under its monitor.
 */
public final class Tombstones {

    /** Where the list is kept (the node's RocksDB); {@link #NONE} keeps it in memory only (tests). */
    public interface Store {
        Store NONE = new Store() {
            @Override
            public void save(long fromSeq, List<Long> offsets, long end) {
            }

            @Override
            public List<Long> load() {
                return List.of();
            }
        };

        /** Persists positions {@code [fromSeq, fromSeq + offsets.size())} and drops every position from {@code end}. */
        void save(long fromSeq, List<Long> offsets, long end);

        /** The persisted list, position 0 first. */
        List<Long> load();
    }

    /** A run of the leader's list for a follower: positions from {@code base}, and the leader's end. */
    public record Slice(long base, List<Long> offsets, long end, long watermark) {
        public static final Slice EMPTY = new Slice(0, List.of(), 0, 0);
    }

    private final Store store;
    private final List<Long> bySeq;
    private final java.util.NavigableSet<Long> deleted = new java.util.TreeSet<>();

    public Tombstones(Store store) {
        this.store = store;
        this.bySeq = new ArrayList<>(store.load());
        deleted.addAll(bySeq);
    }

    /** The next position: how many tombstones this replica holds. */
    public long end() {
        return bySeq.size();
    }

    public boolean isDeleted(long offset) {
        return deleted.contains(offset);
    }

    /** The deleted offsets in [{@code from}, {@code to}), in order. */
    public List<Long> deletedIn(long from, long to) {
        return from >= to ? List.of() : List.copyOf(deleted.subSet(from, true, to, false));
    }

    /** Leader: appends new deletes (the caller leaves out offsets already deleted); returns the new end. */
    public long append(List<Long> offsets) {
        long from = bySeq.size();
        bySeq.addAll(offsets);
        deleted.addAll(offsets);
        store.save(from, offsets, bySeq.size());
        return bySeq.size();
    }

    /** Leader: up to {@code max} tombstones from {@code fromSeq}. */
    public List<Long> read(long fromSeq, int max) {
        if (fromSeq >= bySeq.size()) {
            return List.of();
        }
        int from = (int) fromSeq;
        return List.copyOf(bySeq.subList(from, (int) Math.min(bySeq.size(), fromSeq + max)));
    }

    /**
     * Follower: takes the leader's tombstones at positions from {@code base} (which is at most our end), and
     * when they reach the leader's end, drops whatever we hold beyond it.
     */
    public void overwrite(long base, List<Long> offsets, long leaderEnd) {
        if (base > bySeq.size()) {
            throw new IllegalArgumentException("tombstones from " + base + " would leave a gap after " + bySeq.size());
        }
        boolean changed = false;
        boolean replaced = false; // a position changed its offset: the set is rebuilt, not extended
        for (int i = 0; i < offsets.size(); i++) {
            int pos = (int) base + i;
            long o = offsets.get(i);
            if (pos < bySeq.size()) {
                if (bySeq.get(pos) != o) {
                    bySeq.set(pos, o);
                    changed = replaced = true;
                }
            } else {
                bySeq.add(o);
                deleted.add(o);
                changed = true;
            }
        }
        long reached = base + offsets.size();
        if (reached >= leaderEnd && bySeq.size() > leaderEnd) {
            bySeq.subList((int) leaderEnd, bySeq.size()).clear();
            changed = replaced = true;
        }
        if (replaced) {
            deleted.clear();
            deleted.addAll(bySeq);
        }
        if (changed) {
            store.save(base, offsets, bySeq.size());
        }
    }
}
