package dev.segstore.it.proxy;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.util.Arrays;
import java.util.Random;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The fault proxy on its own, in front of an echo server: bytes pass in order, each rule takes effect on open
 * and new connections, and lifting it delivers what was held, in order.
 */
@Timeout(60)
class FaultProxyTest {
    private ServerSocket echo;
    private Thread echoThread;
    private ProxyNetwork network;
    private FaultProxy proxy;

    @BeforeEach
    void start() throws Exception {
        echo = new ServerSocket();
        echo.bind(new InetSocketAddress("127.0.0.1", 0));
        echoThread = new Thread(this::serveEcho, "echo");
        echoThread.setDaemon(true);
        echoThread.start();
        network = new ProxyNetwork();
        network.source("node-1", "127.0.0.11");
        proxy = network.proxy("echo", new InetSocketAddress("127.0.0.1", 0), (InetSocketAddress) echo.getLocalSocketAddress());
    }

    @AfterEach
    void stop() throws IOException {
        network.close();
        echo.close();
    }

    private void serveEcho() {
        while (!echo.isClosed()) {
            try {
                Socket s = echo.accept();
                Thread t = new Thread(() -> {
                    try (s; InputStream in = s.getInputStream(); OutputStream out = s.getOutputStream()) {
                        byte[] buf = new byte[8192];
                        for (int n; (n = in.read(buf)) >= 0; ) {
                            out.write(buf, 0, n);
                            out.flush();
                        }
                    } catch (IOException ignored) {
                        // reset by a test
                    }
                }, "echo-conn");
                t.setDaemon(true);
                t.start();
            } catch (IOException e) {
                return;
            }
        }
    }

    /** A connection to the proxy from {@code localHost}. */
    private Socket connect(String localHost) throws IOException {
        Socket s = new Socket();
        s.bind(new InetSocketAddress(localHost, 0));
        s.connect(proxy.address(), 2_000);
        s.setTcpNoDelay(true);
        return s;
    }

    private static byte[] readExactly(Socket s, int n, long timeoutMs) throws IOException {
        s.setSoTimeout((int) timeoutMs);
        byte[] out = new byte[n];
        int at = 0;
        while (at < n) {
            int r = s.getInputStream().read(out, at, n - at);
            if (r < 0) {
                throw new IOException("closed after " + at + " of " + n + " bytes");
            }
            at += r;
        }
        return out;
    }

    /** True if nothing arrives on {@code s} within {@code ms}. */
    private static boolean silentFor(Socket s, int ms) throws IOException {
        s.setSoTimeout(ms);
        try {
            int r = s.getInputStream().read();
            if (r < 0) {
                fail("connection closed");
            }
            return false;
        } catch (SocketTimeoutException e) {
            return true;
        }
    }

    @Test
    void bytesPassInOrderBothWays() throws Exception {
        byte[] data = new byte[2 << 20];
        new Random(1).nextBytes(data);
        try (Socket s = connect("127.0.0.1")) {
            Thread writer = new Thread(() -> {
                try {
                    OutputStream out = s.getOutputStream();
                    for (int at = 0; at < data.length; at += 7_001) {
                        out.write(data, at, Math.min(7_001, data.length - at));
                    }
                    out.flush();
                } catch (IOException e) {
                    throw new RuntimeException(e);
                }
            });
            writer.start();
            assertArrayEquals(data, readExactly(s, data.length, 20_000));
            writer.join();
        }
    }

    @Test
    void aHeldLinkForwardsNothingAndDeliversEverythingInOrderWhenHealed() throws Exception {
        try (Socket s = connect("127.0.0.11"); Socket other = connect("127.0.0.1")) {
            network.partition("node-1", "echo");
            s.getOutputStream().write(bytes(0, 100));
            other.getOutputStream().write(bytes(0, 10));
            assertArrayEquals(bytes(0, 10), readExactly(other, 10, 5_000), "another source's connection is not held");
            assertTrue(silentFor(s, 300), "bytes passed a held link");
            try (Socket fresh = connect("127.0.0.11")) { // accepted, but nothing goes through either
                fresh.getOutputStream().write(bytes(7, 5));
                assertTrue(silentFor(fresh, 200));
                s.getOutputStream().write(bytes(100, 100));
                network.heal();
                assertArrayEquals(bytes(0, 200), readExactly(s, 200, 5_000));
                assertArrayEquals(bytes(7, 5), readExactly(fresh, 5, 5_000));
            }
        }
    }

    @Test
    void oneWayPassesOneDirectionAndHoldsTheOther() throws Exception {
        try (Socket s = connect("127.0.0.11")) {
            network.oneWay("node-1", "echo"); // node-1 -> echo passes, echo -> node-1 is held
            s.getOutputStream().write(bytes(0, 50));
            assertTrue(silentFor(s, 300), "the echo came back over the held direction");
            network.heal();
            assertArrayEquals(bytes(0, 50), readExactly(s, 50, 5_000));

            network.oneWay("echo", "node-1"); // node-1 -> echo held: the echo server gets nothing
            s.getOutputStream().write(bytes(50, 50));
            assertTrue(silentFor(s, 300));
            network.heal();
            assertArrayEquals(bytes(50, 50), readExactly(s, 50, 5_000));
        }
    }

    @Test
    void aDelayHoldsEachChunkAndItsLiftingNeverReorders() throws Exception {
        try (Socket s = connect("127.0.0.11")) {
            network.slow("node-1", "echo", 150); // each way: a round trip takes >= 300 ms
            long start = System.nanoTime();
            s.getOutputStream().write(bytes(0, 10));
            assertArrayEquals(bytes(0, 10), readExactly(s, 10, 5_000));
            long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
            assertTrue(ms >= 290, "round trip took " + ms + " ms under a 150 ms delay each way");

            s.getOutputStream().write(bytes(10, 10)); // queued for 150 ms ...
            network.heal(); // ... and what comes after the heal must not overtake it
            s.getOutputStream().write(bytes(20, 10));
            assertArrayEquals(bytes(10, 20), readExactly(s, 20, 5_000));
        }
    }

    @Test
    void aResetLinkResetsOpenAndNewConnectionsUntilHealed() throws Exception {
        try (Socket s = connect("127.0.0.11")) {
            s.getOutputStream().write(bytes(0, 5));
            assertArrayEquals(bytes(0, 5), readExactly(s, 5, 5_000));
            network.reset("node-1", "echo");
            assertThrows(IOException.class, () -> readExactly(s, 1, 5_000), "an open connection survived a reset");
        }
        assertThrows(IOException.class, () -> { // reset as it connects, or at its first read
            try (Socket s = connect("127.0.0.11")) {
                s.getOutputStream().write(bytes(0, 5));
                readExactly(s, 5, 5_000);
            }
        }, "a new connection went through a reset link");
        network.heal();
        try (Socket s = connect("127.0.0.11")) {
            s.getOutputStream().write(bytes(0, 5));
            assertArrayEquals(bytes(0, 5), readExactly(s, 5, 5_000));
        }
        assertEquals(FaultProxy.Rule.PASS, proxy.ruleOf("node-1"));
    }

    private static byte[] bytes(int from, int n) {
        byte[] b = new byte[n];
        for (int i = 0; i < n; i++) {
            b[i] = (byte) (from + i);
        }
        return Arrays.copyOf(b, n);
    }
}
