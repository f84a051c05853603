package dev.segstore.protocol.rpc;

import com.google.protobuf.ByteString;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(60)
class RpcTest {
    private RpcServer server;
    private RpcClient client;
    private String address;
    private final CompletableFuture<Error> never = new CompletableFuture<>();
    private final java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(3);
    private final java.util.concurrent.atomic.AtomicInteger released = new java.util.concurrent.atomic.AtomicInteger();

    private Attachment bytes(int n) {
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(n);
        for (int i = 0; i < n; i++) {
            b.put((byte) n);
        }
        b.flip();
        return new Attachment() {
            @Override
            public int length() {
                return n;
            }

            @Override
            public long transferTo(long from, long count, java.nio.channels.WritableByteChannel target) throws java.io.IOException {
                java.nio.ByteBuffer part = b.duplicate().position((int) from).limit((int) (from + count));
                return target.write(part);
            }

            @Override
            public void release() {
                released.incrementAndGet();
            }
        };
    }

    @BeforeEach
    void start() throws Exception {
        // Error is a handy message type for the test's requests and answers.
        server = new RpcServer(1, 1024)
                .register(RpcHandler.of("echo", Error.parser(), r -> CompletableFuture.completedFuture(r.toBuilder().setCode(r.getCode() + 1).build())))
                .register(RpcHandler.of("fail", Error.parser(), r -> CompletableFuture.failedFuture(new RpcException(6, "not me", "h:1", 0, false))))
                .register(RpcHandler.of("rolling", Error.parser(), r -> CompletableFuture.failedFuture(
                        new RpcException(6, "full and being sealed", "", 3, true, true))))
                .register(RpcHandler.of("bug", Error.parser(), r -> {
                    throw new IllegalStateException("boom");
                }))
                .register(RpcHandler.of("hang", Error.parser(), r -> never))
                // Answers with code+1 and an attachment of `code` bytes, each (byte) code, completed on another thread.
                .register(RpcHandler.of("attach", Error.parser(), r -> CompletableFuture.supplyAsync(() ->
                        new Reply(r.toBuilder().setCode(r.getCode() + 1).build(), bytes(r.getCode())), pool)));
        InetSocketAddress bound = server.start("127.0.0.1", 0);
        address = "127.0.0.1:" + bound.getPort();
        client = new RpcClient(1, 1024);
    }

    @AfterEach
    void stop() {
        client.close();
        server.close();
        pool.shutdownNow();
    }

    @Test
    void attachmentsFollowTheirAnswersEvenWhenAnswersInterleave() throws Exception {
        List<CompletableFuture<RpcClient.Answer<Error>>> attached = new ArrayList<>();
        List<CompletableFuture<Error>> plain = new ArrayList<>();
        for (int i = 0; i < 300; i++) {
            // Attachments of 0..899 bytes: the larger ones are near the 1 KiB frame limit of this test.
            attached.add(client.callWithAttachment(address, "attach", Error.newBuilder().setCode(i * 3).build(), Error.parser(), 10_000));
            plain.add(client.call(address, "echo", Error.newBuilder().setCode(i).build(), Error.parser(), 10_000));
        }
        for (int i = 0; i < 300; i++) {
            RpcClient.Answer<Error> a = attached.get(i).get(30, TimeUnit.SECONDS);
            assertEquals(i * 3 + 1, a.message().getCode());
            assertEquals(i * 3, a.attachment().remaining(), "attachment length of call " + i);
            while (a.attachment().hasRemaining()) {
                assertEquals((byte) (i * 3), a.attachment().get(), "attachment bytes of call " + i);
            }
            assertEquals(i + 1, plain.get(i).get(30, TimeUnit.SECONDS).getCode());
        }
        int attachments = 299; // call 0 has an empty attachment, which is not sent (and released at once)
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (released.get() < attachments + 1 && System.nanoTime() < deadline) {
            Thread.onSpinWait();
        }
        assertEquals(attachments + 1, released.get(), "every attachment released once");
        // A plain call still decodes after all that.
        assertEquals(8, client.call(address, "echo", Error.newBuilder().setCode(7).build(), Error.parser(), 10_000).get(30, TimeUnit.SECONDS).getCode());
    }

    private static RpcException failure(CompletableFuture<?> f) {
        ExecutionException e = assertThrows(ExecutionException.class, () -> f.get(30, TimeUnit.SECONDS));
        assertTrue(e.getCause() instanceof RpcException, String.valueOf(e.getCause()));
        return (RpcException) e.getCause();
    }

