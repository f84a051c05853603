package dev.segstore.it.proxy;

import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

/**
 * A TCP proxy in front of one destination (a storage node's or a meta node's RPC port) whose links a test
 * harness controls at run time. It listens on a loopback address, and forwards each accepted connection to its
 * target over a connection of its own. Which process a connection comes from (its <i>source</i>: "node-1",
 * "client", ...) is told by the connection's source address ({@code sourceOf}): each process of a fault cluster
 * binds its outgoing connections to a loopback address of its own (storage nodes: {@code bind.outgoing=true}).
 *
 * <p>A {@link Rule} per source says what happens to that source's connections, from now on and to those already
 * open: each direction ({@code up}: source to destination, {@code down}: back) passes or is held, each chunk may be
 * delayed, or every connection is reset. Held bytes are kept in order (and reading stops, so TCP pushes back on
 * the sender) and delivered when the rule is lifted, as TCP delivers after a partition heals; nothing is dropped
 * from the middle of a stream (a framed protocol would read garbage), only whole connections by a reset. Every
 * direction of every connection is one FIFO whose chunks leave no earlier than the chunk before them, so a delay
 * lifted or changed, a hold released, never reorders bytes within a connection.
 *
 * <p>Threads: each connection lives on one event loop of {@code group} (both of its channels); rule changes
 * are handed to it. Thread-safe.
 */
public final class FaultProxy implements AutoCloseable {
    /** What a direction of a connection does. */
    public enum Flow { PASS, HOLD }

    /**
     * What a source's connections get.
     *
     * @param up      bytes from the source to the destination
     * @param down    bytes from the destination back to the source
     * @param delayMs each chunk, both ways, leaves no earlier than this after it arrived
     * @param reset   open connections are reset (RST) and new ones are reset as soon as they are accepted
     */
    public record Rule(Flow up, Flow down, long delayMs, boolean reset) {
        public static final Rule PASS = new Rule(Flow.PASS, Flow.PASS, 0, false);
        /** A blackhole: connections are accepted, nothing goes through either way (held until the rule goes). */
        public static final Rule HOLD = new Rule(Flow.HOLD, Flow.HOLD, 0, false);
        public static final Rule RESET = new Rule(Flow.PASS, Flow.PASS, 0, true);

        public static Rule delay(long ms) {
            return new Rule(Flow.PASS, Flow.PASS, ms, false);
        }

        /** Source to destination passes, the way back is held. */
        public static Rule upOnly() {
            return new Rule(Flow.PASS, Flow.HOLD, 0, false);
        }

        /** Destination to source passes, source to destination is held. */
        public static Rule downOnly() {
            return new Rule(Flow.HOLD, Flow.PASS, 0, false);
        }
    }

    /** Past this many held or delayed bytes in one direction, the proxy stops reading from its sender. */
    private static final int MAX_QUEUED_BYTES = 1 << 20;

    private final String name;
    private final InetSocketAddress target;
    private final Function<InetAddress, String> sourceOf;
    private final EventLoopGroup group;
    private final Channel listener;
    private final Map<String, Rule> rules = new ConcurrentHashMap<>();
    private final Set<Connection> connections = ConcurrentHashMap.newKeySet();
    private final Set<String> sourcesSeen = ConcurrentHashMap.newKeySet();
    private volatile boolean closed;

    /**
     * @param name     for messages: the destination's name ("node-2")
     * @param listen   where to listen (port 0: any free one)
     * @param target   where to forward
     * @param sourceOf the source name of a connection's remote address
     * @param group    the event loops (shared by a cluster's proxies; the caller closes it)
     */
    public FaultProxy(String name, InetSocketAddress listen, InetSocketAddress target, Function<InetAddress, String> sourceOf,
                      EventLoopGroup group) throws InterruptedException {
        this.name = name;
        this.target = target;
        this.sourceOf = sourceOf;
        this.group = group;
        this.listener = new ServerBootstrap().group(group).channel(NioServerSocketChannel.class)
                .option(ChannelOption.SO_REUSEADDR, true)
                .childOption(ChannelOption.AUTO_READ, false)
                .childOption(ChannelOption.TCP_NODELAY, true)
                .childHandler(new ChannelInitializer<SocketChannel>() {
                    @Override
                    protected void initChannel(SocketChannel ch) {
                        accepted(ch);
                    }
                })
                .bind(listen).sync().channel();
    }

    public String name() {
        return name;
    }

