package dev.segstore.node.server;

import dev.segstore.adapter.NewRecord;
import dev.segstore.adapter.ShardConfig;
import dev.segstore.adapter.StoredRecord;
import dev.segstore.client.MetaClient;
import dev.segstore.client.SegmentStorageAdapter;
import dev.segstore.meta.server.MetaAdminMain;
import dev.segstore.protocol.meta.Segment;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import picocli.CommandLine;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalLong;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The admin commands that change shards and groups, on an in-JVM cluster: {@code move-leader} (to an ISR member,
 * and back to the preferred replica: writes go on, nothing is lost), {@code groups --lag}, {@code reset-group} (to
 * an offset, earliest, latest, a time), {@code alter-shard --retention-ms}.
 */
@Timeout(120)
class AdminShardCommandsClusterTest {
    private InJvmCluster cluster;
    private SegmentStorageAdapter adapter;

    @BeforeEach
    void start() throws Exception {
        cluster = new InJvmCluster();
        adapter = new SegmentStorageAdapter(SegmentStorageAdapter.Settings.of(cluster.metaAddresses.toArray(String[]::new)));
    }

    @AfterEach
    void stop() throws Exception {
        if (adapter != null) {
            adapter.close();
        }
        if (cluster != null) {
            cluster.close();
        }
    }

    private record Run(int exit, String out, String err) {
        /**
         * The command's JSON document ({@code --output json}) among what else reached stdout while it ran: the in-process
         * servers' log lines go there too (logback's console appender writes to whatever {@code System.out} is then), a
         * line at a time, so one can come before or after the document (CI met one at 06:09: "Expect a map object but
         * found: \"06\""). The document is printed in one call, pretty-printed: from a line "{" to its line "}".
         */
        String json() {
            int start = out.startsWith("{") ? 0 : out.indexOf("\n{") + 1;
            int end = out.indexOf("\n}", start);
            if (start == 0 && !out.startsWith("{") || end < 0) {
                throw new AssertionError("no JSON document in the output: " + out);
            }
            return out.substring(start, end + 2);
        }
    }

