package dev.segstore.meta.state;

import dev.segstore.protocol.meta.Segment;
import dev.segstore.protocol.meta.SegmentId;
import dev.segstore.protocol.meta.SegmentStatus;
import dev.segstore.protocol.meta.Shard;

import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.LongUnaryOperator;
import java.util.function.UnaryOperator;

/**
 * The segments of every shard, by shard name, each shard's oldest first, and the health counts that must always match
 * them: the only code that changes a shard's list. Part of {@link MetaState}'s state: it has no lock of its own and is
 * reached only from inside MetaState's synchronized methods. The lists {@link #get} returns cannot be changed through,
 * and none of its collections leaves MetaState. The sorted map's order is the order of {@link #forEachLiveSegment}, of a
 * node's assignments and of a snapshot's segments.
 */
final class SegmentTable {
    private final TreeMap<String, List<Segment>> segments = new TreeMap<>();
    /**
     * The health counts of the segments, kept up to date at every change ({@link #create}, {@link #replace},
     * {@link #add}, {@link #forEachLiveSegment}, {@link #remove}, {@link #dropOldest}, {@link #restore}), so a metrics scrape reads them in O(1) instead of scanning every segment
     * under the monitor the state machine applies commands under.
     */
    private SegmentCounts segmentCounts = new SegmentCounts(0, 0, 0);

    /** Open and sealed segments; those with an ISR short of their replica set; those without a leader. */
    record SegmentCounts(int live, int underReplicated, int leaderless) {
        static SegmentCounts of(Segment s) {
            if (!isLive(s)) {
                return new SegmentCounts(0, 0, 0);
            }
            return new SegmentCounts(1, s.getIsrCount() < s.getReplicasCount() ? 1 : 0, s.getLeader() < 0 ? 1 : 0);
        }

        static SegmentCounts of(Collection<List<Segment>> lists) {
            SegmentCounts c = new SegmentCounts(0, 0, 0);
            for (List<Segment> l : lists) {
                for (Segment s : l) {
                    c = c.plus(of(s), 1);
                }
            }
            return c;
        }

        SegmentCounts plus(SegmentCounts o, int sign) {
            return new SegmentCounts(live + sign * o.live, underReplicated + sign * o.underReplicated, leaderless + sign * o.leaderless);
        }
    }

    /** Shard {@code shard}'s segments, oldest first, as a view that cannot be changed through; null if it has none. */
    List<Segment> get(String shard) {
        List<Segment> list = segments.get(shard);
        return list == null ? null : Collections.unmodifiableList(list);
    }

    /** Starts shard {@code shard}'s list with its first segment. */
    void create(String shard, Segment first) {
        List<Segment> list = new ArrayList<>();
        add(list, first);
        segments.put(shard, list);
    }

    /** Puts {@code s} in place of segment {@code i} (an index, not a sequence) of shard {@code shard}'s list. */
    void replace(String shard, int i, Segment s) {
        replace(segments.get(shard), i, s);
    }

    /** Appends {@code s} to shard {@code shard}'s list. */
    void add(String shard, Segment s) {
        add(segments.get(shard), s);
    }

    /** Removes shard {@code shard}'s list and returns it (no longer in the table: the caller's), or null if it has none. */
    List<Segment> remove(String shard) {
        List<Segment> removed = segments.remove(shard);
        uncount(removed);
        return removed;
    }

    /** Drops the {@code n} oldest segments of shard {@code shard}. */
    void dropOldest(String shard, int n) {
        List<Segment> list = segments.get(shard);
        uncount(list.subList(0, n));
        list.subList(0, n).clear();
    }

    private void replace(List<Segment> list, int i, Segment s) {
        Segment old = list.set(i, s);
        segmentCounts = segmentCounts.plus(SegmentCounts.of(old), -1).plus(SegmentCounts.of(s), 1);
    }

    private void add(List<Segment> list, Segment s) {
        list.add(s);
        segmentCounts = segmentCounts.plus(SegmentCounts.of(s), 1);
    }

    private void uncount(List<Segment> removed) {
        if (removed != null) {
            for (Segment s : removed) {
                segmentCounts = segmentCounts.plus(SegmentCounts.of(s), -1);
            }
        }
    }

