package dev.segstore.it.faults;

import dev.segstore.chaos.History;
import dev.segstore.it.raft.RaftLinkFaults;
import dev.segstore.node.replica.FaultyFiles;
import dev.segstore.node.server.StorageNode;
import dev.segstore.protocol.meta.Segment;
import dev.segstore.protocol.meta.ShardRoute;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * Plays a schedule's fault actions against the cluster at their times, on the calling thread, and records each
 * as a nemesis interval in the history (kind {@link FaultKind#nemesis}, the nodes it hit in the description).
 *
 * <p>A fault's storage node is picked when the fault starts, by its role in the shard's open segment (the
 * route read from the meta-service, or the last one read if it does not answer within a second). A fault that
 * cannot apply is skipped and logged, not recorded: a kill or disk fault of a node already down or on a failed
 * disk (one such fault per node at a time; the kinds it shares a node with would not add anything), a crash
 * losing the page cache that would leave a page-cache shard no ISR member with its page cache ({@link PageCacheCrashes}), a meta
 * fault (leader kill, Raft links cut) while a meta node is down or has Raft links cut (two out would lose the Raft
 * quorum, and a node start waits for the quorum) or while no leader is elected. Actions run one after the other; one that takes a while (a node start
 * waits for its registration) delays the ones after it, and the history has the times they really ran at.
 */
final class Nemesis {
    private final FaultCluster cluster;
    private final History history;
    private final String shard;
    private final long startNanos;
    /** The schedule's seed: what a crash keeps of the unforced writes is drawn from it and the fault's place. */
    private final long seed;
    private final List<String> log = new ArrayList<>();
    private ShardRoute lastRoute;
    private final PageCacheCrashes crashes;
    private final DiskLosses diskLosses = new DiskLosses();

    /** What one started fault hit, to undo it at its end; {@code rule} owns its network rule, if any. */
    private record Applied(FaultAction action, int node, int meta, Object rule) {
    }

    /** What a step does: a fault's start, its middle (an isolated node's fence), its end. */
    private enum Phase { STOP, START, FENCE }

    private record Step(int atMs, Phase phase, FaultAction action, int order) {
    }

    Nemesis(FaultCluster cluster, History history, String shard, long startNanos, long seed,
            dev.segstore.protocol.meta.DurabilityMode durability) {
        this.seed = seed;
        this.crashes = new PageCacheCrashes(durability);
        this.cluster = cluster;
        this.history = history;
        this.shard = shard;
        this.startNanos = startNanos;
    }

    /** What the nemesis did, one line a step, with its time since the workload started. */
    List<String> log() {
        return log;
    }

    /** Plays {@code faults}: each starts at its time and ends at its end; returns once the last has ended. */
    void play(List<FaultAction> faults) throws Exception {
        List<Step> steps = new ArrayList<>();
        for (int i = 0; i < faults.size(); i++) {
            FaultAction f = faults.get(i);
            steps.add(new Step(f.atMs(), Phase.START, f, i));
            if (f.kind() == FaultKind.ISOLATE_NODE) {
                steps.add(new Step(f.atMs() + f.fenceAfterMs(), Phase.FENCE, f, i));
            }
            steps.add(new Step(f.endMs(), Phase.STOP, f, i));
        }
        steps.sort(Comparator.comparingInt(Step::atMs).thenComparing(Step::phase)); // at one time, ends first
        Applied[] applied = new Applied[faults.size()];
        for (Step step : steps) {
            waitUntil(step.atMs());
            if (step.phase() == Phase.START) {
                applied[step.order()] = start(step.action(), step.order());
            } else if (step.phase() == Phase.FENCE) {
                if (applied[step.order()] != null) {
                    fence(applied[step.order()]);
                }
            } else if (applied[step.order()] != null) {
                try {
                    stop(applied[step.order()]);
                } catch (Exception | AssertionError e) {
                    note("failed to end " + step.action() + ": " + e + " (the heal tries again)");
                }
            }
        }
    }

    /** Parks until {@code ms} after the workload started (at once if that has passed). */
    void waitUntil(int ms) {
        long at = startNanos + TimeUnit.MILLISECONDS.toNanos(ms);
        for (long left = at - System.nanoTime(); left > 0; left = at - System.nanoTime()) {
            LockSupport.parkNanos(left);
        }
    }

    private void note(String what) {
        log.add(String.format("%5d ms  %s", TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - startNanos), what));
    }

    /** The storage nodes of the shard's open segment: its leader first, then its other replicas in order. */
    private List<Integer> members() {
        try {
            lastRoute = cluster.meta.route(shard).get(1, TimeUnit.SECONDS);
        } catch (Exception e) {
            note("route not read (" + e.getClass().getSimpleName() + "); using the last one read");
        }
        List<Integer> members = new ArrayList<>();
        if (lastRoute == null || lastRoute.getSegmentsCount() == 0) {
            return List.of(1, 2, 3);
        }
        Segment open = lastRoute.getSegments(lastRoute.getSegmentsCount() - 1);
        if (open.getLeader() > 0) {
            members.add(open.getLeader());
        }
        open.getReplicasList().stream().filter(r -> !members.contains(r)).forEach(members::add);
        for (int id = 1; members.size() < 3 && id <= 3; id++) {
            if (!members.contains(id)) {
                members.add(id);
            }
        }
        return members;
    }

    private Applied start(FaultAction f, int order) throws Exception {
        if (f.kind() == FaultKind.KILL_META_LEADER) {
            return startMetaKill(f);
        }
        if (f.kind() == FaultKind.META_PARTITION || f.kind() == FaultKind.META_ONE_WAY) {
            return startMetaLinkCut(f);
        }
        List<Integer> members = members();
        int node = members.get(f.role());
        String who = "storage node " + node + " (" + FaultAction.ROLES[f.role()] + " of segment "
                + (lastRoute == null ? "?" : lastRoute.getSegmentsCount() - 1) + ")";
        if (f.kind().takesNode() && (!cluster.nodeUp(node) || cluster.diskFailed(node))) {
            note("skipped: " + f + ": " + who + " is down or on a failed disk already");
            return null;
        }
        Object rule = new Object();
        String description;
        switch (f.kind()) {
            case PARTITION -> {
                cluster.network.isolate(rule, node);
                description = "isolate " + who + " from its peers";
            }
            case ISOLATE_NODE -> {
                cluster.network.isolate(rule, node);
                description = "isolate " + who + " from its peers; the controller fences it after " + f.fenceAfterMs() + " ms";
            }
            case META_REQUESTS_LOST, META_ANSWERS_LOST -> {
                boolean answers = f.kind() == FaultKind.META_ANSWERS_LOST;
                cluster.network.cutMeta(rule, node, answers ? StorageNode.MetaDrop.ANSWER : StorageNode.MetaDrop.REQUEST);
                description = answers ? "lose the meta-service's answers to " + who : "lose the calls of " + who + " to the meta-service";
            }
            case ONE_WAY -> {
                int peer = members.get(f.peerRole());
                cluster.network.oneWay(rule, node, peer);
                description = "drop the calls of " + who + " to storage node " + peer + " (its calls to " + who + " go through)";
            }
            case SLOW_LINK -> {
                int peer = members.get(f.peerRole());
                cluster.network.slow(rule, node, peer, f.delayMs());
                description = "delay calls between " + who + " and storage node " + peer + " by " + f.delayMs() + " ms";
            }
            case KILL_NODE -> {
                cluster.stopNode(node);
                description = "stop " + who;
            }
            case CRASH_LOSE_UNSYNCED -> {
                String refusal = crashes.refusal(lastRoute, node);
                if (refusal != null) {
                    note("skipped: " + f + ": " + refusal);
                    return null;
                }
                crashes.crashed(node);
                java.util.Random random = new java.util.Random(seed ^ (0x9E3779B97F4A7C15L * (order + 1)));
                FaultyFiles.CrashReport lost = cluster.crashNode(node, random);
                description = "crash " + who + " losing its page cache: " + lost;
            }
            case DISK_WRITES, DISK_FSYNCS -> {
                cluster.failDisk(node, f.kind() == FaultKind.DISK_FSYNCS);
                description = (f.kind() == FaultKind.DISK_FSYNCS ? "fail the fsyncs of " : "fail the segment writes of ") + who;
            }
            case DISK_OPENS -> {
                cluster.failDiskOpens(node);
                description = "fail the segment file opens of " + who;
            }
            case LOSE_DISK -> {
                ShardRoute now;
                try {
                    now = cluster.meta.route(shard).get(1, TimeUnit.SECONDS);
                } catch (Exception e) {
                    note("skipped: " + f + ": the shard's route could not be read now (" + e.getClass().getSimpleName() + ")");
                    return null;
                }
                String refusal = diskLosses.refusal(now, node);
                if (refusal != null) {
                    note("skipped: " + f + ": " + refusal);
                    return null;
                }
                diskLosses.lost(node);
                crashes.crashed(node); // its page cache went with the machine
                cluster.loseDisk(node);
                cluster.startNode(node); // at once: registered again before its session ends, still counted in the ISRs
                description = "replace the disk of " + who + " by an empty one and start it again at once";
            }
            case SLOW_DISK -> {
                cluster.slowDisk(node, f.delayMs());
                description = "slow each fsync of " + who + " by " + f.delayMs() + " ms";
            }
            default -> throw new IllegalStateException(f.kind().toString());
        }
        history.nemesisStart(f.kind().nemesis, description);
        note("start: " + description);
        return new Applied(f, node, -1, rule);
    }

    /**
     * The meta leader for a meta fault, or -1 (the fault logged as skipped) if a meta node is down or cut off
     * already (one meta fault at a time: two would lose the Raft quorum) or none is elected within a second.
     */
    private int metaLeaderForFault(FaultAction f) {
        if (cluster.anyMetaStopped() || !RaftLinkFaults.cutLinks().isEmpty()) {
            note("skipped: " + f + ": a meta node is down or has Raft links cut already");
            return -1;
        }
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(1);
        int leader;
        while ((leader = cluster.metaLeader()) < 0 && System.nanoTime() < deadline) {
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(5));
        }
        if (leader < 0) {
            note("skipped: " + f + ": no meta leader elected");
        }
        return leader;
    }

    private Applied startMetaLinkCut(FaultAction f) {
        int leader = metaLeaderForFault(f);
        if (leader < 0) {
            return null;
        }
        MetaLinks cut = MetaLinks.of(f.kind() == FaultKind.META_PARTITION, f.role(), f.peer(), leader, cluster::metaRaftAddress);
        Object rule = new Object();
        RaftLinkFaults.cut(rule, cut.links());
        history.nemesisStart(f.kind().nemesis, cut.description());
        note("start: " + cut.description());
        return new Applied(f, -1, cut.meta(), rule);
    }

    private Applied startMetaKill(FaultAction f) {
        int leader = metaLeaderForFault(f);
        if (leader < 0) {
            return null;
        }
        cluster.stopMeta(leader);
        String description = "stop meta node " + leader + " (the Raft leader)";
        history.nemesisStart(f.kind().nemesis, description);
        note("start: " + description);
        return new Applied(f, -1, leader, null);
    }

    /** The controller fences an isolated node (a session it stopped hearing from). */
    private void fence(Applied a) {
        boolean fenced = cluster.fence(a.node());
        note(fenced ? "fence: storage node " + a.node() + " fenced by the controller" : "fence of storage node " + a.node() + " failed");
    }

    private void stop(Applied a) throws Exception {
        String description;
        switch (a.action().kind()) {
            case PARTITION, SLOW_LINK, ONE_WAY, ISOLATE_NODE, META_REQUESTS_LOST, META_ANSWERS_LOST -> {
                cluster.network.lift(a.rule());
                description = "network rule lifted";
            }
            case LOSE_DISK -> description = "the disk replacement is over (the node started at once)";
            case KILL_NODE, CRASH_LOSE_UNSYNCED -> {
                cluster.startNode(a.node());
                description = "started storage node " + a.node();
            }
            case SLOW_DISK -> {
                cluster.healSlowDisk(a.node());
                description = "fsyncs of storage node " + a.node() + " at full speed again";
            }
            case DISK_WRITES, DISK_FSYNCS, DISK_OPENS -> {
                cluster.replaceDisk(a.node());
                description = "restarted storage node " + a.node() + " on a healthy disk";
            }
            case KILL_META_LEADER -> {
                cluster.startMeta(a.meta());
                description = "started meta node " + a.meta();
            }
            case META_PARTITION, META_ONE_WAY -> {
                RaftLinkFaults.lift(a.rule());
                description = "Raft links of meta node " + a.meta() + " healed";
            }
            default -> throw new IllegalStateException(a.action().kind().toString());
        }
        history.nemesisStop(a.action().kind().nemesis, description);
        note("stop: " + a.action().kind().nemesis + ": " + description);
    }
}