    /** Where it listens. */
    public InetSocketAddress address() {
        return (InetSocketAddress) listener.localAddress();
    }

    /** "host:port" of {@link #address()}. */
    public String hostPort() {
        return address().getAddress().getHostAddress() + ":" + address().getPort();
    }

    public InetSocketAddress target() {
        return target;
    }

    /**
     * Sets what {@code source}'s connections get, now and from now on; {@link Rule#PASS} lifts any rule. Returns
     * once every open connection of the source has it: bytes sent after this returns get the new rule.
     */
    public void rule(String source, Rule rule) {
        if (rule.equals(Rule.PASS)) {
            rules.remove(source);
        } else {
            rules.put(source, rule);
        }
        List<io.netty.util.concurrent.Future<?>> applied = new ArrayList<>();
        for (Connection c : connections) {
            if (c.source.equals(source)) {
                applied.add(c.inbound.eventLoop().submit(() -> c.apply(rule)));
            }
        }
        for (io.netty.util.concurrent.Future<?> f : applied) {
            f.awaitUninterruptibly(5, TimeUnit.SECONDS);
        }
    }

    /** The rule {@code source}'s connections get now. */
    public Rule ruleOf(String source) {
        return rules.getOrDefault(source, Rule.PASS);
    }

    /** Lifts every rule: held bytes are delivered in order, delays end (after what is queued). */
    public void heal() {
        for (String source : Set.copyOf(rules.keySet())) {
            rule(source, Rule.PASS);
        }
    }

    /** Every source a connection has come from so far (to check a cluster is wired through the proxy). */
    public Set<String> sourcesSeen() {
        return Set.copyOf(sourcesSeen);
    }

    /** Connections open now (tests). */
    public int openConnections() {
        return connections.size();
    }