    /** Replaces every open or sealed segment {@code s} by {@code change.apply(s)} (which returns {@code s} to keep it). */
    void forEachLiveSegment(UnaryOperator<Segment> change) {
        for (List<Segment> list : segments.values()) {
            for (int i = 0; i < list.size(); i++) {
                Segment s = list.get(i);
                if (isLive(s)) {
                    replace(list, i, change.apply(s));
                }
            }
        }
    }

    /**
     * Where segment {@code sequence} is in a shard's list, or -1: the list holds consecutive sequences, from the
     * oldest one retention left (never empty: the open segment is never dropped).
     */
    static int indexOf(List<Segment> list, long sequence) {
        long i = sequence - list.get(0).getSequence();
        return i < 0 || i >= list.size() ? -1 : (int) i;
    }

    int leaderOf(String shard, long sequence) {
        List<Segment> list = segments.get(shard);
        int i = list == null ? -1 : indexOf(list, sequence);
        return i < 0 ? -1 : list.get(i).getLeader();
    }

    /**
     * How many of a shard's oldest segments retention may drop: sealed ones, each sealed {@code retention_ms} or
     * longer before the time {@code nowFor} gives for its seal time (a segment sealed before seal times were kept
     * has none, and stays), never the open one. 0 when the shard keeps everything.
     */
    static int expirable(Shard shard, List<Segment> list, LongUnaryOperator nowFor) {
        long retention = shard.getSettings().getRetentionMs();
        if (retention <= 0) {
            return 0;
        }
        int n = 0;
        while (n < list.size() - 1) {
            Segment s = list.get(n);
            if (s.getStatus() != SegmentStatus.SEALED || s.getSealedAtMs() <= 0
                    || nowFor.applyAsLong(s.getSealedAtMs()) - s.getSealedAtMs() < retention) {
                break;
            }
            n++;
        }
        return n;
    }

    /** Whether {@code s} is open or sealed (not one a delete or retention is done with). */
    static boolean isLive(Segment s) {
        return s.getStatus() == SegmentStatus.OPEN || s.getStatus() == SegmentStatus.SEALED;
    }

    static SegmentId segmentId(Segment s) {
        return SegmentId.newBuilder().setShardId(s.getShardId()).setSequence(s.getSequence()).build();
    }

    static List<Integer> without(List<Integer> list, int n) {
        return list.stream().filter(x -> x != n).toList();
    }

    /** Whether node {@code n}'s replica of {@code s} is lost or unreadable (Segment.offline_replicas in meta.proto). */
    static boolean offline(Segment s, int n) {
        return s.getOfflineReplicasList().contains(n);
    }

    /** {@code isr} without the members whose replica of {@code s} is offline: those that may lead. */
    static List<Integer> online(Segment s, List<Integer> isr) {
        return s.getOfflineReplicasCount() == 0 ? isr : isr.stream().filter(n -> !offline(s, n)).toList();
    }

    /** Sets {@code b}'s ISR to {@code s}'s without node {@code id}, one version on. */
    static void leaveIsr(Segment.Builder b, Segment s, int id) {
        b.clearIsr().addAllIsr(s.getIsrList().stream().filter(n -> n != id).toList()).setIsrVersion(s.getIsrVersion() + 1);
    }

    // ---- reads ------------------------------------------------------------------------------------------------

    /**
     * Whether each of {@code ids} that is a live segment listing node {@code nodeId} as a replica marks it offline
     * already.
     */
    boolean offlineAlready(int nodeId, List<SegmentId> ids) {
        Set<SegmentId> wanted = new HashSet<>(ids);
        for (List<Segment> list : segments.values()) {
            for (Segment s : list) {
                if (isLive(s) && s.getReplicasList().contains(nodeId) && wanted.contains(segmentId(s)) && !offline(s, nodeId)) {
                    return false;
                }
            }
        }
        return true;
    }

    /** Replicas on {@code nodeId} that are not in their segment's ISR, of open or sealed segments not closing. */
    List<Segment> reassignable(int nodeId) {
        List<Segment> out = new ArrayList<>();
        for (List<Segment> list : segments.values()) {
            for (Segment s : list) {
                if (isLive(s) && s.getReplicasList().contains(nodeId) && !s.getIsrList().contains(nodeId) && s.getClosingVersion() == 0) {
                    out.add(s);
                }
            }
        }
        return out;
    }

