package dev.segstore.meta.server;

import dev.segstore.client.MetaClient;
import dev.segstore.client.SegmentStorageAdapter;
import dev.segstore.protocol.NodeMethods;
import dev.segstore.protocol.meta.DurabilityMode;
import dev.segstore.protocol.meta.GroupOffset;
import dev.segstore.protocol.meta.Segment;
import dev.segstore.protocol.meta.ShardRoute;
import dev.segstore.protocol.node.ReplicaStatusRequest;
import dev.segstore.protocol.node.ReplicaStatusResponse;
import dev.segstore.protocol.node.SegmentRef;
import dev.segstore.protocol.rpc.RpcClient;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.TreeMap;
import java.util.concurrent.Callable;

import static dev.segstore.meta.server.MetaAdminMain.get;

/**
 * The admin commands that change a shard or its consumer groups: {@code alter-shard}, {@code move-leader},
 * {@code groups}, {@code reset-group}. Subcommands of {@link MetaAdminMain}.
 */
final class AdminShardCommands {
    private AdminShardCommands() {
    }

    /** Where a shard's records start and end now: its first segment's start, its open segment leader's high watermark. */
    record Bounds(long start, long end) {
    }

    static Bounds bounds(MetaClient c, RpcClient rpc, String shard) throws Exception {
        Map<Integer, String> addresses = new HashMap<>();
        get(c.describeCluster()).getNodesList().forEach(n -> addresses.put(n.getNodeId(), n.getHost() + ":" + n.getPort()));
        ShardRoute route = get(c.route(shard));
        if (route.getSegmentsCount() == 0) {
            return new Bounds(0, 0);
        }
        Segment open = route.getSegments(route.getSegmentsCount() - 1);
        String address = addresses.get(open.getLeader());
        if (address == null) {
            throw new IllegalStateException("UNAVAILABLE: shard '" + shard + "': its open segment has no leader now; try again");
        }
        ReplicaStatusResponse st = get(rpc.call(address, NodeMethods.REPLICA_STATUS, ReplicaStatusRequest.newBuilder()
                .setSegment(SegmentRef.newBuilder().setShardId(open.getShardId()).setSequence(open.getSequence())).build(),
                ReplicaStatusResponse.parser(), 10_000));
        return new Bounds(route.getSegments(0).getStartOffset(), Math.max(open.getStartOffset(), st.getHighWatermark()));
    }

    @Command(name = "alter-shard", description = "Changes a shard's retention (sealed segments are dropped by the new value from "
            + "now on; segments created from now on also roll at that age) and where its next segments are placed.")
    static final class AlterShard implements Callable<Integer> {
        @CommandLine.ParentCommand
        MetaAdminMain parent;
        @Parameters(index = "0", description = "shard name")
        String name;
        @Option(names = "--retention-ms", description = "-1: keep every segment; > 0: drop a sealed segment this long after its seal "
                + "(default: unchanged)")
        Long retentionMs;
        @Option(names = "--placement", split = ",", description = "storage node ids for the next segments, the first leading, as many as "
                + "the shard's replicas (used at a roll while each is alive, not shutting down and not decommissioned); 'none': the "
                + "controller places them (default: unchanged)")
        List<String> placement;

        @Override
        public Integer call() throws Exception {
            if (retentionMs == null && placement == null) {
                throw new CommandLine.ParameterException(new CommandLine(this), "INVALID_ARGUMENT: give --retention-ms, --placement, or both");
            }
            List<Integer> nodes;
            try {
                nodes = placement == null ? null : placement.equals(List.of("none")) ? List.of()
                        : placement.stream().map(x -> Integer.parseInt(x.trim())).toList();
            } catch (NumberFormatException e) {
                throw new CommandLine.ParameterException(new CommandLine(this), "INVALID_ARGUMENT: --placement takes storage node ids "
                        + "separated by commas, or 'none': " + placement);
            }
            try (MetaClient c = parent.client()) {
                dev.segstore.protocol.meta.Shard s = get(c.alterShard(name, retentionMs, nodes));
                parent.emit(s, () -> System.out.printf("shard %s (id %d): %s; next segments on %s%n", s.getName(), s.getShardId(),
                        s.getSettings().getRetentionMs() > 0 ? "retention " + s.getSettings().getRetentionMs() + " ms after a segment's seal"
                                : "keeps every segment", s.getSettings().getPlacementCount() == 0 ? "the controller's placement"
                                : "nodes " + s.getSettings().getPlacementList()));
            }
            return 0;
        }
    }

