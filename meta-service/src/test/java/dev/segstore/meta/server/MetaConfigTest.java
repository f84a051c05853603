package dev.segstore.meta.server;

import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.Properties;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class MetaConfigTest {

    private static Properties base() {
        Properties p = new Properties();
        p.setProperty("self", "127.0.0.1:7001:7101");
        p.setProperty("peers", "127.0.0.1:7001:7101");
        p.setProperty("data.dir", "data");
        return p;
    }

    private static MetaConfig parse(Properties p) {
        return MetaConfig.fromProperties(p, Path.of("/tmp/segstore-config-test"));
    }

    @Test
    void defaultsAndTheReassignSetting() {
        MetaConfig c = parse(base());
        assertEquals(6000, c.sessionTimeoutMs());
        assertEquals(15 * 60 * 1000L, c.replicaReassignAfterMs());
        Properties p = base();
        p.setProperty("replica.reassign.after.ms", "-1");
        assertEquals(-1, parse(p).replicaReassignAfterMs(), "never");
        p.setProperty("replica.reassign.after.ms", "86400000");
        assertEquals(86_400_000L, parse(p).replicaReassignAfterMs());
    }

    @Test
    void theRpcServerListensOnRpcBindPortWhenSet() {
        assertEquals(7101, parse(base()).listenRpcPort(), "self's RPC port by default");
        Properties p = base();
        p.setProperty("rpc.bind.port", "7201");
        MetaConfig c = parse(p);
        assertEquals(7201, c.listenRpcPort());
        assertEquals("127.0.0.1:7101", c.rpcAddressOf("127.0.0.1:7001"), "peers' RPC address (the proxy's) is still the one hinted");
    }

    @Test
    void badValuesFailWithTheKeyNamed() {
        Properties p = base();
        p.setProperty("replica.reassign.after.ms", "1000");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> parse(p));
        assertTrue(e.getMessage().contains("replica.reassign.after.ms"), e.getMessage());
        p.setProperty("replica.reassign.after.ms", "soon");
        e = assertThrows(IllegalArgumentException.class, () -> parse(p));
        assertTrue(e.getMessage().contains("is not a number"), e.getMessage());
        Properties q = base();
        q.setProperty("session.timeout.ms", "99999999999");
        e = assertThrows(IllegalArgumentException.class, () -> parse(q));
        assertTrue(e.getMessage().contains("out of range"), e.getMessage());
        Properties r = base();
        r.setProperty("replica.reassign.after", "1");
        e = assertThrows(IllegalArgumentException.class, () -> parse(r));
        assertTrue(e.getMessage().contains("unknown meta-service setting"), e.getMessage());
    }
}
