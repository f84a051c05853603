package dev.segstore.it.faults;

import dev.segstore.chaos.History;
import dev.segstore.protocol.meta.Segment;
import dev.segstore.protocol.meta.ShardRoute;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * Plays a {@link ProcSchedule}'s faults against a {@link ProcCluster} at their times, on the calling thread, and
 * records each as a nemesis interval in the history, as {@link Nemesis} does for the in-JVM cluster. A storage
 * node is picked when its fault starts, by its role in the shard's open segment (the route the harness reads);
 * the meta leader is the one the meta-service names. A fault that cannot apply is skipped and logged: a process
 * fault of a process already stopped, paused or killed; a meta process fault or a Raft link cut while another
 * meta process is down, paused or has Raft links cut (two out would lose the Raft quorum); a meta fault while no
 * leader answers. Network rules of faults that
 * overlap on one link replace each other, and the first to end lifts the link.
 */
final class ProcNemesis {
    private final ProcCluster cluster;
    private final History history;
    private final String shard;
    private final long startNanos;
    private final List<String> log = new ArrayList<>();
    private ShardRoute lastRoute;
    /** Storage nodes a process or disk fault holds now: at most one such fault per node at a time. */
    private final java.util.Set<String> held = new java.util.HashSet<>();
    private final PageCacheCrashes crashes;

    /** What a started fault hit: a process ("node-2", "meta-0") and, for links, the other end. */
    private record Applied(ProcFault fault, String target, List<String[]> links) {
    }

    private record Step(int atMs, boolean start, ProcFault fault, int order) {
    }

    ProcNemesis(ProcCluster cluster, History history, String shard, long startNanos, dev.segstore.protocol.meta.DurabilityMode durability) {
        this.crashes = new PageCacheCrashes(durability);
        this.cluster = cluster;
        this.history = history;
        this.shard = shard;
        this.startNanos = startNanos;
    }

    List<String> log() {
        return log;
    }

    void play(List<ProcFault> faults) throws Exception {
        List<Step> steps = new ArrayList<>();
        for (int i = 0; i < faults.size(); i++) {
            steps.add(new Step(faults.get(i).atMs(), true, faults.get(i), i));
            steps.add(new Step(faults.get(i).endMs(), false, faults.get(i), i));
        }
        steps.sort(Comparator.comparingInt(Step::atMs).thenComparing(Step::start)); // at one time, ends first
        Applied[] applied = new Applied[faults.size()];
        for (Step step : steps) {
            waitUntil(step.atMs());
            if (step.start()) {
                try {
                    applied[step.order()] = start(step.fault());
                } catch (Exception | AssertionError e) {
                    note("failed to start " + step.fault() + ": " + e + " (the heal undoes what it did)");
                }
            } else if (applied[step.order()] != null) {
                try {
                    stop(applied[step.order()]);
                } catch (Exception | AssertionError e) {
                    note("failed to end " + step.fault() + ": " + e + " (the heal tries again)");
                }
            }
        }
    }

    void waitUntil(int ms) {
        long at = startNanos + TimeUnit.MILLISECONDS.toNanos(ms);
        for (long left = at - System.nanoTime(); left > 0; left = at - System.nanoTime()) {
            LockSupport.parkNanos(left);
        }
    }

