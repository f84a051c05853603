package dev.segstore.it.faults;

import dev.segstore.protocol.meta.DurabilityMode;
import dev.segstore.protocol.meta.Segment;
import dev.segstore.protocol.meta.ShardRoute;

import java.util.HashSet;
import java.util.Set;

/**
 * Keeps a run's crashes that lose the page cache within what a page-cache shard promises: no acknowledged write is
 * lost while a member of the ISR that acknowledged it keeps its page cache. Losing the page cache of every such
 * member loses unforced acknowledged writes by design (as Kafka without fsync does), and a fault run must not
 * count that as an anomaly. So in a page-cache shard a crash of node N is played only while the open segment's
 * ISR (the route just read from the meta-service) holds another node that has not lost its page cache in this run.
 * A member of that ISR holds every write acknowledged so far: it holds what was acknowledged while it was a
 * member, and it joined only once caught up. (Sealed segments were forced by their leader at the seal.) Process
 * kills, pauses and partitions keep the page cache. Fsync shards acknowledge forced bytes only: every crash plays.
 */
final class PageCacheCrashes {
    private final boolean pageCache;
    private final Set<Integer> lost = new HashSet<>();

    PageCacheCrashes(DurabilityMode durability) {
        this.pageCache = durability == DurabilityMode.PAGE_CACHE;
    }

    /** Why crashing {@code node} now would lose what the shard promises to keep, or null if it may crash. */
    String refusal(ShardRoute route, int node) {
        if (!pageCache) {
            return null;
        }
        if (route == null || route.getSegmentsCount() == 0) {
            return "the shard's route is unknown";
        }
        Segment open = route.getSegments(route.getSegmentsCount() - 1);
        for (int member : open.getIsrList()) {
            if (member != node && !lost.contains(member)) {
                return null;
            }
        }
        return "no other member of the ISR " + open.getIsrList() + " keeps its page cache (lost this run: " + lost
                + "): a page-cache shard loses unforced acknowledged writes then by design";
    }

    /** Node {@code node} lost its page cache. */
    void crashed(int node) {
        lost.add(node);
    }
}
