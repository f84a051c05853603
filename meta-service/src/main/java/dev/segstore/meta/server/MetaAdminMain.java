package dev.segstore.meta.server;

import dev.segstore.client.MetaClient;
import dev.segstore.protocol.meta.DescribeClusterResponse;
import dev.segstore.protocol.meta.Segment;
import dev.segstore.protocol.meta.Shard;
import dev.segstore.protocol.meta.ShardRoute;
import dev.segstore.protocol.meta.ShardSettings;
import dev.segstore.protocol.meta.StorageNode;
import dev.segstore.protocol.rpc.RpcException;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

/**
 * {@code segstore-admin --meta host:port,... <command>}: looks at and changes cluster metadata. Errors print as
 * {@code CODE_NAME: message} (the codes of docs/adapter-contract.md) and exit 1; {@code health} exits 0, 1 or 2.
 */
@Command(name = "segstore-admin", mixinStandardHelpOptions = true, versionProvider = MetaAdminMain.Version.class,
        showDefaultValues = true, scope = CommandLine.ScopeType.INHERIT, description = "Shows and changes segstore cluster metadata.",
        subcommands = {MetaAdminMain.Describe.class, MetaAdminMain.Health.class, MetaAdminMain.CreateShard.class,
                MetaAdminMain.DeleteShard.class, MetaAdminMain.Route.class, MetaAdminMain.ListShards.class,
                MetaAdminMain.RegisterNode.class, MetaAdminMain.Lag.class, AdminShardCommands.AlterShard.class,
                AdminShardCommands.MoveLeader.class, AdminShardCommands.Groups.class, AdminShardCommands.ResetGroup.class,
                AdminShardCommands.Decommission.class, MetaAdminMain.FeatureLevel.class})