    /** Open segments whose new leaders wait out a deposed leader's lease ({@code deposed_leader_may_serve}). */
    List<Segment> deposedOpenSegments() {
        List<Segment> out = new ArrayList<>();
        for (List<Segment> list : segments.values()) {
            Segment last = list.isEmpty() ? null : list.get(list.size() - 1);
            if (last != null && last.getStatus() == SegmentStatus.OPEN && last.getDeposedLeaderMayServe()) {
                out.add(last);
            }
        }
        return out;
    }

    int segmentCount() {
        int n = 0;
        for (List<Segment> l : segments.values()) {
            n += l.size();
        }
        return n;
    }

    /** Replicas of open and sealed segments held by each node that holds any. */
    Map<Integer, Integer> replicaCounts() {
        Map<Integer, Integer> counts = new TreeMap<>();
        for (List<Segment> list : segments.values()) {
            for (Segment s : list) {
                if (isLive(s)) {
                    s.getReplicasList().forEach(n -> counts.merge(n, 1, Integer::sum));
                }
            }
        }
        return counts;
    }

    /** All segments led by a node, as shard/sequence. */
    Set<String> segmentsLedBy(int nodeId) {
        Set<String> out = new HashSet<>();
        segments.forEach((shard, list) -> list.forEach(s -> {
            if (s.getLeader() == nodeId) {
                out.add(shard + "/" + s.getSequence());
            }
        }));
        return out;
    }

    /** Open and sealed segments node {@code nodeId} leads (the first count) and is a replica of (the second). */
    int[] leadershipsAndReplicas(int nodeId) {
        int[] held = new int[2];
        for (List<Segment> list : segments.values()) {
            for (Segment s : list) {
                if (isLive(s)) {
                    held[0] += s.getLeader() == nodeId ? 1 : 0;
                    held[1] += s.getReplicasList().contains(nodeId) ? 1 : 0;
                }
            }
        }
        return held;
    }

    /** Each shard's segments that list node {@code nodeId} as a replica, by shard; a shard with none is left out. */
    TreeMap<String, List<Segment>> replicasOn(int nodeId) {
        TreeMap<String, List<Segment>> out = new TreeMap<>();
        for (Map.Entry<String, List<Segment>> e : segments.entrySet()) {
            for (Segment s : e.getValue()) {
                if (s.getReplicasList().contains(nodeId)) {
                    out.computeIfAbsent(e.getKey(), k -> new ArrayList<>()).add(s);
                }
            }
        }
        return out;
    }

    /** The newest segment of each shard (its open one), by shard. */
    List<Segment> newestOfEachShard() {
        List<Segment> out = new ArrayList<>();
        for (List<Segment> list : segments.values()) {
            out.add(list.get(list.size() - 1));
        }
        return out;
    }

    /** The newest of {@code t} and every segment's seal time. */
    long newestSealedAtMs(long t) {
        for (List<Segment> list : segments.values()) {
            for (Segment seg : list) {
                t = Math.max(t, seg.getSealedAtMs());
            }
        }
        return t;
    }

    /** The health counts kept at each change. */
    SegmentCounts counts() {
        return segmentCounts;
    }

    /** The health counts counted again from every segment: what {@link #counts} must always equal. */
    SegmentCounts recounted() {
        return SegmentCounts.of(segments.values());
    }

    /** Every segment, by shard and then sequence: the order a snapshot lists them in. */
    List<Segment> all() {
        List<Segment> out = new ArrayList<>();
        segments.values().forEach(out::addAll);
        return out;
    }

    /**
     * Replaces every list by {@code all}'s segments (a snapshot's, in its order), and counts them again. Throws
     * nothing: {@link MetaState#restore} checked the snapshot before.
     */
    void restore(List<Segment> all) {
        segments.clear();
        segmentCounts = new SegmentCounts(0, 0, 0);
        all.forEach(seg -> segments.computeIfAbsent(seg.getShard(), k -> new ArrayList<>()).add(seg));
        segmentCounts = SegmentCounts.of(segments.values());
    }
}