    void note(String what) {
        log.add(String.format("%5d ms  %s", TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - startNanos), what));
    }

    private List<Integer> members() {
        try {
            lastRoute = cluster.harness.route(shard).get(2, TimeUnit.SECONDS);
        } catch (Exception e) {
            note("route not read (" + e.getClass().getSimpleName() + "); using the last one read");
        }
        List<Integer> members = new ArrayList<>();
        if (lastRoute != null && lastRoute.getSegmentsCount() > 0) {
            Segment open = lastRoute.getSegments(lastRoute.getSegmentsCount() - 1);
            if (open.getLeader() > 0) {
                members.add(open.getLeader());
            }
            open.getReplicasList().stream().filter(r -> !members.contains(r)).forEach(members::add);
        }
        for (int id = 1; members.size() < 3 && id <= 3; id++) {
            if (!members.contains(id)) {
                members.add(id);
            }
        }
        return members;
    }

    /** Whether a meta node is down, paused, (started again) not yet serving in the group, or has Raft links cut. */
    private boolean anyMetaDown() {
        if (!cluster.raftLinks().isEmpty()) {
            return true;
        }
        for (int i = 0; i < 3; i++) {
            String m = ProcCluster.metaName(i);
            if (!cluster.isUp(m) || cluster.isPaused(m) || !cluster.metaServes(i)) {
                return true;
            }
        }
        return false;
    }

    private Applied start(ProcFault f) throws Exception {
        ProcFaultKind k = f.kind();
        String target;
        String who;
        List<Integer> members = List.of();
        if (k.target == ProcFaultKind.Target.NODE) {
            members = members();
            int node = members.get(f.role());
            target = ProcCluster.nodeName(node);
            who = "storage node " + node + " (" + FaultAction.ROLES[f.role()] + " of segment "
                    + (lastRoute == null ? "?" : lastRoute.getSegmentsCount() - 1) + ")";
        } else {
            if ((k.takesProcess() || k.cutsRaft()) && anyMetaDown()) {
                note("skipped: " + f + ": a meta process is down, paused, not serving yet or has Raft links cut");
                return null;
            }
            int leader = cluster.metaLeader();
            if (leader < 0) {
                note("skipped: " + f + ": no meta leader answers");
                return null;
            }
            if (k.cutsRaft()) {
                MetaLinks cut = MetaLinks.of(k == ProcFaultKind.META_PARTITION, f.role(), f.peer(), leader, cluster::metaRaft);
                cluster.cutRaftLinks(cut.links());
                history.nemesisStart(k.nemesis, cut.description());
                note("start: " + cut.description());
                List<String[]> links = cut.links().stream().map(l -> new String[]{l.from(), l.to()}).toList();
                return new Applied(f, ProcCluster.metaName(cut.meta()), links);
            }
            int meta = k.target == ProcFaultKind.Target.META_LEADER ? leader : (leader + 1 + f.peer()) % 3;
            target = ProcCluster.metaName(meta);
            who = "meta node " + meta + (meta == leader ? " (the Raft leader)" : " (a follower)");
        }
        if (k.takesProcess() && (!cluster.isUp(target) || cluster.isPaused(target))) {
            note("skipped: " + f + ": " + who + " is down or paused already");
            return null;
        }
        if (k == ProcFaultKind.CRASH_LOSE_UNSYNCED) {
            int node = members.get(f.role());
            String refusal = crashes.refusal(lastRoute, node);
            if (refusal != null) {
                note("skipped: " + f + ": " + refusal);
                return null;
            }
        }
        boolean holds = k.target == ProcFaultKind.Target.NODE && (k.takesProcess() || k.takesDisk());
        if (holds) {
            if (held.contains(target)) {
                note("skipped: " + f + ": " + who + " has a process or disk fault already");
                return null;
            }
            held.add(target);
        }
        try {
            return apply(f, k, target, who, members);
        } catch (Exception | AssertionError e) {
            if (holds) {
                held.remove(target); // it did not start: the node is free for another fault
            }
            throw e;
        }
    }

    private Applied apply(ProcFault f, ProcFaultKind k, String target, String who, List<Integer> members) throws Exception {
        List<String[]> links = new ArrayList<>();
        String description;
        int nodeId = target.startsWith("node-") ? Integer.parseInt(target.substring(5)) : -1;
        switch (k) {
            case DISK_WRITES, DISK_FULL, DISK_FSYNCS, DISK_OPENS, SLOW_DISK -> {
                String mode = k.diskMode(f.delayMs());
                cluster.setDisk(nodeId, mode);
                description = "disk of " + who + ": " + mode;
            }
            case CRASH_LOSE_UNSYNCED -> {
                // Recorded before: clients see the node go while it crashes.
                long seed = (f.atMs() * 1_000_003L + f.forMs()) * 31 + f.role() ^ 0x9E3779B97F4A7C15L;
                crashes.crashed(nodeId);
                history.nemesisStart(k.nemesis, "crash " + who + " losing its page cache (seed " + seed + ")");
                note("start: crash " + who + " losing its page cache (seed " + seed + ")");
                note("  " + target + " " + cluster.crashLosingPageCache(nodeId, seed));
                return new Applied(f, target, links);
            }
            case KILL_NODE, KILL_META_LEADER, KILL_META_FOLLOWER -> {
                cluster.kill(target);
                description = "kill -9 " + who;
            }
            case TERM_NODE, TERM_META_LEADER -> {
                // Recorded before: the controlled shutdown is part of the fault, and clients see it.
                history.nemesisStart(k.nemesis, "SIGTERM " + who);
                note("start: SIGTERM " + who);
                cluster.terminate(target);
                note("  " + target + " ended");
                return new Applied(f, target, links);
            }
            case PAUSE_NODE, PAUSE_META_LEADER, PAUSE_META_FOLLOWER -> {
                cluster.pause(target);
                description = "SIGSTOP " + who;
            }
            case PARTITION_PEERS -> {
                for (int id = 1; id <= 3; id++) {
                    if (!ProcCluster.nodeName(id).equals(target)) {
                        links.add(new String[]{target, ProcCluster.nodeName(id)});
                    }
                }
                links.forEach(l -> cluster.network.partition(l[0], l[1]));
                description = "partition " + who + " from its peers";
            }
            case PARTITION_META -> {
                for (int i = 0; i < 3; i++) {
                    links.add(new String[]{target, ProcCluster.metaName(i)});
                }
                links.forEach(l -> cluster.network.partition(l[0], l[1]));
                description = "partition " + who + " from the meta-service";
            }
            case ISOLATE_NODE -> {
                for (String other : ProcCluster.allNames()) {
                    if (!other.equals(target)) {
                        links.add(new String[]{target, other});
                    }
                }
                links.add(new String[]{target, dev.segstore.it.proxy.ProxyNetwork.CLIENT});
                links.forEach(l -> cluster.network.partition(l[0], l[1]));
                description = "isolate " + who + " from peers, meta-service and clients";
            }
            case PARTITION_CLUSTER -> {
                for (String other : ProcCluster.allNames()) {
                    if (!other.equals(target)) {
                        links.add(new String[]{target, other});
                    }
                }
                links.forEach(l -> cluster.network.partition(l[0], l[1]));
                description = "partition " + who + " from its peers and the meta-service; clients still reach it";
            }
            case PARTITION_CLIENTS -> {
                links.add(new String[]{target, dev.segstore.it.proxy.ProxyNetwork.CLIENT});
                cluster.network.partition(target, dev.segstore.it.proxy.ProxyNetwork.CLIENT);
                description = "partition the clients from " + who;
            }
            case CLIENTS_FROM_META_LEADER -> {
                links.add(new String[]{target, dev.segstore.it.proxy.ProxyNetwork.CLIENT});
                cluster.network.partition(target, dev.segstore.it.proxy.ProxyNetwork.CLIENT);
                description = "partition the clients from " + who;
            }
            case ONE_WAY, SLOW_LINK, RESET_LINK -> {
                String peer = ProcCluster.nodeName(members.get(f.peerRole()));
                links.add(new String[]{target, peer});
                switch (k) {
                    case ONE_WAY -> {
                        cluster.network.oneWay(target, peer);
                        description = "one-way: " + who + " -> " + peer + " passes, back held";
                    }
                    case SLOW_LINK -> {
                        cluster.network.slow(target, peer, f.delayMs());
                        description = "delay " + who + " <-> " + peer + " by " + f.delayMs() + " ms a chunk";
                    }
                    default -> {
                        cluster.network.reset(target, peer);
                        description = "reset connections " + who + " <-> " + peer;
                    }
                }
            }
            default -> throw new IllegalStateException(k.toString());
        }
        history.nemesisStart(k.nemesis, description);
        note("start: " + description);
        return new Applied(f, target, links);
    }

    private void stop(Applied a) throws Exception {
        ProcFaultKind k = a.fault().kind();
        if (k.target == ProcFaultKind.Target.NODE && (k.takesProcess() || k.takesDisk())) {
            held.remove(a.target());
        }
        String description;
        if (k.takesDisk()) {
            int id = Integer.parseInt(a.target().substring(5));
            String mode = cluster.diskMode(id);
            cluster.setDisk(id, "none");
            if (ProcCluster.failing(mode)) {
                // Its data directory may have gone offline, which only a start brings back (as the in-JVM
                // nemesis restarts the node on a healthy disk).
                if (cluster.isUp(a.target())) {
                    cluster.kill(a.target());
                }
                cluster.restart(a.target());
                description = "disk of " + a.target() + " healed (was " + mode + "), the node started again";
            } else {
                description = "disk of " + a.target() + " healed (was " + mode + ")";
            }
        } else if (k.takesProcess()) {
            if (k.name().startsWith("PAUSE")) {
                cluster.resume(a.target());
                description = "SIGCONT " + a.target();
            } else {
                cluster.restart(a.target());
                description = "started " + a.target() + " again";
            }
        } else if (k.cutsRaft()) {
            cluster.healRaftLinks(a.links().stream().map(l -> new dev.segstore.it.raft.RaftLinkFaults.Link(l[0], l[1])).toList());
            description = "Raft links of " + a.target() + " healed";
        } else {
            a.links().forEach(l -> cluster.network.heal(l[0], l[1]));
            description = "links of " + a.target() + " healed";
        }
        history.nemesisStop(k.nemesis, description);
        note("stop: " + k.nemesis + ": " + description);
    }
}