    @Test
    void aCallOnAClosedClientFailsAtOnceInsteadOfWaitingForItsTimeout() throws Exception {
        RpcClient other = new RpcClient(1, 1024);
        assertEquals(1, other.call(address, "echo", Error.getDefaultInstance(), Error.parser(), 10_000).get(30, TimeUnit.SECONDS).getCode());
        other.close();
        // Before: a connect on the closed client's event loops never completed, so the call waited out its timeout
        // (a replica fetcher blocked so outlived its node's close, which then closed the node's RocksDB under it).
        CompletableFuture<Error> late = other.call(address, "echo", Error.getDefaultInstance(), Error.parser(), 600_000);
        ExecutionException e = assertThrows(ExecutionException.class, () -> late.get(5, TimeUnit.SECONDS),
                "a call on a closed client fails at once");
        assertTrue(e.getCause() instanceof RpcException r && r.code() == RpcException.UNAVAILABLE, String.valueOf(e.getCause()));
    }

    @Test
    void pipelinedCallsAreAnsweredByTheirIds() throws Exception {
        List<CompletableFuture<Error>> calls = new ArrayList<>();
        for (int i = 0; i < 200; i++) {
            calls.add(client.call(address, "echo", Error.newBuilder().setCode(i).build(), Error.parser(), 10_000));
        }
        for (int i = 0; i < 200; i++) {
            assertEquals(i + 1, calls.get(i).get(30, TimeUnit.SECONDS).getCode());
        }
    }

    @Test
    void aRefusalFromARollTravelsAsSuch() {
        RpcException e = failure(client.call(address, "rolling", Error.getDefaultInstance(), Error.parser(), 10_000));
        assertEquals(6, e.code());
        assertTrue(e.rolling(), "Error.rolling (field 6) is carried");
        assertTrue(e.notApplied());
        assertEquals(3, e.leaderEpoch());
        assertFalse(failure(client.call(address, "fail", Error.getDefaultInstance(), Error.parser(), 10_000)).rolling(),
                "other refusals are not from a roll");
    }

    @Test
    void errorsTravelWithCodeAndLeaderHint() {
        RpcException e = failure(client.call(address, "fail", Error.getDefaultInstance(), Error.parser(), 10_000));
        assertEquals(6, e.code());
        assertEquals("h:1", e.leaderHint());
        assertEquals(0, e.leaderEpoch(), "epoch 0 is an epoch, not 'unknown'");
        RpcException bug = failure(client.call(address, "bug", Error.getDefaultInstance(), Error.parser(), 10_000));
        assertEquals(-1, bug.leaderEpoch(), "no epoch: -1");
        assertEquals(RpcException.INTERNAL, failure(client.call(address, "bug", Error.getDefaultInstance(), Error.parser(), 10_000)).code());
        assertEquals(RpcException.INVALID_ARGUMENT, failure(client.call(address, "nope", Error.getDefaultInstance(), Error.parser(), 10_000)).code());
    }