    @Command(name = "move-leader", description = "Moves the leadership of a shard's open segment to an in-sync replica "
            + "(default: its preferred replica, the first of its replicas).")
    static final class MoveLeader implements Callable<Integer> {
        @CommandLine.ParentCommand
        MetaAdminMain parent;
        @Parameters(index = "0", description = "shard name")
        String name;
        @Option(names = "--to", defaultValue = "-1", description = "the storage node id to lead; must be in the ISR and alive (default: the preferred replica)")
        int to;

        @Override
        public Integer call() throws Exception {
            try (MetaClient c = parent.client()) {
                ShardRoute r = get(c.moveLeader(name, to));
                Segment open = r.getSegments(r.getSegmentsCount() - 1);
                parent.emit(r, () -> System.out.printf("shard %s segment %d: leader %d, epoch %d, ISR %s%n", name, open.getSequence(),
                        open.getLeader(), open.getLeaderEpoch(), open.getIsrList()));
            }
            return 0;
        }
    }

    @Command(name = "decommission", description = "Decommissions a storage node: it is placed on no new segment, its "
            + "leaderships move to other in-sync replicas, and once it is stopped its replicas move to other nodes at once. "
            + "Prints what is left on it; stop the node when it leads nothing (replicas it holds in an ISR stay until then).")
    static final class Decommission implements Callable<Integer> {
        @CommandLine.ParentCommand
        MetaAdminMain parent;
        @Parameters(index = "0", description = "storage node id")
        int node;
        @Option(names = "--undo", description = "take a decommission back: the node is placed and may lead again")
        boolean undo;

        @Override
        public Integer call() throws Exception {
            try (MetaClient c = parent.client()) {
                dev.segstore.protocol.meta.DecommissionNodeResponse r = get(c.decommissionNode(node, !undo));
                parent.emit(r, () -> System.out.printf("storage node %d %s: leads %d segment(s) no other in-sync replica could take,"
                        + " holds %d replica(s) of open and sealed segments%n", node, undo ? "is no longer decommissioned" : "is decommissioned",
                        r.getLeaderships(), r.getReplicas()));
            }
            return 0;
        }
    }

    @Command(name = "groups", description = "Consumer groups and their committed offsets; with --lag, how far each is "
            + "behind its shard's end (asks each shard's open segment leader).")
    static final class Groups implements Callable<Integer> {
        @CommandLine.ParentCommand
        MetaAdminMain parent;
        @Parameters(index = "0", arity = "0..1", description = "a group (default: every group)")
        String group;
        @Option(names = "--lag", description = "show each shard's end offset and the group's lag")
        boolean lag;

