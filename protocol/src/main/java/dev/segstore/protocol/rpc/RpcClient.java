package dev.segstore.protocol.rpc;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.google.protobuf.Parser;
import io.netty.bootstrap.Bootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.nio.NioEventLoopGroup;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;

import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The client side of {@link RpcServer}: one connection per server address, opened on first use and again
 * after it closes; many calls in flight per connection, matched to answers by id. A call fails with
 * UNAVAILABLE when the connection cannot be made or closes under it, TIMEOUT after its deadline, or with the
 * server's error. Thread-safe.
 */
public final class RpcClient implements AutoCloseable {
    private final EventLoopGroup group;
    private final int maxFrameBytes;
    /** Local address outgoing connections are bound to (port 0: any); null: the operating system chooses. */
    private final String localHost;
    private final AtomicLong ids = new AtomicLong();
    private final Map<String, CompletableFuture<Channel>> channels = new ConcurrentHashMap<>();
    private final Map<Long, CompletableFuture<Frame>> pending = new ConcurrentHashMap<>();
    private final Map<Long, Channel> sentOn = new ConcurrentHashMap<>();
    private volatile boolean closed;
    /**
     * Call deadlines, for every client: a timer wheel adds and cancels in O(1) without waking an event loop,
     * where a task scheduled per call on the event loop (as before) stayed queued until its deadline.
     */
    private static final io.netty.util.HashedWheelTimer TIMEOUTS = new io.netty.util.HashedWheelTimer(
            new io.netty.util.concurrent.DefaultThreadFactory("rpc-timeouts", true), 10, TimeUnit.MILLISECONDS);

    private final io.netty.handler.ssl.SslContext tls;

    public RpcClient(int threads, int maxFrameBytes) {
        this(threads, maxFrameBytes, null, null);
    }

    /**
     * Connects over TLS with {@code tls} (trusted authorities, this process's certificate if any, host name
     * checks: docs/security.md); null: plain TCP.
     */
    public RpcClient(int threads, int maxFrameBytes, TlsConfig tls) {
        this(threads, maxFrameBytes, tls, null);
    }

    /**
     * A client whose connections leave from {@code localHost} (bound to it with an ephemeral port) instead of the
     * address the operating system picks; null or blank: the OS picks (the default). A process that has an
     * address of its own (several processes on one host, each on its own loopback address) uses it so that the
     * servers, or a proxy in between, see which process a connection comes from: the fault-injecting proxy of
     * the process fault runs tells a connection's source by it (docs/fault-proxy.md).
     */
    public RpcClient(int threads, int maxFrameBytes, String localHost) {
        this(threads, maxFrameBytes, null, localHost);
    }

    /** TLS with {@code tls} (null: plain TCP), connections from {@code localHost} (null: the OS picks). */
    public RpcClient(int threads, int maxFrameBytes, TlsConfig tls, String localHost) {
        this.tls = tls == null ? null : tls.clientContext();
        this.group = new NioEventLoopGroup(threads);
        this.maxFrameBytes = maxFrameBytes;
        this.localHost = localHost == null || localHost.isBlank() ? null : localHost.trim();
    }

    public RpcClient() {
        this(1, Frames.DEFAULT_MAX_FRAME_BYTES);
    }

    /** One thread, the default frame limit, TLS with {@code tls} (null: plain TCP). */
    public RpcClient(TlsConfig tls) {
        this(1, Frames.DEFAULT_MAX_FRAME_BYTES, tls, null);
    }

