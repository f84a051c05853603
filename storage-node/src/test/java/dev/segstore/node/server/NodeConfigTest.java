package dev.segstore.node.server;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class NodeConfigTest {
    @TempDir
    Path dir;

    private NodeConfig load(String text) throws Exception {
        Path f = dir.resolve("node.properties");
        Files.writeString(f, text);
        return NodeConfig.load(f);
    }

    private static final String BASE = "node.id=4\nhost=127.0.0.14\nport=7201\ndata.dir=data\nmeta.addresses=127.0.0.1:7101, 127.0.0.1:7102\n";

    @Test
    void defaultsAndOverrides() throws Exception {
        NodeConfig c = load(BASE);
        assertEquals(4, c.nodeId());
        assertEquals(dir.resolve("data"), c.dataDir());
        assertEquals(List.of("127.0.0.1:7101", "127.0.0.1:7102"), c.metaAddresses());
        assertEquals(500, c.heartbeatMs());
        assertEquals(2_000_000L, c.directory().flushPolicy().maxWaitNanos());
        assertEquals(Math.max(2, Runtime.getRuntime().availableProcessors()), c.ownerThreads());
        assertEquals(-1, c.metricsPort(), "no metrics endpoint unless asked for");
        assertEquals(10_000, c.controlledShutdownTimeoutMs());
        assertTrue(c.segmentCloseAhead(), "close ahead is on by default");
        assertTrue(c.replicaFetchBatched(), "fetch sessions are on by default");
        assertEquals(64L << 20, c.indexQueueMaxBytes(), "the indexes queue up to 64 MiB of appended keys and tags by default");
        assertEquals(0, load(BASE + "index.queue.max.bytes=0\n").indexQueueMaxBytes(), "0: every record read back");
        NodeConfig o = load(BASE + "log.flush.max.wait.ms=5\nlog.queue.max.bytes=1048576\nlog.file.bytes=1048576\nreplica.max.lag.ms=3000\n"
                + "owner.threads=6\nmetrics.port=9201\ncontrolled.shutdown.timeout.ms=0\nsegment.close.ahead=false\n");
        assertEquals(false, o.segmentCloseAhead(), "segment.close.ahead=false turns it off");
        assertEquals(0, o.controlledShutdownTimeoutMs(), "0: no controlled shutdown");
        assertEquals(6, o.ownerThreads());
        assertEquals(9201, o.metricsPort());
        assertEquals(5_000_000L, o.directory().flushPolicy().maxWaitNanos());
        assertEquals(1 << 20, o.directory().maxQueuedBytes());
        assertEquals(1 << 20, o.log().segmentBytes());
        assertEquals(3000, o.replicaMaxLagMs());
    }

    @Test
    void advertisedAddressAndOutgoingBinding() throws Exception {
        NodeConfig c = load(BASE);
        assertEquals("127.0.0.14", c.registeredHost(), "registers what it binds unless told otherwise");
        assertEquals(7201, c.registeredPort(7201));
        assertEquals(null, c.outgoingHost(), "the OS picks the source address by default");
        NodeConfig p = load(BASE + "advertised.host=127.0.0.1\nadvertised.port=9000\nbind.outgoing=true\n");
        assertEquals("127.0.0.1", p.registeredHost());
        assertEquals(9000, p.registeredPort(7201), "a proxy's port, not the bound one");
        assertEquals("127.0.0.14", p.outgoingHost());
        IllegalArgumentException bool = assertThrows(IllegalArgumentException.class, () -> load(BASE + "bind.outgoing=yes\n"));
        assertTrue(bool.getMessage().contains("bind.outgoing"), bool.getMessage());
        IllegalArgumentException port = assertThrows(IllegalArgumentException.class, () -> load(BASE + "advertised.port=0\n"));
        assertTrue(port.getMessage().contains("advertised.port"), port.getMessage());
    }

    @Test
    void badSettingsFailWithTheirName() {
        IllegalArgumentException unknown = assertThrows(IllegalArgumentException.class, () -> load(BASE + "log.fush.max.wait.ms=5\n"));
        assertTrue(unknown.getMessage().contains("log.fush.max.wait.ms"), unknown.getMessage());
        IllegalArgumentException notNumber = assertThrows(IllegalArgumentException.class, () -> load(BASE + "heartbeat.ms=fast\n"));
        assertTrue(notNumber.getMessage().contains("heartbeat.ms"), notNumber.getMessage());
        IllegalArgumentException range = assertThrows(IllegalArgumentException.class, () -> load(BASE + "log.file.bytes=10\n"));
        assertTrue(range.getMessage().contains("segmentBytes"), range.getMessage());
        IllegalArgumentException queue = assertThrows(IllegalArgumentException.class, () -> load(BASE + "index.queue.max.bytes=-1\n"));
        assertTrue(queue.getMessage().contains("index.queue.max.bytes"), queue.getMessage());
        IllegalArgumentException owners = assertThrows(IllegalArgumentException.class, () -> load(BASE + "owner.threads=0\n"));
        assertTrue(owners.getMessage().contains("owner.threads"), owners.getMessage());
        IllegalArgumentException metrics = assertThrows(IllegalArgumentException.class, () -> load(BASE + "metrics.port=70000\n"));
        assertTrue(metrics.getMessage().contains("metrics.port"), metrics.getMessage());
        IllegalArgumentException shutdown = assertThrows(IllegalArgumentException.class, () -> load(BASE + "controlled.shutdown.timeout.ms=-1\n"));
        assertTrue(shutdown.getMessage().contains("controlled.shutdown.timeout.ms"), shutdown.getMessage());
        IllegalArgumentException missing = assertThrows(IllegalArgumentException.class, () -> load("host=h\nport=1\ndata.dir=d\nmeta.addresses=a:1\n"));
        assertTrue(missing.getMessage().contains("node.id"), missing.getMessage());
    }

    @Test
    void tlsSettingsAreReadRelativeToTheFileAndCheckedAtLoad() throws Exception {
        dev.segstore.protocol.rpc.TestCertificates.Identity id =
                new dev.segstore.protocol.rpc.TestCertificates(dir.resolve("tls"), "cluster").issue("node-4");
        assertEquals(null, load(BASE).tls(), "plain TCP unless tls.enabled=true");
        NodeConfig c = load(BASE + "tls.enabled=true\ntls.cert.file=tls/node-4.pem\ntls.key.file=tls/node-4-key.pem\n"
                + "tls.ca.file=tls/cluster-ca.pem\ntls.client.auth=none\n");
        assertEquals(id.cert(), c.tls().certFile());
        assertEquals(false, c.tls().requireClientAuth());
        IllegalArgumentException missing = assertThrows(IllegalArgumentException.class,
                () -> load(BASE + "tls.enabled=true\ntls.ca.file=tls/cluster-ca.pem\ntls.cert.file=tls/nope.pem\ntls.key.file=tls/node-4-key.pem\n"));
        assertTrue(missing.getMessage().contains("nope.pem does not exist") && missing.getMessage().contains("node.properties"),
                missing.getMessage());
    }

    @Test
    void severalDataDirectories() throws Exception {
        String noDir = BASE.replace("data.dir=data\n", "");
        NodeConfig c = load(noDir + "data.dirs=d1, /abs/d2\n");
        assertEquals(List.of(dir.resolve("d1"), Path.of("/abs/d2")), c.dataDirs());
        assertEquals(dir.resolve("d1"), c.dataDir(), "the first holds the index");
        assertEquals(List.of(dir.resolve("data")), load(BASE).dataDirs());
        assertTrue(assertThrows(IllegalArgumentException.class, () -> load(BASE + "data.dirs=a,b\n")).getMessage().contains("both set"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> load(noDir + "data.dirs=a,./a\n")).getMessage().contains("twice"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> load(noDir + "data.dirs= , \n")).getMessage().contains("at least one"));
    }
}