        @Override
        public Integer call() throws Exception {
            try (MetaClient c = parent.client(); RpcClient rpc = new RpcClient(parent.tls.config())) {
                List<GroupOffset> offsets = get(c.listGroups(group == null ? "" : group));
                TreeMap<String, TreeMap<String, Long>> byGroup = new TreeMap<>();
                offsets.forEach(o -> byGroup.computeIfAbsent(o.getGroup(), k -> new TreeMap<>()).put(o.getShard(), o.getOffset()));
                if (byGroup.isEmpty() && !parent.json()) {
                    System.out.println(group == null ? "no group has committed an offset" : "group '" + group + "' has no committed offset");
                    return group == null ? 0 : 1;
                }
                Map<String, Bounds> bounds = new HashMap<>();
                List<Object> json = new java.util.ArrayList<>();
                for (var g : byGroup.entrySet()) {
                    if (!parent.json()) {
                        System.out.println("group " + g.getKey());
                    }
                    for (var s : g.getValue().entrySet()) {
                        Bounds b = !lag ? null : bounds.computeIfAbsent(s.getKey(), k -> {
                            try {
                                return bounds(c, rpc, k);
                            } catch (Exception e) {
                                return null;
                            }
                        });
                        if (parent.json()) {
                            json.add(lag ? AdminOutput.object("group", g.getKey(), "shard", s.getKey(), "offset", s.getValue(),
                                    "end", b == null ? null : b.end(), "lag", b == null ? null : Math.max(0, b.end() - s.getValue()))
                                    : AdminOutput.object("group", g.getKey(), "shard", s.getKey(), "offset", s.getValue()));
                        } else if (!lag) {
                            System.out.printf("  %s: offset %d%n", s.getKey(), s.getValue());
                        } else {
                            System.out.printf("  %s: offset %d%s%n", s.getKey(), s.getValue(), b == null ? ", end unknown (no leader answered)"
                                    : String.format(", end %d, lag %d", b.end(), Math.max(0, b.end() - s.getValue())));
                        }
                    }
                }
                if (parent.json()) {
                    System.out.println(AdminOutput.json(AdminOutput.object("offsets", json)));
                    return byGroup.isEmpty() && group != null ? 1 : 0;
                }
            }
            return 0;
        }
    }

    @Command(name = "reset-group", description = "Sets a consumer group's committed offset on a shard: to an offset, the "
            + "earliest or latest record, or the first record at or after a time. Stop the group's consumers first: a "
            + "running consumer commits over it.")
    static final class ResetGroup implements Callable<Integer> {
        @CommandLine.ParentCommand
        MetaAdminMain parent;
        @Parameters(index = "0", description = "group")
        String group;
        @Parameters(index = "1", description = "shard name")
        String shard;

        @CommandLine.ArgGroup(multiplicity = "1")
        Target target;

        static final class Target {
            @Option(names = "--to-offset", description = "this offset (the next one the group reads)")
            Long offset;
            @Option(names = "--to-earliest", description = "the shard's first record still kept")
            boolean earliest;
            @Option(names = "--to-latest", description = "the shard's end: only records written from now on")
            boolean latest;
            @Option(names = "--to-timestamp", description = "the first record whose timestamp (ms since the epoch) is at or after this")
            Long timestamp;
        }

        @Override
        public Integer call() throws Exception {
            try (MetaClient c = parent.client(); RpcClient rpc = new RpcClient(parent.tls.config())) {
                long offset;
                if (target.offset != null) {
                    offset = target.offset;
                } else if (target.timestamp != null) {
                    try (SegmentStorageAdapter a = new SegmentStorageAdapter(new SegmentStorageAdapter.Settings(parent.meta, 30_000, 5_000,
                            DurabilityMode.FSYNC, parent.tls.config()))) {
                        OptionalLong at = a.getOffsetByTimestamp(shard, target.timestamp).get(60, java.util.concurrent.TimeUnit.SECONDS);
                        offset = at.isPresent() ? at.getAsLong() : bounds(c, rpc, shard).end();
                    }
                } else {
                    Bounds b = bounds(c, rpc, shard);
                    offset = target.earliest ? b.start() : b.end();
                }
                long shardId = get(c.route(shard)).getShard().getShardId();
                get(c.commitOffsets(List.of(GroupOffset.newBuilder().setGroup(group).setShard(shard).setShardId(shardId).setOffset(offset).build())));
                long set = offset;
                System.out.println(parent.json() ? AdminOutput.json(AdminOutput.object("group", group, "shard", shard, "offset", set))
                        : String.format("group %s on %s: offset %d", group, shard, set));
            }
            return 0;
        }
    }
}