    /** Sends a request; completes with the answer's frame (the caller releases its attachment). */
    private CompletableFuture<Frame> send(String address, String method, Message request, long timeoutMs) {
        long id = ids.incrementAndGet();
        CompletableFuture<Frame> answer = new CompletableFuture<>();
        pending.put(id, answer);
        if (closed) {
            // A closed client's event loops are gone: a connect would never complete (its listener cannot run), and
            // the caller would wait for the timeout (a fetcher blocked so long outlives the node's close).
            fail(id, new RpcException(RpcException.UNAVAILABLE, "client closed"));
            return answer;
        }
        Envelope envelope = Envelope.newBuilder().setId(id).setMethod(method).setPayload(request.toByteString()).build();
        connect(address).whenComplete((ch, e) -> {
            if (e != null) {
                fail(id, new RpcException(RpcException.UNAVAILABLE, "cannot connect to " + address + ": " + e.getMessage()));
                return;
            }
            sentOn.put(id, ch);
            if (!ch.isActive()) {
                fail(id, new RpcException(RpcException.UNAVAILABLE, "connection to " + address + " closed"));
                return;
            }
            ch.writeAndFlush(envelope).addListener(f -> {
                if (!f.isSuccess()) {
                    fail(id, new RpcException(RpcException.UNAVAILABLE, "send to " + address + " failed: " + f.cause()));
                }
            });
        });
        io.netty.util.Timeout timeout = TIMEOUTS.newTimeout(t -> fail(id, new RpcException(RpcException.TIMEOUT,
                method + " to " + address + " got no answer within " + timeoutMs + " ms")), timeoutMs, TimeUnit.MILLISECONDS);
        answer.whenComplete((r, e) -> timeout.cancel());
        return answer;
    }

    /**
     * Opens a connection to {@code address} now, if none is open or opening, so that a later call does not wait for
     * the connect; completes when it is up (or fails as the connect did).
     */
    public CompletableFuture<Void> connectAhead(String address) {
        return connect(address).thenApply(ch -> null);
    }

    /** Whether a connection to {@code address} is open now (tests). */
    public boolean connected(String address) {
        CompletableFuture<Channel> c = channels.get(address);
        return c != null && c.isDone() && !c.isCompletedExceptionally() && c.join().isActive();
    }

    /** Calls {@code method} on the server at {@code address} ("host:port"). */
    public <R extends Message> CompletableFuture<R> call(String address, String method, Message request,
                                                         Parser<R> responseParser, long timeoutMs) {
        return send(address, method, request, timeoutMs).thenApply(frame -> {
            frame.release();
            return parse(frame.envelope(), method, responseParser);
        });
    }

    /** An answer and its attachment (empty when the answer had none). */
    public record Answer<R>(R message, java.nio.ByteBuffer attachment) {
    }

    /** As {@link #call}, for methods whose answer may carry an attachment (copied into a heap buffer). */
    public <R extends Message> CompletableFuture<Answer<R>> callWithAttachment(String address, String method, Message request,
                                                                            Parser<R> responseParser, long timeoutMs) {
        return send(address, method, request, timeoutMs).thenApply(frame -> {
            java.nio.ByteBuffer bytes = java.nio.ByteBuffer.allocate(frame.attachment() == null ? 0 : frame.attachment().readableBytes());
            if (frame.attachment() != null) {
                frame.attachment().readBytes(bytes);
                bytes.flip();
            }
            frame.release();
            return new Answer<>(parse(frame.envelope(), method, responseParser), bytes);
        });
    }

    private static <R extends Message> R parse(Envelope reply, String method, Parser<R> responseParser) {
        if (reply.hasError()) {
            throw RpcException.of(reply.getError());
        }
        try {
            return Frames.parsePayload(responseParser, reply.getPayload());
        } catch (InvalidProtocolBufferException ex) {
            throw new RpcException(RpcException.INTERNAL, "malformed answer to " + method + ": " + ex.getMessage());
        }
    }

    private void fail(long id, RpcException e) {
        sentOn.remove(id);
        CompletableFuture<Frame> f = pending.remove(id);
        if (f != null) {
            f.completeExceptionally(e);
        }
    }

