package dev.segstore.meta;

import dev.segstore.meta.state.MetaState;

import dev.segstore.client.MetaClient;
import dev.segstore.meta.server.MetaAdminMain;
import dev.segstore.protocol.meta.NodeState;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import picocli.CommandLine;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code segstore-admin} against a 3-node meta-service in the JVM (no storage node processes: nodes are
 * registered by the tool and never heartbeat, so the controller fences them after the 2 s session timeout).
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class AdminCommandsTest {

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

    /** Runs the tool's command line as its main does, with its output captured. */
    private static synchronized Run admin(MetaTestCluster cluster, String... args) {
        List<String> all = new ArrayList<>(List.of("--meta", String.join(",", cluster.rpcAddresses())));
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

    @Test
    void theJsonDocumentIsReadFromAmongLogLinesOnStdout() throws Exception {
        String log = "06:09:02.598 INFO  [main] d.s.n.s.FetchSessions - a line of an in-process server\n";
        Run run = new Run(0, log + "{\n  \"status\": \"OK\",\n  \"problems\": [{\n    \"a\": 1\n  }]\n}\n" + log, "");
        com.google.protobuf.Struct.Builder h = com.google.protobuf.Struct.newBuilder();
        com.google.protobuf.util.JsonFormat.parser().merge(run.json(), h);
        assertEquals("OK", h.getFieldsOrThrow("status").getStringValue());
        assertEquals(1.0, h.getFieldsOrThrow("problems").getListValue().getValues(0).getStructValue().getFieldsOrThrow("a").getNumberValue());
        assertThrows(AssertionError.class, () -> new Run(0, log, "").json(), "no document");
    }

    @Test
    void createShardWithCountCreatesThatManyNumberedShards() throws Exception {
        try (MetaTestCluster cluster = new MetaTestCluster(3, 2_000, 300)) {
            cluster.awaitLeader();
            assertEquals(0, admin(cluster, "register-node", "1", "127.0.0.1:9001").exit());
            Run created = admin(cluster, "create-shard", "many", "--count", "20", "--replicas", "1", "--min-isr", "1");
            assertEquals(0, created.exit(), created.toString());
            // (The in-process meta nodes log to the same stdout: the first shard logs why the cluster starts at level 1.)
            assertTrue(created.out().lines().anyMatch(l -> l.startsWith("created 20 shards: many-1 .. many-20")), created.out());
            Run listed = admin(cluster, "list", "many-");
            assertEquals(0, listed.exit(), listed.toString());
            assertEquals(20, listed.out().lines().count(), listed.out());
            assertTrue(listed.out().contains("many-20 (") && listed.out().contains("many-1 ("), listed.out());
        }
    }

    @Test
    void healthDeleteRegisterAndErrorsByName() throws Exception {
        try (MetaTestCluster cluster = new MetaTestCluster(3, 2_000, 300); MetaClient client = cluster.client()) {
            cluster.awaitLeader();
            Run healthy = admin(cluster, "health");
            assertEquals(0, healthy.exit(), healthy.toString());
            assertTrue(healthy.out().startsWith("HEALTHY"), healthy.out());

            assertEquals(0, admin(cluster, "register-node", "1", "127.0.0.1:9001").exit());
            long incarnation = client.describeCluster().get(30, TimeUnit.SECONDS).getNodes(0).getIncarnation();
            Run again = admin(cluster, "register-node", "1", "127.0.0.1:9001");
            assertEquals(1, again.exit(), again.toString());
            assertTrue(again.err().contains("is alive"), again.err());
            assertEquals(incarnation, client.describeCluster().get(30, TimeUnit.SECONDS).getNodes(0).getIncarnation(),
                    "refused: the running node is not fenced");
            assertEquals(0, admin(cluster, "register-node", "1", "127.0.0.1:9001", "--force").exit());
            assertEquals(incarnation + 1, client.describeCluster().get(30, TimeUnit.SECONDS).getNodes(0).getIncarnation());

            Run solo = admin(cluster, "create-shard", "solo", "--replicas", "1", "--min-isr", "1");
            assertEquals(0, solo.exit(), solo.toString());
            // Node 1 never heartbeats: once fenced, its segment has no leader and writes to it fail.
            MetaTestCluster.waitFor("node 1 to be fenced", () -> {
                try {
                    return client.describeCluster().get(30, TimeUnit.SECONDS).getNodes(0).getState() == NodeState.FENCED;
                } catch (Exception e) {
                    return false;
                }
            });
            Run unavailable = admin(cluster, "health");
            assertEquals(2, unavailable.exit(), unavailable.toString());
            assertTrue(unavailable.out().contains("solo/0 has no leader") && unavailable.out().contains("node 1 is FENCED"), unavailable.out());

            Run deleted = admin(cluster, "delete-shard", "solo");
            assertEquals(0, deleted.exit(), deleted.toString());
            Run missing = admin(cluster, "route", "solo");
            assertEquals(1, missing.exit());
            assertTrue(missing.err().startsWith("SHARD_NOT_FOUND: "), "errors by code name: " + missing.err());
            Run degraded = admin(cluster, "health");
            assertEquals(1, degraded.exit(), "a fenced node, no segment: " + degraded);

            // --output json: one JSON document, protobuf's mapping for answers, parsed back here.
            Run describe = admin(cluster, "--output", "json", "describe");
            assertEquals(0, describe.exit(), describe.toString());
            dev.segstore.protocol.meta.DescribeClusterResponse.Builder d = dev.segstore.protocol.meta.DescribeClusterResponse.newBuilder();
            com.google.protobuf.util.JsonFormat.parser().merge(describe.json(), d);
            assertEquals(client.describeCluster().get(30, TimeUnit.SECONDS).getNodesList(), d.getNodesList());
            Run health = admin(cluster, "--output", "json", "health");
            assertEquals(1, health.exit());
            com.google.protobuf.Struct.Builder h = com.google.protobuf.Struct.newBuilder();
            com.google.protobuf.util.JsonFormat.parser().merge(health.json(), h);
            assertEquals("DEGRADED", h.getFieldsOrThrow("status").getStringValue(), health.out());
            assertTrue(h.getFieldsOrThrow("problems").getListValue().getValuesList().stream()
                    .anyMatch(v -> v.getStringValue().equals("node 1 is FENCED")), health.out());
            Run list = admin(cluster, "--output", "json", "list");
            assertEquals(0, list.exit());
            dev.segstore.protocol.meta.ListShardsResponse.Builder l = dev.segstore.protocol.meta.ListShardsResponse.newBuilder();
            com.google.protobuf.util.JsonFormat.parser().merge(list.json(), l);
            assertEquals(0, l.getShardsCount(), "solo was deleted: " + list.out());

            // The feature level: a new cluster whose storage node was registered by this tool (which cannot vouch for the
            // node's build) started at level 1; it rises to the build's highest once that node is not alive (fenced
            // here); above that is refused, by code name.
            Run level = admin(cluster, "feature-level");
            assertEquals(0, level.exit(), level.toString());
            assertEquals("feature level 1", level.out().strip());
            Run raised = admin(cluster, "feature-level", "--set", String.valueOf(MetaState.MAX_FEATURE_LEVEL));
            assertEquals(0, raised.exit(), raised.toString());
            assertEquals("feature level " + MetaState.MAX_FEATURE_LEVEL, raised.out().strip());
            Run vouchless = admin(cluster, "register-node", "2", "127.0.0.1:9002");
            assertEquals(1, vouchless.exit(), "this tool cannot vouch for a node's build: " + vouchless);
            assertTrue(vouchless.err().startsWith("INVALID_ARGUMENT: storage node 2 registers with a build"), vouchless.err());
            Run unknown = admin(cluster, "feature-level", "--set", String.valueOf(MetaState.MAX_FEATURE_LEVEL + 1));
            assertEquals(1, unknown.exit(), unknown.toString());
            assertTrue(unknown.err().startsWith("INVALID_ARGUMENT: feature level "), unknown.err());
            Run same = admin(cluster, "--output", "json", "feature-level", "--set", String.valueOf(MetaState.MAX_FEATURE_LEVEL));
            assertEquals(0, same.exit(), same.toString());
            assertTrue(same.out().contains("\"feature_level\": " + MetaState.MAX_FEATURE_LEVEL), same.out());
        }
    }

    @Test
    void versionAndDefaultsAreShown() {
        CommandLine cl = new CommandLine(new MetaAdminMain());
        java.io.StringWriter out = new java.io.StringWriter();
        cl.setOut(new java.io.PrintWriter(out));
        assertEquals(0, cl.execute("--version"));
        assertTrue(out.toString().startsWith("segstore "), out.toString());
        java.io.StringWriter help = new java.io.StringWriter();
        cl.getSubcommands().get("create-shard").setOut(new java.io.PrintWriter(help));
        assertEquals(0, cl.execute("--meta", "127.0.0.1:1", "create-shard", "--help"));
        assertTrue(help.toString().contains("Default: 3"), "defaults shown: " + help);
    }
}
