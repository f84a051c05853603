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
    private final AtomicLong ids = new AtomicLong();
    private final Map<String, CompletableFuture<Channel>> channels = new ConcurrentHashMap<>();
    private final Map<Long, CompletableFuture<Envelope>> pending = new ConcurrentHashMap<>();
    private final Map<Long, Channel> sentOn = new ConcurrentHashMap<>();

    public RpcClient(int threads, int maxFrameBytes) {
        this.group = new NioEventLoopGroup(threads);
        this.maxFrameBytes = maxFrameBytes;
    }

    public RpcClient() {
        this(1, Frames.DEFAULT_MAX_FRAME_BYTES);
    }

    /** Calls {@code method} on the server at {@code address} ("host:port"). */
    public <R extends Message> CompletableFuture<R> call(String address, String method, Message request,
                                                         Parser<R> responseParser, long timeoutMs) {
        long id = ids.incrementAndGet();
        CompletableFuture<Envelope> answer = new CompletableFuture<>();
        pending.put(id, answer);
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
        group.schedule(() -> fail(id, new RpcException(RpcException.TIMEOUT,
                method + " to " + address + " got no answer within " + timeoutMs + " ms")), timeoutMs, TimeUnit.MILLISECONDS);
        return answer.thenApply(reply -> {
            if (reply.hasError()) {
                throw RpcException.of(reply.getError());
            }
            try {
                return responseParser.parseFrom(reply.getPayload());
            } catch (InvalidProtocolBufferException ex) {
                throw new RpcException(RpcException.INTERNAL, "malformed answer to " + method + ": " + ex.getMessage());
            }
        });
    }

    private void fail(long id, RpcException e) {
        sentOn.remove(id);
        CompletableFuture<Envelope> f = pending.remove(id);
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
                        Frames.install(ch.pipeline(), maxFrameBytes);
                        ch.pipeline().addLast(new SimpleChannelInboundHandler<Envelope>() {
                            @Override
                            protected void channelRead0(ChannelHandlerContext ctx, Envelope reply) {
                                sentOn.remove(reply.getId());
                                CompletableFuture<Envelope> f = pending.remove(reply.getId());
                                if (f != null) {
                                    f.complete(reply);
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
        ChannelFuture cf = b.connect(host, port);
        cf.addListener(f -> {
            if (f.isSuccess()) {
                fresh.complete(cf.channel());
            } else {
                channels.remove(address, fresh);
                fresh.completeExceptionally(f.cause());
            }
        });
        return fresh;
    }

    @Override
    public void close() {
        for (CompletableFuture<Channel> c : channels.values()) {
            c.thenAccept(Channel::close);
        }
        group.shutdownGracefully(0, 2, TimeUnit.SECONDS).syncUninterruptibly();
        for (Long id : pending.keySet()) {
            fail(id, new RpcException(RpcException.UNAVAILABLE, "client closed"));
        }
    }
}