    private CompletableFuture<Channel> connect(String address) {
        CompletableFuture<Channel> existing = channels.get(address);
        if (existing != null && (!existing.isDone() || (!existing.isCompletedExceptionally() && existing.join().isActive()))) {
            return existing;
        }
        CompletableFuture<Channel> fresh = new CompletableFuture<>();
        if (existing == null ? channels.putIfAbsent(address, fresh) != null : !channels.replace(address, existing, fresh)) {
            return connect(address);
        }
        int colon = address.lastIndexOf(':');
        if (colon < 0) {
            fresh.completeExceptionally(new IllegalArgumentException("address '" + address + "' is not host:port"));
            return fresh;
        }
        String host = address.substring(0, colon);
        int port = Integer.parseInt(address.substring(colon + 1));
        Bootstrap b = new Bootstrap().group(group).channel(NioSocketChannel.class)
                .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, 3000)
                .option(ChannelOption.TCP_NODELAY, true)
                .handler(new ChannelInitializer<SocketChannel>() {
                    @Override
                    protected void initChannel(SocketChannel ch) {
                        if (tls != null) {
                            ch.pipeline().addLast("tls", tls.newHandler(ch.alloc(), host, port));
                        }
                        Frames.install(ch.pipeline(), maxFrameBytes);
                        ch.pipeline().addLast(new SimpleChannelInboundHandler<Frame>() {
                            @Override
                            protected void channelRead0(ChannelHandlerContext ctx, Frame reply) {
                                sentOn.remove(reply.envelope().getId());
                                CompletableFuture<Frame> f = pending.remove(reply.envelope().getId());
                                if (f == null || !f.complete(reply)) {
                                    reply.release(); // nobody waits for it any more (timed out)
                                }
                            }

                            @Override
                            public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
                                ctx.close();
                            }

                            @Override
                            public void channelInactive(ChannelHandlerContext ctx) {
                                // Calls sent on a connection that closed will never be answered: fail them now.
                                for (Map.Entry<Long, Channel> e : sentOn.entrySet()) {
                                    if (e.getValue() == ctx.channel()) {
                                        fail(e.getKey(), new RpcException(RpcException.UNAVAILABLE,
                                                "connection to " + address + " closed before the answer"));
                                    }
                                }
                            }
                        });
                    }
                });
        ChannelFuture cf = localHost == null ? b.connect(host, port)
                : b.connect(new java.net.InetSocketAddress(host, port), new java.net.InetSocketAddress(localHost, 0));
        cf.addListener(f -> {
            if (!f.isSuccess()) {
                channels.remove(address, fresh);
                fresh.completeExceptionally(f.cause());
                return;
            }
            io.netty.handler.ssl.SslHandler ssl = cf.channel().pipeline().get(io.netty.handler.ssl.SslHandler.class);
            if (ssl == null) {
                fresh.complete(cf.channel());
                return;
            }
            // Over TLS the connection is usable once the handshake is done; a refused certificate fails the calls
            // with the reason rather than as a connection closed under them.
            ssl.handshakeFuture().addListener(h -> {
                if (h.isSuccess()) {
                    fresh.complete(cf.channel());
                } else {
                    channels.remove(address, fresh);
                    cf.channel().close();
                    fresh.completeExceptionally(new javax.net.ssl.SSLException("TLS handshake failed: " + rootMessage(h.cause())));
                }
            });
        });
        return fresh;
    }

    private static String rootMessage(Throwable t) {
        Throwable c = t;
        while (c.getCause() != null && c.getCause() != c) {
            c = c.getCause();
        }
        return c == t ? String.valueOf(t.getMessage()) : t.getMessage() + " (" + c.getMessage() + ")";
    }

    @Override
    public void close() {
        closed = true; // before the pending calls are failed below: a call sent from now on fails at once (send)
        for (CompletableFuture<Channel> c : channels.values()) {
            c.thenAccept(Channel::close);
        }
        group.shutdownGracefully(0, 2, TimeUnit.SECONDS).syncUninterruptibly();
        for (Long id : pending.keySet()) {
            fail(id, new RpcException(RpcException.UNAVAILABLE, "client closed"));
        }
    }
}
