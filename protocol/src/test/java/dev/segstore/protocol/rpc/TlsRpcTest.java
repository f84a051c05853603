package dev.segstore.protocol.rpc;

import org.bouncycastle.asn1.x509.GeneralName;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * TLS on the RPC ports, with a certificate authority made at test time: mutual TLS works (answers with
 * attachments too, which go out as copied buffers instead of file regions), and every client the server must not
 * serve is refused at the handshake: no certificate, one from another authority, plain TCP. A client refuses a
 * server whose certificate does not name the host it dialled.
 */
@Timeout(60)
class TlsRpcTest {
    @TempDir
    Path dir;
    private final List<AutoCloseable> open = new ArrayList<>();

    @AfterEach
    void close() throws Exception {
        for (int i = open.size() - 1; i >= 0; i--) {
            open.get(i).close();
        }
    }

    private static Attachment bytes(int n) {
        ByteBuffer b = ByteBuffer.allocate(n);
        for (int i = 0; i < n; i++) {
            b.put((byte) (i * 31));
        }
        b.flip();
        return new Attachment() {
            @Override
            public int length() {
                return n;
            }

            @Override
            public long transferTo(long from, long count, WritableByteChannel target) throws java.io.IOException {
                return target.write(b.duplicate().position((int) from).limit((int) (from + count)));
            }

            @Override
            public void release() {
            }
        };
    }

    /** A TLS server with {@code tls}: "echo" answers code + 1; "attach" adds an attachment of {@code code} bytes. */
    private String server(TlsConfig tls) throws Exception {
        RpcServer server = new RpcServer(1, 8 << 20)
                .register(RpcHandler.of("echo", Error.parser(), r -> CompletableFuture.completedFuture(r.toBuilder().setCode(r.getCode() + 1).build())))
                .register(RpcHandler.of("attach", Error.parser(), r -> CompletableFuture.completedFuture(
                        new Reply(r.toBuilder().setCode(r.getCode() + 1).build(), bytes(r.getCode())))))
                .tls(tls);
        open.add(server);
        return "127.0.0.1:" + server.start("127.0.0.1", 0).getPort();
    }

    private RpcClient client(TlsConfig tls) {
        RpcClient c = new RpcClient(1, 8 << 20, tls);
        open.add(c);
        return c;
    }

    private static Error echo(RpcClient c, String address, int code) throws Exception {
        return c.call(address, "echo", Error.newBuilder().setCode(code).build(), Error.parser(), 10_000).get(20, TimeUnit.SECONDS);
    }

    private static String refusal(RpcClient c, String address) {
        ExecutionException e = assertThrows(ExecutionException.class, () -> echo(c, address, 1), "the call must be refused");
        return e.getCause().toString();
    }

    @Test
    void mutualTlsServesCallsAndAttachments() throws Exception {
        TestCertificates ca = new TestCertificates(dir, "cluster");
        String address = server(ca.issue("server").config());
        RpcClient c = client(ca.issue("client").config());
        assertEquals(42, echo(c, address, 41).getCode());
        int n = 3 << 20; // several TLS records
        RpcClient.Answer<Error> a = c.callWithAttachment(address, "attach", Error.newBuilder().setCode(n).build(), Error.parser(), 10_000)
                .get(20, TimeUnit.SECONDS);
        assertEquals(n + 1, a.message().getCode());
        assertEquals(n, a.attachment().remaining(), "the whole attachment came through TLS");
        for (int i = 0; i < n; i += 4093) {
            assertEquals((byte) (i * 31), a.attachment().get(i), "byte " + i);
        }
    }

    @Test
    void aClientWithoutACertificateIsRefusedWhenTheServerRequiresOne() throws Exception {
        TestCertificates ca = new TestCertificates(dir, "cluster");
        String address = server(ca.issue("server").config());
        String why = refusal(client(TlsConfig.client(ca.caFile(), null, null)), address);
        assertTrue(why.contains("UNAVAILABLE") || why.toLowerCase().contains("handshake") || why.contains("closed"), why);
        // The server is unharmed: a client with a certificate is served.
        assertEquals(2, echo(client(ca.issue("client").config()), address, 1).getCode());
    }

