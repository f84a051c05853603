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

/** {@code meta-admin --meta host:port,... <command>}: looks at and changes cluster metadata. */
@Command(name = "segstore-admin", mixinStandardHelpOptions = true, description = "Shows and changes segstore cluster metadata.",
        subcommands = {MetaAdminMain.Describe.class, MetaAdminMain.CreateShard.class, MetaAdminMain.Route.class,
                MetaAdminMain.ListShards.class, MetaAdminMain.RegisterNode.class, MetaAdminMain.Lag.class})
public final class MetaAdminMain {
    @Option(names = "--meta", required = true, split = ",", description = "RPC addresses (host:port) of the meta-service nodes")
    List<String> meta;

    MetaClient client() {
        return new MetaClient(meta, 3_000, 20_000);
    }

    static <T> T get(java.util.concurrent.CompletableFuture<T> f) throws Exception {
        try {
            return f.get(30, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof RpcException re) {
                throw new CommandLine.ExecutionException(new CommandLine(new MetaAdminMain()), "error " + re.code() + ": " + re.getMessage());
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
                System.out.println("meta leader:   " + d.getLeader());
                System.out.println("meta peers:    " + String.join(", ", d.getPeersList()));
                System.out.println("shards:        " + d.getShardCount() + ", segments: " + d.getSegmentCount());
                System.out.println("storage nodes: " + d.getNodesCount());
                for (StorageNode n : d.getNodesList()) {
                    System.out.printf("  node %d at %s:%d %s (incarnation %d)%n", n.getNodeId(), n.getHost(), n.getPort(), n.getState(), n.getIncarnation());
                }
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

        @Override
        public Integer call() throws Exception {
            dev.segstore.protocol.meta.DurabilityMode mode = switch (durability) {
                case "fsync" -> dev.segstore.protocol.meta.DurabilityMode.FSYNC;
                case "page-cache" -> dev.segstore.protocol.meta.DurabilityMode.PAGE_CACHE;
                default -> throw new CommandLine.ParameterException(new CommandLine(this), "--durability must be fsync or page-cache");
            };
            try (MetaClient c = parent.client()) {
                print(get(c.createShard(name, ShardSettings.newBuilder().setReplicaCount(replicas).setMinInSyncReplicas(minIsr)
                        .setDurability(mode).build())));
            }
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
                print(get(c.route(name)));
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
            try (MetaClient c = parent.client(); dev.segstore.protocol.rpc.RpcClient rpc = new dev.segstore.protocol.rpc.RpcClient()) {
                java.util.Map<Integer, String> addresses = new java.util.HashMap<>();
                get(c.describeCluster()).getNodesList().forEach(n -> addresses.put(n.getNodeId(), n.getHost() + ":" + n.getPort()));
                ShardRoute route = get(c.route(name));
                List<Segment> segments = route.getSegmentsList();
                for (Segment s : all ? segments : segments.subList(Math.max(0, segments.size() - 1), segments.size())) {
                    System.out.printf("segment %d [%d, %d) %s leader %d epoch %d%n", s.getSequence(), s.getStartOffset(), s.getEndOffset(),
                            s.getStatus(), s.getLeader(), s.getLeaderEpoch());
                    String address = addresses.get(s.getLeader());
                    if (address == null) {
                        System.out.println("  no leader to ask");
                        continue;
                    }
                    dev.segstore.protocol.node.ReplicaStatusResponse st = get(rpc.call(address, dev.segstore.protocol.NodeMethods.REPLICA_STATUS,
                            dev.segstore.protocol.node.ReplicaStatusRequest.newBuilder().setSegment(dev.segstore.protocol.node.SegmentRef
                                    .newBuilder().setShardId(s.getShardId()).setSequence(s.getSequence())).build(),
                            dev.segstore.protocol.node.ReplicaStatusResponse.parser(), 10_000));
                    System.out.printf("  node %d (%s, epoch %d): log end %d, high watermark %d, ISR %s%s%n", st.getNodeId(), st.getRole(),
                            st.getLeaderEpoch(), st.getLogEndOffset(), st.getHighWatermark(), st.getIsrList(), st.getSealed() ? ", sealed" : "");
                    for (dev.segstore.protocol.node.FollowerStatus f : st.getFollowersList()) {
                        System.out.printf("    follower %d: %s%n", f.getNodeId(), f.getLogEndOffset() < 0 ? "not heard from yet"
                                : String.format("log end %d, lag %d records, caught up %d ms ago, last fetch %d ms ago",
                                f.getLogEndOffset(), f.getLagRecords(), f.getCaughtUpMsAgo(), f.getFetchedMsAgo()));
                    }
                }
            }
            return 0;
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
                for (Shard s : get(c.listShards(prefix)).getShardsList()) {
                    System.out.printf("%s (id %d, %d replicas, min ISR %d, %s)%n", s.getName(), s.getShardId(),
                            s.getSettings().getReplicaCount(), s.getSettings().getMinInSyncReplicas(), retention(s));
                }
            }
            return 0;
        }
    }

    @Command(name = "register-node", description = "Registers a storage node (as a storage node does at start).")
    static final class RegisterNode implements Callable<Integer> {
        @CommandLine.ParentCommand
        MetaAdminMain parent;
        @Parameters(index = "0")
        int id;
        @Parameters(index = "1", description = "host:port")
        String address;

        @Override
        public Integer call() throws Exception {
            String[] hp = address.split(":");
            try (MetaClient c = parent.client()) {
                StorageNode n = get(c.registerNode(id, hp[0], Integer.parseInt(hp[1]))).getNode();
                System.out.printf("node %d registered at %s:%d, incarnation %d%n", n.getNodeId(), n.getHost(), n.getPort(), n.getIncarnation());
            }
            return 0;
        }
    }

    static void print(ShardRoute r) {
        System.out.printf("shard %s (id %d, %s)%n", r.getShard().getName(), r.getShard().getShardId(), retention(r.getShard()));
        for (Segment s : r.getSegmentsList()) {
            System.out.printf("  segment %d [%d, %s) %s replicas %s leader %d epoch %d ISR %s (v%d)%s%n", s.getSequence(),
                    s.getStartOffset(), s.getEndOffset() < 0 ? "open" : Long.toString(s.getEndOffset()), s.getStatus(),
                    s.getReplicasList(), s.getLeader(), s.getLeaderEpoch(), s.getIsrList(), s.getIsrVersion(),
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
            System.err.println(ex.getMessage());
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