public final class MetaAdminMain {
    /** The version in the jar's manifest (Implementation-Version), or "development" when run from classes. */
    public static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String v = MetaAdminMain.class.getPackage().getImplementationVersion();
            return new String[] {"segstore " + (v == null ? "(development build)" : v)};
        }
    }

    @Option(names = "--meta", required = true, split = ",", description = "RPC addresses (host:port) of the meta-service nodes")
    List<String> meta;

    @CommandLine.Mixin
    TlsOptions tls = new TlsOptions();

    /** How results are printed. */
    enum Output { text, json }

    @Option(names = "--output", defaultValue = "text", description = "text or json (one JSON document per command, on stdout; default: ${DEFAULT-VALUE})")
    Output output;

    boolean json() {
        return output == Output.json;
    }

    /** Prints {@code m} as JSON with --output json, else runs {@code text}. */
    void emit(com.google.protobuf.MessageOrBuilder m, Runnable text) {
        if (json()) {
            System.out.println(AdminOutput.json(m));
        } else {
            text.run();
        }
    }

    MetaClient client() {
        return new MetaClient(meta, 3_000, 20_000, tls.config());
    }

    static <T> T get(java.util.concurrent.CompletableFuture<T> f) throws Exception {
        try {
            return f.get(30, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof RpcException re) {
                throw new CommandLine.ExecutionException(new CommandLine(new MetaAdminMain()),
                        dev.segstore.adapter.ErrorCode.fromCode(re.code()).name() + ": " + re.getMessage());
            }
            throw e;
        }
    }

    @Command(name = "describe", description = "Leader, peers, storage nodes, counts.")
    static final class Describe implements Callable<Integer> {
        @CommandLine.ParentCommand
        MetaAdminMain parent;

        @Override
        public Integer call() throws Exception {
            try (MetaClient c = parent.client()) {
                DescribeClusterResponse d = get(c.describeCluster());
                parent.emit(d, () -> {
                    System.out.println("meta leader:   " + d.getLeader());
                    System.out.println("meta peers:    " + String.join(", ", d.getPeersList()));
                    System.out.println("shards:        " + d.getShardCount() + ", segments: " + d.getSegmentCount());
                    System.out.println("feature level: " + d.getFeatureLevel() + " (the meta leader's build knows up to " + d.getMaxFeatureLevel() + ")");
                    System.out.println("storage nodes: " + d.getNodesCount());
                    for (StorageNode n : d.getNodesList()) {
                        System.out.printf("  node %d at %s:%d %s (incarnation %d)%s%s%n", n.getNodeId(), n.getHost(), n.getPort(), n.getState(),
                                n.getIncarnation(), n.getShuttingDown() ? ", shutting down" : "", n.getDecommissioned() ? ", decommissioned" : "");
                    }
                });
            }
            return 0;
        }
    }

    @Command(name = "create-shard", description = "Creates a shard.")
    static final class CreateShard implements Callable<Integer> {
        @CommandLine.ParentCommand
        MetaAdminMain parent;
        @Parameters(index = "0", description = "shard name")
        String name;
        @Option(names = "--replicas", defaultValue = "3")
        int replicas;
        @Option(names = "--min-isr", defaultValue = "2")
        int minIsr;
        @Option(names = "--durability", defaultValue = "fsync", description = "fsync or page-cache")
        String durability;
        @Option(names = "--segment-bytes", defaultValue = "0", description = "size at which a segment rolls (0: the meta-service's "
                + "default, 256 MiB; at least 65536)")
        long segmentBytes;
        @Option(names = "--count", defaultValue = "1", description = "with more than 1, creates shards NAME-1 .. NAME-COUNT "
                + "(16 creations in flight) and prints one line with how many it created")
        int count;

        @Override
        public Integer call() throws Exception {
            dev.segstore.protocol.meta.DurabilityMode mode = switch (durability) {
                case "fsync" -> dev.segstore.protocol.meta.DurabilityMode.FSYNC;
                case "page-cache" -> dev.segstore.protocol.meta.DurabilityMode.PAGE_CACHE;
                default -> throw new CommandLine.ParameterException(new CommandLine(this), "--durability must be fsync or page-cache");
            };
            ShardSettings settings = ShardSettings.newBuilder().setReplicaCount(replicas).setMinInSyncReplicas(minIsr)
                    .setDurability(mode).setSegmentBytes(segmentBytes).build();
            try (MetaClient c = parent.client()) {
                if (count > 1) {
                    return createMany(c, settings);
                }
                ShardRoute r = get(c.createShard(name, settings));
                parent.emit(r, () -> print(r));
            }
            return 0;
        }

        /** Creates NAME-1 .. NAME-COUNT, a window of 16 at a time; every creation must succeed. */
        private int createMany(MetaClient c, ShardSettings settings) throws Exception {
            java.util.ArrayDeque<java.util.concurrent.CompletableFuture<ShardRoute>> window = new java.util.ArrayDeque<>();
            for (int i = 1; i <= count; i++) {
                if (window.size() == 16) {
                    get(window.poll());
                }
                window.add(c.createShard(name + "-" + i, settings));
            }
            while (!window.isEmpty()) {
                get(window.poll());
            }
            System.out.println("created " + count + " shards: " + name + "-1 .. " + name + "-" + count);
            return 0;
        }
    }

    @Command(name = "route", description = "Segments of a shard: offsets, replicas, leader, epoch, ISR.")
    static final class Route implements Callable<Integer> {
        @CommandLine.ParentCommand
        MetaAdminMain parent;
        @Parameters(index = "0")
        String name;

        @Override
        public Integer call() throws Exception {
            try (MetaClient c = parent.client()) {
                ShardRoute r = get(c.route(name));
                parent.emit(r, () -> print(r));
            }
            return 0;
        }
    }

    @Command(name = "lag", description = "Replication of a shard's segments as their leaders see it: log end, high "
            + "watermark, ISR, and each follower's lag in records and since when it was last caught up.")
    static final class Lag implements Callable<Integer> {
        @CommandLine.ParentCommand
        MetaAdminMain parent;
        @Parameters(index = "0", description = "shard name")
        String name;
        @Option(names = "--all", description = "sealed segments too (default: the open one)")
        boolean all;

        @Override
        public Integer call() throws Exception {
            try (MetaClient c = parent.client(); dev.segstore.protocol.rpc.RpcClient rpc = new dev.segstore.protocol.rpc.RpcClient(parent.tls.config())) {
                java.util.Map<Integer, String> addresses = new java.util.HashMap<>();
                get(c.describeCluster()).getNodesList().forEach(n -> addresses.put(n.getNodeId(), n.getHost() + ":" + n.getPort()));
                ShardRoute route = get(c.route(name));
                List<Segment> segments = route.getSegmentsList();
                List<Object> json = new java.util.ArrayList<>();
                for (Segment s : all ? segments : segments.subList(Math.max(0, segments.size() - 1), segments.size())) {
                    String address = addresses.get(s.getLeader());
                    dev.segstore.protocol.node.ReplicaStatusResponse st = address == null ? null
                            : get(rpc.call(address, dev.segstore.protocol.NodeMethods.REPLICA_STATUS,
                            dev.segstore.protocol.node.ReplicaStatusRequest.newBuilder().setSegment(dev.segstore.protocol.node.SegmentRef
                                    .newBuilder().setShardId(s.getShardId()).setSequence(s.getSequence())).build(),
                            dev.segstore.protocol.node.ReplicaStatusResponse.parser(), 10_000));
                    if (parent.json()) {
                        json.add(AdminOutput.object("segment", s, "leaderStatus", st));
                        continue;
                    }
                    System.out.printf("segment %d [%d, %d) %s leader %d epoch %d%n", s.getSequence(), s.getStartOffset(), s.getEndOffset(),
                            s.getStatus(), s.getLeader(), s.getLeaderEpoch());
                    if (st == null) {
                        System.out.println("  no leader to ask");
                        continue;
                    }
                    System.out.printf("  node %d (%s, epoch %d): log end %d, high watermark %d, ISR %s%s%n", st.getNodeId(), st.getRole(),
                            st.getLeaderEpoch(), st.getLogEndOffset(), st.getHighWatermark(), st.getIsrList(), st.getSealed() ? ", sealed" : "");
                    for (dev.segstore.protocol.node.FollowerStatus f : st.getFollowersList()) {
                        System.out.printf("    follower %d: %s%n", f.getNodeId(), f.getLogEndOffset() < 0 ? "not heard from yet"
                                : String.format("log end %d, lag %d records, caught up %d ms ago, last fetch %d ms ago",
                                f.getLogEndOffset(), f.getLagRecords(), f.getCaughtUpMsAgo(), f.getFetchedMsAgo()));
                    }
                }
                if (parent.json()) {
                    System.out.println(AdminOutput.json(AdminOutput.object("shard", name, "segments", json)));
                }
            }
            return 0;
        }
    }

    @Command(name = "feature-level", description = "Shows the cluster's feature level, or raises it with --set: do so only "
            + "once every meta node runs a build that knows the level (from level 2 the meta-service also checks that every alive "
            + "storage node does; a new cluster starts at its build's highest, or 1 if the meta leader did not hear every alive storage node know it).")
    static final class FeatureLevel implements Callable<Integer> {
        @CommandLine.ParentCommand
        MetaAdminMain parent;
        @Option(names = "--set", description = "the level to raise it to")
        Integer set;

        @Override
        public Integer call() throws Exception {
            try (MetaClient c = parent.client()) {
                int level = set == null ? get(c.describeCluster()).getFeatureLevel() : get(c.setFeatureLevel(set)).getLevel();
                System.out.println(parent.json() ? AdminOutput.json(AdminOutput.object("feature_level", level))
                        : "feature level " + level);
            }
            return 0;
        }
    }

    @Command(name = "delete-shard", description = "Deletes a shard: its records, indexes and group offsets, on every "
            + "node. Answered once every storage node that hosted it has dropped it; the name is then free.")
    static final class DeleteShard implements Callable<Integer> {
        @CommandLine.ParentCommand
        MetaAdminMain parent;
        @Parameters(index = "0", description = "shard name")
        String name;

        @Override
        public Integer call() throws Exception {
            try (MetaClient c = parent.client()) {
                get(c.deleteShard(name));
                System.out.println(parent.json() ? AdminOutput.json(AdminOutput.object("deleted", name)) : "shard " + name + " deleted");
            }
            return 0;
        }
    }

    @Command(name = "health", description = "Exit code for scripts: 0 healthy (every node alive, every segment with a "
            + "full ISR), 1 degraded (a node fenced, or a segment under-replicated), 2 unavailable (no meta leader "
            + "answers, or a segment has no leader or fewer in-sync replicas than its min ISR: writes to it fail).")
    static final class Health implements Callable<Integer> {
        @CommandLine.ParentCommand
        MetaAdminMain parent;

        @Override
        public Integer call() throws Exception {
            int worst = 0;
            List<String> problems = new java.util.ArrayList<>();
            try (MetaClient c = parent.client()) {
                DescribeClusterResponse d;
                try {
                    d = c.describeCluster().get(30, TimeUnit.SECONDS);
                } catch (ExecutionException e) {
                    String why = "no meta-service leader answers: " + e.getCause().getMessage();
                    System.out.println(parent.json() ? AdminOutput.json(AdminOutput.object("status", "UNAVAILABLE", "problems", List.of(why)))
                            : "UNAVAILABLE: " + why);
                    return 2;
                }
                for (StorageNode n : d.getNodesList()) {
                    if (n.getState() != dev.segstore.protocol.meta.NodeState.ALIVE) {
                        worst = Math.max(worst, 1);
                        problems.add("node " + n.getNodeId() + " is " + n.getState());
                    }
                }
                for (Shard s : get(c.listShards("")).getShardsList()) {
                    ShardRoute r;
                    try {
                        r = get(c.route(s.getName()));
                    } catch (CommandLine.ExecutionException e) {
                        continue; // deleted since the list was read
                    }
                    for (Segment seg : r.getSegmentsList()) {
                        String where = s.getName() + "/" + seg.getSequence();
                        if (seg.getLeader() < 0) {
                            worst = 2;
                            problems.add(where + " has no leader");
                        } else if (seg.getIsrCount() < Math.max(1, s.getSettings().getMinInSyncReplicas())
                                && seg.getStatus() == dev.segstore.protocol.meta.SegmentStatus.OPEN) {
                            worst = 2;
                            problems.add(where + " ISR " + seg.getIsrList() + " is below min ISR " + s.getSettings().getMinInSyncReplicas());
                        } else if (seg.getIsrCount() < seg.getReplicasCount()) {
                            worst = Math.max(worst, 1);
                            problems.add(where + " is under-replicated: ISR " + seg.getIsrList() + " of " + seg.getReplicasList());
                        }
                    }
                }
            }
            String status = worst == 0 ? "HEALTHY" : worst == 1 ? "DEGRADED" : "UNAVAILABLE";
            if (parent.json()) {
                System.out.println(AdminOutput.json(AdminOutput.object("status", status, "problems", problems)));
            } else {
                System.out.println(status);
                problems.forEach(p -> System.out.println("  " + p));
            }
            return worst;
        }
    }

    @Command(name = "list", description = "Shards whose names start with a prefix.")
    static final class ListShards implements Callable<Integer> {
        @CommandLine.ParentCommand
        MetaAdminMain parent;
        @Parameters(index = "0", defaultValue = "")
        String prefix;

        @Override
        public Integer call() throws Exception {
            try (MetaClient c = parent.client()) {
                dev.segstore.protocol.meta.ListShardsResponse list = get(c.listShards(prefix));
                parent.emit(list, () -> {
                    for (Shard s : list.getShardsList()) {
                        System.out.printf("%s (id %d, %d replicas, min ISR %d, %s)%n", s.getName(), s.getShardId(),
                                s.getSettings().getReplicaCount(), s.getSettings().getMinInSyncReplicas(), retention(s));
                    }
                });
            }
            return 0;
        }
    }

    @Command(name = "register-node", description = "Registers a storage node (as a storage node does at start). "
            + "Refused for a node that is alive: a registration starts a new incarnation, which fences the running one. Refused "
            + "at feature level 2 or above too: this tool cannot vouch for the node's build.")
    static final class RegisterNode implements Callable<Integer> {
        @CommandLine.ParentCommand
        MetaAdminMain parent;
        @Parameters(index = "0")
        int id;
        @Parameters(index = "1", description = "host:port")
        String address;
        @Option(names = "--force", description = "register even if the node is alive (fences the running process)")
        boolean force;

        @Override
        public Integer call() throws Exception {
            String[] hp = address.split(":");
            try (MetaClient c = parent.client()) {
                boolean alive = get(c.describeCluster()).getNodesList().stream()
                        .anyMatch(n -> n.getNodeId() == id && n.getState() == dev.segstore.protocol.meta.NodeState.ALIVE);
                if (alive && !force) {
                    System.err.println("INVALID_ARGUMENT: storage node " + id + " is alive; registering it again would fence the "
                            + "running process (use --force to do that on purpose)");
                    return 1;
                }
                StorageNode n = get(c.registerNode(id, hp[0], Integer.parseInt(hp[1]))).getNode();
                parent.emit(n, () -> System.out.printf("node %d registered at %s:%d, incarnation %d%n", n.getNodeId(), n.getHost(),
                        n.getPort(), n.getIncarnation()));
            }
            return 0;
        }
    }

    static void print(ShardRoute r) {
        System.out.printf("shard %s (id %d, %s)%n", r.getShard().getName(), r.getShard().getShardId(), retention(r.getShard()));
        for (Segment s : r.getSegmentsList()) {
            System.out.printf("  segment %d [%d, %s) %s replicas %s leader %d epoch %d ISR %s (v%d)%s%s%n", s.getSequence(),
                    s.getStartOffset(), s.getEndOffset() < 0 ? "open" : Long.toString(s.getEndOffset()), s.getStatus(),
                    s.getReplicasList(), s.getLeader(), s.getLeaderEpoch(), s.getIsrList(), s.getIsrVersion(),
                    s.getOfflineReplicasCount() > 0 ? " offline copies on " + s.getOfflineReplicasList() : "",
                    s.getSealedAtMs() > 0 ? " sealed " + java.time.Instant.ofEpochMilli(s.getSealedAtMs()) : "");
        }
    }

    private static String retention(Shard s) {
        long ms = s.getSettings().getRetentionMs();
        return ms > 0 ? "retention " + ms + " ms after a segment's seal" : "keeps every segment";
    }

    public static void main(String[] args) {
        CommandLine cl = new CommandLine(new MetaAdminMain());
        cl.setExecutionExceptionHandler((ex, line, parse) -> {
            line.getErr().println(ex.getMessage() != null ? ex.getMessage() : ex.toString());
            return 1;
        });
        int code = cl.execute(args);
        System.exit(code);
    }

    @Override
    public String toString() {
        return "meta-admin " + Arrays.toString(meta.toArray());
    }
}
