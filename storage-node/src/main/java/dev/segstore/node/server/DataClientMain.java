package dev.segstore.node.server;

import dev.segstore.protocol.NodeMethods;
import com.google.protobuf.ByteString;
import dev.segstore.client.MetaClient;
import dev.segstore.protocol.meta.Segment;
import dev.segstore.protocol.meta.ShardRoute;
import dev.segstore.protocol.meta.StorageNode;
import dev.segstore.protocol.node.FetchRequest;
import dev.segstore.protocol.node.FetchResponse;
import dev.segstore.protocol.node.ProduceRequest;
import dev.segstore.protocol.node.ProduceResponse;
import dev.segstore.protocol.node.Record;
import dev.segstore.protocol.node.SegmentRef;
import dev.segstore.protocol.rpc.RpcClient;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;

/**
 * {@code segstore-data --meta host:port,... produce|consume ...}: writes and reads records of a shard's open
 * segment through its leader, for trying a local cluster by hand. (Brokers use the {@code segment} engine.)
 */
@Command(name = "segstore-client", mixinStandardHelpOptions = true, description = "Writes and reads records of a shard.",
        subcommands = {DataClientMain.Produce.class, DataClientMain.Consume.class})
public final class DataClientMain {
    @Option(names = "--meta", required = true, split = ",", description = "RPC addresses of the meta-service nodes")
    List<String> meta;

    @picocli.CommandLine.Mixin
    dev.segstore.meta.server.TlsOptions tls = new dev.segstore.meta.server.TlsOptions();

    /** The open segment of {@code shard} and the address of its leader. */
    record Target(Segment segment, String leader) {
        SegmentRef ref() {
            return SegmentRef.newBuilder().setShardId(segment.getShardId()).setSequence(segment.getSequence()).build();
        }
    }

    Target target(MetaClient c, String shard) throws Exception {
        ShardRoute route = c.route(shard).get(30, TimeUnit.SECONDS);
        Segment open = route.getSegments(route.getSegmentsCount() - 1);
        for (StorageNode n : c.describeCluster().get(30, TimeUnit.SECONDS).getNodesList()) {
            if (n.getNodeId() == open.getLeader()) {
                return new Target(open, n.getHost() + ":" + n.getPort());
            }
        }
        throw new IllegalStateException("segment " + shard + "/" + open.getSequence() + " has no live leader (leader " + open.getLeader() + ")");
    }

    @Command(name = "produce", description = "Appends each argument as one record (acknowledged by the ISR).")
    static final class Produce implements Callable<Integer> {
        @CommandLine.ParentCommand
        DataClientMain parent;
        @Parameters(index = "0")
        String shard;
        @Parameters(index = "1..*", arity = "1..*")
        List<String> payloads;

        @Override
        public Integer call() throws Exception {
            try (MetaClient c = new MetaClient(parent.meta, 3_000, 20_000, parent.tls.config()); RpcClient rpc = new RpcClient(parent.tls.config())) {
                Target t = parent.target(c, shard);
                ProduceRequest.Builder req = ProduceRequest.newBuilder().setSegment(t.ref()).setProducerId(-1).setBaseSequence(-1);
                for (String p : payloads) {
                    req.addRecords(Record.newBuilder().setTimestamp(System.currentTimeMillis()).setPayload(ByteString.copyFromUtf8(p)));
                }
                ProduceResponse r = rpc.call(t.leader(), NodeMethods.PRODUCE, req.build(), ProduceResponse.parser(), 10_000).get(30, TimeUnit.SECONDS);
                System.out.printf("appended offsets %d..%d on leader %s (epoch %d)%n", r.getBaseOffset(), r.getLastOffset(),
                        t.leader(), t.segment().getLeaderEpoch());
            }
            return 0;
        }
    }

    @Command(name = "consume", description = "Prints the records of the open segment from an offset (up to the high watermark).")
    static final class Consume implements Callable<Integer> {
        @CommandLine.ParentCommand
        DataClientMain parent;
        @Parameters(index = "0")
        String shard;
        @Option(names = "--from", defaultValue = "0")
        long from;

        @Override
        public Integer call() throws Exception {
            try (MetaClient c = new MetaClient(parent.meta, 3_000, 20_000, parent.tls.config()); RpcClient rpc = new RpcClient(parent.tls.config())) {
                Target t = parent.target(c, shard);
                dev.segstore.client.ConsumerFetch r = dev.segstore.client.ConsumerFetch.call(rpc, t.leader(), FetchRequest.newBuilder()
                        .setSegment(t.ref()).setReplicaId(-1).setOffset(Math.max(from, t.segment().getStartOffset())).setMaxRecords(1000)
                        .build(), 10_000).get(30, TimeUnit.SECONDS);
                for (dev.segstore.log.LogRecord rec : r.records()) {
                    System.out.printf("%d: %s%n", rec.offset(), new String(rec.payload(), java.nio.charset.StandardCharsets.UTF_8));
                }
                System.out.printf("(high watermark %d)%n", r.highWatermark());
            }
            return 0;
        }
    }

    public static void main(String[] args) {
        CommandLine cl = new CommandLine(new DataClientMain());
        cl.setExecutionExceptionHandler((ex, line, parse) -> {
            Throwable cause = ex instanceof java.util.concurrent.ExecutionException && ex.getCause() != null ? ex.getCause() : ex;
            System.err.println("error: " + cause.getMessage());
            return 1;
        });
        System.exit(cl.execute(args));
    }
}
