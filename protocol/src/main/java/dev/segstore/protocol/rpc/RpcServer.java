package dev.segstore.protocol.rpc;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.nio.NioEventLoopGroup;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.net.InetSocketAddress;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A framed protobuf RPC server on netty. Requests are dispatched by method name to {@link RpcHandler}s on the
 * connection's event loop; handlers answer asynchronously, so one connection pipelines many requests. An
 * unknown method gets an INVALID_ARGUMENT answer; an envelope that does not parse, or a frame above the limit,
 * closes that connection only. The server never dies of bad input.
 */
public final class RpcServer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(RpcServer.class);
    private final Map<String, RpcHandler<?>> handlers = new ConcurrentHashMap<>();
    private final EventLoopGroup boss = new NioEventLoopGroup(1);
    private final EventLoopGroup workers;
    private final int maxFrameBytes;
    private final int maxInFlightPerConnection;
    private final long maxInFlightBytesPerConnection;
    private Channel channel;
    private boolean closed;
    private io.netty.handler.ssl.SslContext tls;
    private volatile Observer observer;
    /** The connection of the request a handler is being called for, on the event loop (see {@link #caller}). */
    private static final ThreadLocal<Caller> CALLER = new ThreadLocal<>();

    /**
     * A connection requests come on, as a handler sees it during its call ({@link #caller}): equal for every
     * request of one connection. {@link #onClose} runs a task once the connection closes: its peer closed it, or
     * the peer's process died (the kernel closes a dead process's sockets at once), or the network failed it.
     */
    public static final class Caller {
        private final Channel channel;

        private Caller(Channel channel) {
            this.channel = channel;
        }

        /** Runs {@code task} once the connection is closed (at once if it is already). */
        public void onClose(Runnable task) {
            channel.closeFuture().addListener(f -> task.run());
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Caller c && c.channel == channel;
        }

        @Override
        public int hashCode() {
            return System.identityHashCode(channel);
        }

        @Override
        public String toString() {
            return String.valueOf(channel.remoteAddress());
        }
    }

    /** The connection of the request this thread's handler call is for; null outside a handler's call. */
    public static Caller caller() {
        return CALLER.get();
    }

    /** Told of every answer (metrics): the method, the time from dispatch to answer, and the error code (0: ok). */
    @FunctionalInterface
    public interface Observer {
        void answered(String method, long nanos, int errorCode);
    }

    /** Sets the one {@link Observer} of this server's answers (null: none). */
    public RpcServer observe(Observer o) {
        this.observer = o;
        return this;
    }

    public RpcServer(int workerThreads, int maxFrameBytes) {
        this(workerThreads, maxFrameBytes, DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_IN_FLIGHT_BYTES);
    }

    /** Requests a connection may have in handlers at once; more are queued and the socket is no longer read. */
    public static final int DEFAULT_MAX_IN_FLIGHT = 1024;
    /** Request payload bytes a connection may have in handlers at once (one request is always let in). */
    public static final long DEFAULT_MAX_IN_FLIGHT_BYTES = 64L << 20;

    public RpcServer(int workerThreads, int maxFrameBytes, int maxInFlightPerConnection, long maxInFlightBytesPerConnection) {
        if (maxInFlightPerConnection < 1 || maxInFlightBytesPerConnection < 1) {
            throw new IllegalArgumentException("in-flight limits must be >= 1: " + maxInFlightPerConnection + ", "
                    + maxInFlightBytesPerConnection);
        }
        this.workers = new NioEventLoopGroup(workerThreads);
        this.maxFrameBytes = maxFrameBytes;
        this.maxInFlightPerConnection = maxInFlightPerConnection;
        this.maxInFlightBytesPerConnection = maxInFlightBytesPerConnection;
    }

    public RpcServer register(RpcHandler<?> handler) {
        if (handlers.putIfAbsent(handler.method(), handler) != null) {
            throw new IllegalArgumentException("method " + handler.method() + " registered twice");
        }
        return this;
    }

    /**
     * Serves TLS only, with {@code config}'s certificate, asking clients for theirs if it requires client
     * authentication (docs/security.md). Call before {@link #start}; null leaves the server in plain TCP.
     */
    public RpcServer tls(TlsConfig config) {
        this.tls = config == null ? null : config.serverContext();
        return this;
    }

    /** Binds and starts serving; returns the bound address (port 0 picks a free port). */
    public InetSocketAddress start(String host, int port) throws InterruptedException {
        ServerBootstrap b = new ServerBootstrap().group(boss, workers).channel(NioServerSocketChannel.class)
                .childHandler(new ChannelInitializer<SocketChannel>() {
                    @Override
                    protected void initChannel(SocketChannel ch) {
                        if (tls != null) {
                            io.netty.handler.ssl.SslHandler ssl = tls.newHandler(ch.alloc());
                            ssl.handshakeFuture().addListener(f -> {
                                if (!f.isSuccess()) {
                                    LOG.warn("TLS handshake with {} failed: {}", ch.remoteAddress(), f.cause().toString());
                                }
                            });
                            ch.pipeline().addLast("tls", ssl);
                        }
                        Frames.install(ch.pipeline(), maxFrameBytes);
                        ch.pipeline().addLast("dispatch", new Dispatcher());
                    }
                });
        channel = b.bind(host, port).sync().channel();
        InetSocketAddress bound = (InetSocketAddress) channel.localAddress();
        LOG.info("RPC server listening on {}:{}{}", host, bound.getPort(), tls == null ? "" : " (TLS)");
        return bound;
    }

    /**
     * One per connection, on its event loop. Back-pressure: at most {@code maxInFlightPerConnection} requests
     * of a connection, and {@code maxInFlightBytesPerConnection} bytes of their payloads, are in handlers at
     * once (a single request of any allowed size is always let in); further requests wait in a queue and the
     * socket stops being read until answers go out, so a client that pipelines without limit fills its own TCP
     * window, not the server's memory.
     */
    private final class Dispatcher extends SimpleChannelInboundHandler<Frame> {
        private final java.util.ArrayDeque<Envelope> queued = new java.util.ArrayDeque<>();
        private Caller caller;
        private int inFlight;
        private long inFlightBytes;

        @Override
        protected void channelRead0(ChannelHandlerContext ctx, Frame request) {
            request.release(); // no request takes an attachment
            queued.add(request.envelope());
            drain(ctx);
        }

        private void drain(ChannelHandlerContext ctx) {
            while (!queued.isEmpty() && inFlight < maxInFlightPerConnection
                    && (inFlight == 0 || inFlightBytes + queued.peek().getPayload().size() <= maxInFlightBytesPerConnection)) {
                Envelope next = queued.poll();
                inFlight++;
                inFlightBytes += next.getPayload().size();
                dispatch(ctx, next);
            }
            ctx.channel().config().setAutoRead(queued.isEmpty() && inFlight < maxInFlightPerConnection
                    && inFlightBytes < maxInFlightBytesPerConnection);
        }

        private void done(ChannelHandlerContext ctx, int bytes) {
            ctx.executor().execute(() -> {
                inFlight--;
                inFlightBytes -= bytes;
                drain(ctx);
            });
        }

        private void dispatch(ChannelHandlerContext ctx, Envelope request) {
            long id = request.getId();
            int bytes = request.getPayload().size();
            RpcHandler<?> handler = handlers.get(request.getMethod());
            long started = System.nanoTime();
            if (handler == null) {
                reply(ctx, id, null, new RpcException(RpcException.INVALID_ARGUMENT, "unknown method '" + request.getMethod() + "'"));
                done(ctx, bytes);
                return;
            }
            CompletableFuture<?> answer;
            if (caller == null) {
                caller = new Caller(ctx.channel());
            }
            CALLER.set(caller);
            try {
                answer = invoke(handler, request);
            } catch (InvalidProtocolBufferException e) {
                reply(ctx, id, null, new RpcException(RpcException.INVALID_ARGUMENT,
                        "malformed " + request.getMethod() + " request: " + e.getMessage()));
                done(ctx, bytes);
                return;
            } catch (RuntimeException e) {
                answer = CompletableFuture.failedFuture(e);
            } finally {
                CALLER.remove();
            }
            answer.whenComplete((response, failure) -> {
                reply(ctx, id, response, failure);
                done(ctx, bytes);
                Observer o = observer;
                if (o != null) {
                    Throwable cause = failure instanceof CompletionException && failure.getCause() != null ? failure.getCause() : failure;
                    o.answered(request.getMethod(), System.nanoTime() - started,
                            cause == null ? 0 : cause instanceof RpcException re ? re.code() : RpcException.INTERNAL);
                }
            });
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            if (cause instanceof io.netty.handler.codec.DecoderException && cause.getCause() instanceof javax.net.ssl.SSLException) {
                LOG.debug("Closing RPC connection from {}: {}", ctx.channel().remoteAddress(), cause.toString()); // logged at the handshake
            } else {
                LOG.warn("Closing RPC connection from {}: {}", ctx.channel().remoteAddress(), cause.toString());
            }
            ctx.close();
        }
    }

    @SuppressWarnings("unchecked")
    private static <Q extends Message> CompletableFuture<?> invoke(RpcHandler<Q> handler, Envelope request)
            throws InvalidProtocolBufferException {
        Q parsed = Frames.parsePayload(handler.parser(), request.getPayload());
        return handler.handle().apply(parsed);
    }

    private static void reply(ChannelHandlerContext ctx, long id, Object response, Throwable failure) {
        Envelope.Builder out = Envelope.newBuilder().setId(id);
        if (failure != null) {
            Throwable cause = failure instanceof CompletionException && failure.getCause() != null ? failure.getCause() : failure;
            RpcException e = cause instanceof RpcException re ? re
                    : new RpcException(RpcException.INTERNAL, cause.toString());
            if (!(cause instanceof RpcException)) {
                LOG.warn("RPC handler failed", cause);
            }
            out.setError(e.toError());
        } else if (response instanceof Reply r) {
            out.setPayload(r.message().toByteString());
            if (r.attachment() != null && r.attachment().length() > 0) {
                Frames.writeWithAttachment(ctx.channel(), out.build(), r.attachment());
                return;
            }
            if (r.attachment() != null) {
                r.attachment().release();
            }
        } else {
            out.setPayload(((Message) response).toByteString());
        }
        ctx.writeAndFlush(out.build());
    }

    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (channel != null) {
            channel.close().syncUninterruptibly();
        }
        boss.shutdownGracefully(0, 2, java.util.concurrent.TimeUnit.SECONDS).syncUninterruptibly();
        workers.shutdownGracefully(0, 2, java.util.concurrent.TimeUnit.SECONDS).syncUninterruptibly();
    }
}