    private synchronized Run admin(String... args) {
        List<String> all = new ArrayList<>(List.of("--meta", String.join(",", cluster.metaAddresses)));
        all.addAll(List.of(args));
        PrintStream out = System.out;
        PrintStream err = System.err;
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        ByteArrayOutputStream e = new ByteArrayOutputStream();
        try {
            System.setOut(new PrintStream(o, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(e, true, StandardCharsets.UTF_8));
            CommandLine cl = new CommandLine(new MetaAdminMain());
            cl.setErr(new java.io.PrintWriter(System.err, true));
            cl.setExecutionExceptionHandler((ex, line, parse) -> {
                line.getErr().println(ex.getMessage());
                return 1;
            });
            int exit = cl.execute(all.toArray(String[]::new));
            return new Run(exit, o.toString(StandardCharsets.UTF_8), e.toString(StandardCharsets.UTF_8));
        } finally {
            System.setOut(out);
            System.setErr(err);
        }
    }

    private static <T> T await(CompletableFuture<T> f) throws Exception {
        return f.get(60, TimeUnit.SECONDS);
    }

    private void write(int from, int to) throws Exception {
        for (int i = from; i < to; i++) {
            assertEquals(i, (long) await(adapter.write("g", NewRecord.of(1_000 + i, ("r" + i).getBytes(StandardCharsets.UTF_8)))));
        }
    }

    private Segment open() throws Exception {
        try (MetaClient c = new MetaClient(cluster.metaAddresses, 2_000, 10_000)) {
            var r = await(c.route("g"));
            return r.getSegments(r.getSegmentsCount() - 1);
        }
    }

    private void awaitFullIsr() {
        InJvmCluster.waitFor("a full ISR", 30_000, () -> {
            try {
                return open().getIsrCount() == 3;
            } catch (Exception e) {
                return false;
            }
        });
    }

    @Test
    void moveLeaderGroupsResetGroupAndAlterShard() throws Exception {
        await(adapter.createShard(ShardConfig.of("g", SegmentStorageAdapter.STORAGE_TYPE)));
        write(0, 10);
        awaitFullIsr();

        Segment before = open();
        int to = before.getIsrList().stream().filter(n -> n != before.getLeader()).findFirst().orElseThrow();
        Run moved = admin("move-leader", "g", "--to", Integer.toString(to));
        assertEquals(0, moved.exit(), moved.toString());
        assertTrue(moved.out().contains("leader " + to + ", epoch " + (before.getLeaderEpoch() + 1)), moved.out());
        write(10, 15); // the client follows the move
        Run preferred = admin("move-leader", "g");
        assertEquals(0, preferred.exit(), preferred.toString());
        assertEquals(before.getReplicas(0), open().getLeader(), "the preferred replica leads again");
        write(15, 20);
        List<StoredRecord> all = await(adapter.readByOffset("g", 0, 100));
        assertEquals(20, all.size(), "nothing was lost across two leadership moves");
        Run notInIsr = admin("move-leader", "g", "--to", "9");
        assertEquals(1, notInIsr.exit(), notInIsr.toString());
        assertTrue(notInIsr.err().contains("INVALID_ARGUMENT") && notInIsr.err().contains("ISR"), notInIsr.toString());

        Run none = admin("groups");
        assertTrue(none.out().contains("no group has committed an offset"), none.out());
        await(adapter.commitOffset("readers", "g", 4));
        // The end is the open segment leader's high watermark: right after the leadership moved back it may be a
        // fetch round behind (end 19), so the view converges rather than being exact at once.
        Run[] lag = new Run[1];
        InJvmCluster.waitFor("groups --lag to show the shard's end", 30_000, () -> {
            lag[0] = admin("groups", "readers", "--lag");
            return lag[0].out().contains("end 20");
        });
        assertEquals(0, lag[0].exit(), lag[0].toString());
        assertTrue(lag[0].out().contains("g: offset 4, end 20, lag 16"), lag[0].out());
        Run lagJson = admin("--output", "json", "groups", "readers", "--lag");
        assertEquals(0, lagJson.exit(), lagJson.toString());
        com.google.protobuf.Struct.Builder j = com.google.protobuf.Struct.newBuilder();
        com.google.protobuf.util.JsonFormat.parser().merge(lagJson.json(), j);
        com.google.protobuf.Struct row = j.getFieldsOrThrow("offsets").getListValue().getValues(0).getStructValue();
        assertEquals(16.0, row.getFieldsOrThrow("lag").getNumberValue(), lagJson.out());
        assertEquals("g", row.getFieldsOrThrow("shard").getStringValue());
        assertEquals(0, admin("reset-group", "readers", "g", "--to-latest").exit());
        assertEquals(OptionalLong.of(20), await(adapter.getOffsetByGroup("readers", "g")));
        assertEquals(0, admin("reset-group", "readers", "g", "--to-earliest").exit());
        assertEquals(OptionalLong.of(0), await(adapter.getOffsetByGroup("readers", "g")));
        assertEquals(0, admin("reset-group", "readers", "g", "--to-timestamp", "1007").exit());
        assertEquals(OptionalLong.of(7), await(adapter.getOffsetByGroup("readers", "g")));
        assertEquals(0, admin("reset-group", "readers", "g", "--to-offset", "12").exit());
        assertEquals(OptionalLong.of(12), await(adapter.getOffsetByGroup("readers", "g")));
        Run two = admin("reset-group", "readers", "g", "--to-earliest", "--to-latest");
        assertNotEquals(0, two.exit(), "one target only");

        Run altered = admin("alter-shard", "g", "--retention-ms", "3600000");
        assertEquals(0, altered.exit(), altered.toString());
        assertTrue(altered.out().contains("retention 3600000 ms"), altered.toString());
        assertEquals(3_600_000, await(adapter.listShards(dev.segstore.adapter.ShardFilter.all())).get(0).config().retentionMs());
        Run bad = admin("alter-shard", "g", "--retention-ms", "0");
        assertEquals(1, bad.exit());
        assertTrue(bad.err().contains("INVALID_ARGUMENT"), bad.err());
    }

    /**
     * {@code decommission}: the node's leadership of the open segment moves to another ISR member (writes go on,
     * nothing is lost), {@code describe} says so, a new shard of 2 replicas is placed on the other two nodes, a
     * shard of 3 cannot be created, and {@code --undo} takes it back.
     */
    @Test
    void decommissionMovesLeadershipsAndKeepsNewShardsOffTheNode() throws Exception {
        await(adapter.createShard(ShardConfig.of("g", SegmentStorageAdapter.STORAGE_TYPE)));
        write(0, 10);
        awaitFullIsr();
        int node = open().getLeader();

        Run done = admin("decommission", Integer.toString(node));
        assertEquals(0, done.exit(), done.toString());
        assertTrue(done.out().contains("storage node " + node + " is decommissioned: leads 0 segment(s)"), done.out());
        assertTrue(open().getLeader() != node, "the leadership moved: " + open());
        write(10, 20); // the client follows the move
        assertEquals(20, await(adapter.readByOffset("g", 0, 100)).size(), "nothing was lost");
        Run described = admin("describe");
        assertTrue(described.out().contains("node " + node + " at ") && described.out().contains(", decommissioned"), described.out());

        await(adapter.createShard(ShardConfig.of("two", SegmentStorageAdapter.STORAGE_TYPE).withReplication(2, 1)));
        try (MetaClient c = new MetaClient(cluster.metaAddresses, 2_000, 10_000)) {
            List<Integer> replicas = await(c.route("two")).getSegments(0).getReplicasList();
            assertTrue(!replicas.contains(node), "placed off the decommissioned node: " + replicas);
        }
        java.util.concurrent.ExecutionException three = org.junit.jupiter.api.Assertions.assertThrows(java.util.concurrent.ExecutionException.class,
                () -> await(adapter.createShard(ShardConfig.of("three", SegmentStorageAdapter.STORAGE_TYPE))));
        assertTrue(three.getCause().getMessage().contains("live storage nodes"), String.valueOf(three.getCause()));

        Run undone = admin("decommission", Integer.toString(node), "--undo");
        assertEquals(0, undone.exit(), undone.toString());
        assertTrue(undone.out().contains("is no longer decommissioned"), undone.out());
        await(adapter.createShard(ShardConfig.of("three", SegmentStorageAdapter.STORAGE_TYPE)));
        Run unknown = admin("decommission", "42");
        assertEquals(1, unknown.exit(), unknown.toString());
        assertTrue(unknown.err().contains("INVALID_ARGUMENT"), unknown.toString());
    }

    /**
     * {@code alter-shard --placement}: the next segment after a roll goes on the nodes given, the first leading;
     * the retention is left as it was; a placement of the wrong size is refused; {@code none} clears it.
     */
    @Test
    void alterShardPlacementPutsTheNextSegmentOnTheNodesGiven() throws Exception {
        await(adapter.createShard(ShardConfig.of("g", SegmentStorageAdapter.STORAGE_TYPE).withSegmentBytes(64 * 1024).withRetentionMs(3_600_000)));
        write(0, 1);
        Segment first = open();
        List<Integer> wanted = new ArrayList<>(first.getReplicasList());
        java.util.Collections.reverse(wanted); // the last replica leads the next segment
        Run placed = admin("alter-shard", "g", "--placement", wanted.stream().map(String::valueOf).collect(java.util.stream.Collectors.joining(",")));
        assertEquals(0, placed.exit(), placed.toString());
        assertTrue(placed.out().contains("retention 3600000 ms") && placed.out().contains("next segments on nodes " + wanted), placed.out());
        byte[] big = new byte[8 * 1024];
        for (int i = 0; open().getSequence() == first.getSequence(); i++) {
            assertTrue(i < 100, "the segment rolled after 64 KiB");
            await(adapter.write("g", NewRecord.of(i, big)));
        }
        assertEquals(wanted, open().getReplicasList(), "the next segment is on the nodes given, the first leading");
        assertEquals(wanted.get(0), open().getLeader());
        Run wrongSize = admin("alter-shard", "g", "--placement", "1,2");
        assertEquals(1, wrongSize.exit(), wrongSize.toString());
        assertTrue(wrongSize.err().contains("INVALID_ARGUMENT"), wrongSize.toString());
        Run cleared = admin("alter-shard", "g", "--placement", "none");
        assertTrue(cleared.out().contains("the controller's placement"), cleared.toString());
        Run nothing = admin("alter-shard", "g");
        assertEquals(2, nothing.exit(), "a usage error: " + nothing);
    }
}