    private void accepted(SocketChannel inbound) {
        String source = sourceOf.apply(inbound.remoteAddress().getAddress());
        sourcesSeen.add(source);
        Connection c = new Connection(source, inbound);
        connections.add(c); // first: a rule set from now on reaches it; one set before is read next
        inbound.closeFuture().addListener(f -> connections.remove(c));
        c.rule = ruleOf(source);
        if (closed || c.rule.reset()) {
            connections.remove(c);
            reset(inbound);
            return;
        }
        inbound.pipeline().addLast(c.upHandler());
        new Bootstrap().group(inbound.eventLoop()).channel(NioSocketChannel.class)
                .option(ChannelOption.AUTO_READ, false)
                .option(ChannelOption.TCP_NODELAY, true)
                .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, 3_000)
                .handler(c.downHandler())
                .connect(target).addListener((ChannelFutureListener) f -> {
                    if (!f.isSuccess()) {
                        reset(inbound); // the destination is down: the source sees its connection reset
                        return;
                    }
                    c.connected(f.channel());
                });
    }

    /** Closes with SO_LINGER 0: the peer gets an RST, not a FIN. */
    private static void reset(Channel ch) {
        if (ch.isOpen()) {
            try {
                ch.config().setOption(ChannelOption.SO_LINGER, 0);
            } catch (RuntimeException ignored) {
                // closing anyway
            }
            ch.close();
        }
    }

    /** One proxied connection: the source's channel, the channel to the target, a {@link Pipe} each way. */
    private final class Connection {
        final String source;
        final Channel inbound;
        Channel outbound;
        Rule rule;
        final Pipe up;
        final Pipe down;

        Connection(String source, Channel inbound) {
            this.source = source;
            this.inbound = inbound;
            this.rule = Rule.PASS;
            this.up = new Pipe(inbound);
            this.down = new Pipe(null);
            up.opposite = down;
            down.opposite = up;
        }

        void connected(Channel out) {
            outbound = out;
            up.to = out;
            down.from = out;
            down.to = inbound;
            if (!inbound.isActive()) {
                out.close();
                return;
            }
            apply(rule);
            up.drain();
            out.read();
            inbound.read();
            inbound.config().setAutoRead(true);
            out.config().setAutoRead(true);
        }

        /** On the event loop. */
        void apply(Rule r) {
            rule = r;
            if (r.reset()) {
                reset(inbound);
                if (outbound != null) {
                    reset(outbound);
                }
                up.release();
                down.release();
                return;
            }
            up.flow = r.up();
            up.delayNanos = TimeUnit.MILLISECONDS.toNanos(r.delayMs());
            down.flow = r.down();
            down.delayNanos = up.delayNanos;
            up.drain();
            down.drain();
        }

        ChannelInboundHandlerAdapter upHandler() {
            return new Side(up, () -> outbound);
        }

        ChannelInboundHandlerAdapter downHandler() {
            return new Side(down, () -> inbound);
        }
    }

    /** Reads a channel into its pipe; when the channel closes, the other side closes once the pipe is empty. */
    private static final class Side extends ChannelInboundHandlerAdapter {
        private final Pipe pipe;
        private final java.util.function.Supplier<Channel> other;

        Side(Pipe pipe, java.util.function.Supplier<Channel> other) {
            this.pipe = pipe;
            this.other = other;
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            pipe.offer((ByteBuf) msg);
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) {
            // The sender is gone: what it sent still goes through (in order, when the rule lets it), then the
            // other side closes. Not connected yet: the connect's listener sees the source gone.
            pipe.closeAfterDrain = true;
            pipe.drain();
            pipe.opposite().release(); // what was queued for this channel can no longer be delivered
        }

        @Override
        public void channelWritabilityChanged(ChannelHandlerContext ctx) {
            // this channel is the destination of the opposite pipe; it can take more
            pipe.opposite().drain();
            ctx.fireChannelWritabilityChanged();
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            reset(ctx.channel());
            Channel o = other.get();
            if (o != null) {
                reset(o);
            }
        }
    }

    private record Chunk(ByteBuf bytes, long releaseNanos) {
    }

    /**
     * One direction of a connection: chunks in arrival order, each released no earlier than its time and never
     * before the chunk ahead of it. Runs on the connection's event loop only.
     */
    private static final class Pipe {
        Channel from;
        Channel to;
        Flow flow = Flow.PASS;
        long delayNanos;
        boolean closeAfterDrain;
        private final ArrayDeque<Chunk> queue = new ArrayDeque<>();
        private long queuedBytes;
        private long lastRelease;
        private boolean drainScheduled;
        private Pipe opposite;

        Pipe(Channel from) {
            this.from = from;
        }

        Pipe opposite() {
            return opposite == null ? this : opposite;
        }

        void offer(ByteBuf bytes) {
            long release = Math.max(System.nanoTime() + delayNanos, lastRelease);
            lastRelease = release;
            queue.add(new Chunk(bytes, release));
            queuedBytes += bytes.readableBytes();
            drain();
        }

        void drain() {
            if (to == null || flow == Flow.HOLD) {
                pushBack();
                return;
            }
            long now = System.nanoTime();
            boolean wrote = false;
            while (!queue.isEmpty() && to.isWritable()) {
                Chunk c = queue.peek();
                if (c.releaseNanos() > now) {
                    if (!drainScheduled) {
                        drainScheduled = true;
                        to.eventLoop().schedule(() -> {
                            drainScheduled = false;
                            drain();
                        }, c.releaseNanos() - now, TimeUnit.NANOSECONDS);
                    }
                    break;
                }
                queue.poll();
                queuedBytes -= c.bytes().readableBytes();
                to.write(c.bytes());
                wrote = true;
            }
            if (wrote) {
                to.flush();
            }
            if (queue.isEmpty() && closeAfterDrain) {
                to.close();
                return;
            }
            pushBack();
        }

        /** Stops reading the sender while much is queued or the receiver cannot take more; reads again after. */
        private void pushBack() {
            if (from == null || !from.isOpen()) {
                return;
            }
            boolean full = queuedBytes > MAX_QUEUED_BYTES || (to != null && !to.isWritable());
            if (full && from.config().isAutoRead()) {
                from.config().setAutoRead(false);
            } else if (!full && !from.config().isAutoRead() && to != null) {
                from.config().setAutoRead(true);
            }
        }

        /** Frees what is queued (the connection is gone). */
        void release() {
            for (Chunk c : queue) {
                c.bytes().release();
            }
            queue.clear();
            queuedBytes = 0;
        }
    }

    @Override
    public void close() {
        closed = true;
        listener.close().syncUninterruptibly();
        for (Connection c : connections) {
            c.inbound.eventLoop().execute(() -> {
                reset(c.inbound);
                if (c.outbound != null) {
                    reset(c.outbound);
                }
                c.up.release();
                c.down.release();
            });
        }
    }

    @Override
    public String toString() {
        return "proxy " + name + " " + hostPort() + " -> " + target + " " + rules;
    }
}