    @Test
    void timeoutsAndUnreachableServers() throws Exception {
        assertEquals(RpcException.TIMEOUT, failure(client.call(address, "hang", Error.getDefaultInstance(), Error.parser(), 200)).code());
        int closedPort;
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            closedPort = s.getLocalPort();
        }
        assertEquals(RpcException.UNAVAILABLE, failure(client.call("127.0.0.1:" + closedPort, "echo", Error.getDefaultInstance(), Error.parser(), 5_000)).code());
    }

    @Test
    void aServerThatGoesAwayFailsCallsInFlightAtOnce() {
        CompletableFuture<Error> hanging = client.call(address, "hang", Error.getDefaultInstance(), Error.parser(), 60_000);
        server.close();
        assertEquals(RpcException.UNAVAILABLE, failure(hanging).code());
    }

    @Test
    void oversizeAndGarbageFramesCloseOnlyThatConnection() throws Exception {
        int port = Integer.parseInt(address.split(":")[1]);
        try (Socket s = new Socket("127.0.0.1", port)) {
            OutputStream out = s.getOutputStream();
            out.write(new byte[] {0, 0, 0x10, 0}); // 4096 bytes announced, limit 1024
            out.flush();
            assertEquals(-1, s.getInputStream().read());
        }
        try (Socket s = new Socket("127.0.0.1", port)) {
            s.getOutputStream().write(new byte[] {0, 0, 0, 3, (byte) 0xFF, (byte) 0xFF, (byte) 0xFF});
            s.getOutputStream().flush();
            InputStream in = s.getInputStream();
            assertEquals(-1, in.read());
        }
        Envelope bad = Envelope.newBuilder().setId(1).setMethod("echo").setPayload(ByteString.copyFrom(new byte[] {(byte) 0xFF})).build();
        // The server still serves.
        assertEquals(8, client.call(address, "echo", Error.newBuilder().setCode(7).build(), Error.parser(), 10_000).get(30, TimeUnit.SECONDS).getCode());
        // A request whose payload does not parse as the method's message gets INVALID_ARGUMENT.
        try (Socket s = new Socket("127.0.0.1", port)) {
            byte[] body = bad.toByteArray();
            s.getOutputStream().write(new byte[] {0, 0, 0, (byte) body.length});
            s.getOutputStream().write(body);
            s.getOutputStream().flush();
            byte[] len = s.getInputStream().readNBytes(4);
            int n = ((len[0] & 0xFF) << 24) | ((len[1] & 0xFF) << 16) | ((len[2] & 0xFF) << 8) | (len[3] & 0xFF);
            Envelope answer = Envelope.parseFrom(s.getInputStream().readNBytes(n));
            assertEquals(1, answer.getId());
            assertEquals(RpcException.INVALID_ARGUMENT, answer.getError().getCode());
        }
    }

    @Test
    void aConnectionHasAtMostItsLimitOfRequestsInHandlers() throws Exception {
        assertEquals(2, maxConcurrentInHandlers(new RpcServer(1, 1024, 2, 1 << 20), 6, "", 2),
                "never more than 2 requests of the connection in handlers");
    }

    @Test
    void aConnectionHasAtMostItsLimitOfRequestBytesInHandlers() throws Exception {
        String kib = "x".repeat(1000); // each request's payload: a little over 1,000 bytes
        assertEquals(2, maxConcurrentInHandlers(new RpcServer(1, 4096, 100, 3000), 6, kib, 2),
                "3,000 bytes let in two requests of about 1,000 bytes at a time, not three");
        assertEquals(1, maxConcurrentInHandlers(new RpcServer(1, 4096, 100, 500), 3, kib, 1),
                "a request larger than the byte limit is still served, alone");
    }

    /**
     * Sends {@code calls} pipelined requests to a handler that holds them, and answers one whenever
     * {@code limit} of them (or all still unanswered) are held; returns the most ever held at once. A server
     * that lets in fewer than {@code limit} stalls this until its deadline; one that lets in more shows it.
     */
    private int maxConcurrentInHandlers(RpcServer server, int calls, String message, int limit) throws Exception {
        java.util.concurrent.ConcurrentLinkedQueue<CompletableFuture<Error>> held = new java.util.concurrent.ConcurrentLinkedQueue<>();
        java.util.concurrent.atomic.AtomicInteger concurrent = new java.util.concurrent.atomic.AtomicInteger();
        java.util.concurrent.atomic.AtomicInteger max = new java.util.concurrent.atomic.AtomicInteger();
        RpcServer limited = server.register(RpcHandler.of("held", Error.parser(), r -> {
            max.accumulateAndGet(concurrent.incrementAndGet(), Math::max);
            CompletableFuture<Error> f = new CompletableFuture<>();
            held.add(f);
            return f.whenComplete((v, e) -> concurrent.decrementAndGet());
        }));
        try {
            String a = "127.0.0.1:" + limited.start("127.0.0.1", 0).getPort();
            List<CompletableFuture<Error>> sent = new ArrayList<>();
            for (int i = 0; i < calls; i++) {
                sent.add(client.call(a, "held", Error.newBuilder().setCode(i).setMessage(message).build(), Error.parser(), 30_000));
            }
            int answered = 0;
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (answered < calls) {
                if (held.size() < Math.min(limit, calls - answered)) {
                    assertTrue(System.nanoTime() < deadline, "requests stopped arriving: " + held.size() + " held");
                    Thread.onSpinWait();
                    continue;
                }
                held.poll().complete(Error.getDefaultInstance());
                answered++;
            }
            for (CompletableFuture<Error> c : sent) {
                c.get(30, TimeUnit.SECONDS);
            }
            return max.get();
        } finally {
            limited.close();
        }
    }
}