    @Test
    void aServerThatDoesNotRequireCertificatesServesClientsWithoutOne() throws Exception {
        TestCertificates ca = new TestCertificates(dir, "cluster");
        TestCertificates.Identity s = ca.issue("server");
        String address = server(new TlsConfig(s.cert(), s.key(), s.ca(), false, true));
        assertEquals(8, echo(client(TlsConfig.client(ca.caFile(), null, null)), address, 7).getCode());
    }

    @Test
    void aCertificateFromAnotherAuthorityIsRefusedBothWays() throws Exception {
        TestCertificates ca = new TestCertificates(dir.resolve("a"), "cluster");
        TestCertificates other = new TestCertificates(dir.resolve("b"), "intruder");
        String address = server(ca.issue("server").config());
        // The intruder's client does not trust the server, and the server would not trust the intruder's certificate.
        String why = refusal(client(other.issue("client").config()), address);
        assertTrue(why.contains("handshake"), why);
        // A client trusting the cluster's authority but presenting an intruder's certificate is refused by the server.
        TestCertificates.Identity stolen = other.issue("client2");
        refusal(client(new TlsConfig(stolen.cert(), stolen.key(), ca.caFile(), false, true)), address);
    }

    @Test
    void aPlainTcpClientGetsNoAnswerFromATlsServer() throws Exception {
        TestCertificates ca = new TestCertificates(dir, "cluster");
        String address = server(ca.issue("server").config());
        refusal(client(null), address);
    }

    @Test
    void aClientChecksThatTheServerCertificateNamesTheHostItDialled() throws Exception {
        TestCertificates ca = new TestCertificates(dir, "cluster");
        TestCertificates.Identity elsewhere = ca.issue("elsewhere", new GeneralName(GeneralName.dNSName, "elsewhere.example"));
        String address = server(elsewhere.config());
        TestCertificates.Identity me = ca.issue("client");
        String why = refusal(client(me.config()), address);
        assertTrue(why.contains("handshake"), why);
        // With the check off (tls.verify.hostname=false) the same server is reached.
        assertEquals(6, echo(client(new TlsConfig(me.cert(), me.key(), me.ca(), false, false)), address, 5).getCode());
    }

    @Test
    void settingsAreReadAndCheckedWithClearErrors() throws Exception {
        TestCertificates ca = new TestCertificates(dir, "cluster");
        TestCertificates.Identity id = ca.issue("node");
        java.util.Map<String, String> s = new java.util.HashMap<>();
        assertEquals(null, TlsConfig.fromSettings(s::get, dir, "node.properties"), "off unless tls.enabled=true");
        s.put("tls.enabled", "true");
        s.put("tls.cert.file", id.cert().getFileName().toString()); // relative to the config file's directory
        s.put("tls.key.file", id.key().toString());
        s.put("tls.ca.file", id.ca().toString());
        TlsConfig c = TlsConfig.fromSettings(s::get, dir, "node.properties");
        assertEquals(id.cert(), c.certFile());
        assertTrue(c.requireClientAuth() && c.verifyHostname(), "client certificates required and host names checked by default");
        s.put("tls.client.auth", "maybe");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> TlsConfig.fromSettings(s::get, dir, "node.properties"));
        assertTrue(e.getMessage().contains("tls.client.auth = 'maybe' must be required or none"), e.getMessage());
        s.put("tls.client.auth", "none");
        s.put("tls.ca.file", "missing.pem");
        e = assertThrows(IllegalArgumentException.class, () -> TlsConfig.fromSettings(s::get, dir, "node.properties"));
        assertTrue(e.getMessage().contains("missing.pem does not exist"), e.getMessage());
        s.remove("tls.ca.file");
        e = assertThrows(IllegalArgumentException.class, () -> TlsConfig.fromSettings(s::get, dir, "node.properties"));
        assertTrue(e.getMessage().contains("tls.ca.file is required"), e.getMessage());
    }
}
