package dev.segstore.it.proxy;

import io.netty.channel.EventLoopGroup;
import io.netty.channel.nio.NioEventLoopGroup;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * The fault proxies of a cluster of processes, one in front of each destination (a storage node's data port, a
 * meta node's RPC port), and the links between named endpoints ("node-1", "meta-0", "client") they control.
 * Each process connects from a loopback address of its own ({@link #source}); any other source address is
 * {@link #CLIENT} (the test JVM's clients connect from 127.0.0.1).
 *
 * <p>Link operations set the rules of both proxies a link goes through: {@code a}'s connections to {@code b}'s
 * proxy and {@code b}'s connections to {@code a}'s proxy (an endpoint with no proxy, a client, is only ever a
 * source). {@link #heal()} lifts every rule. Thread-safe.
 */
public final class ProxyNetwork implements AutoCloseable {
    public static final String CLIENT = "client";

    private final EventLoopGroup group = new NioEventLoopGroup(2);
    private final Map<InetAddress, String> sources = new ConcurrentHashMap<>();
    private final Map<String, FaultProxy> proxies = new LinkedHashMap<>();

    /** Connections from {@code address} come from {@code name}. */
    public void source(String name, String address) {
        try {
            sources.put(InetAddress.getByName(address), name);
        } catch (java.net.UnknownHostException e) {
            throw new IllegalArgumentException(address, e);
        }
    }

    String sourceOf(InetAddress address) {
        return sources.getOrDefault(address, CLIENT);
    }

    /** Starts (or, for an endpoint that has one, replaces) the proxy in front of {@code name}, listening on {@code listen}. */
    public synchronized FaultProxy proxy(String name, InetSocketAddress listen, InetSocketAddress target) throws InterruptedException {
        FaultProxy old = proxies.remove(name);
        if (old != null) {
            old.close();
        }
        FaultProxy p = new FaultProxy(name, listen, target, this::sourceOf, group);
        proxies.put(name, p);
        return p;
    }

    public synchronized FaultProxy proxyOf(String name) {
        return proxies.get(name);
    }

    /** Sets the rule of {@code from}'s connections into {@code to}'s proxy, if {@code to} has one. */
    private synchronized void set(String from, String to, FaultProxy.Rule rule) {
        FaultProxy p = proxies.get(to);
        if (p != null) {
            p.rule(from, rule);
        }
    }

    /** Nothing passes between {@code a} and {@code b}, either way (held until healed). */
    public void partition(String a, String b) {
        set(a, b, FaultProxy.Rule.HOLD);
        set(b, a, FaultProxy.Rule.HOLD);
    }

    /** Connections between {@code a} and {@code b} are reset, and new ones too, until healed. */
    public void reset(String a, String b) {
        set(a, b, FaultProxy.Rule.RESET);
        set(b, a, FaultProxy.Rule.RESET);
    }

    /** Bytes from {@code a} to {@code b} pass, bytes from {@code b} to {@code a} are held (both connection directions). */
    public void oneWay(String a, String b) {
        set(a, b, FaultProxy.Rule.upOnly());
        set(b, a, FaultProxy.Rule.downOnly());
    }

    /** Every chunk between {@code a} and {@code b}, both ways, is delayed by {@code ms}. */
    public void slow(String a, String b, long ms) {
        set(a, b, FaultProxy.Rule.delay(ms));
        set(b, a, FaultProxy.Rule.delay(ms));
    }

    /** Lifts the rules of the link between {@code a} and {@code b}. */
    public void heal(String a, String b) {
        set(a, b, FaultProxy.Rule.PASS);
        set(b, a, FaultProxy.Rule.PASS);
    }

    /** Lifts every rule of every proxy. */
    public synchronized void heal() {
        proxies.values().forEach(FaultProxy::heal);
    }

    /** Per proxy, the sources its connections have come from so far. */
    public synchronized Map<String, java.util.Set<String>> sourcesSeen() {
        Map<String, java.util.Set<String>> seen = new java.util.TreeMap<>();
        proxies.forEach((name, p) -> seen.put(name, new java.util.TreeSet<>(p.sourcesSeen())));
        return seen;
    }

    /** The rules in place, one line per proxy that has any (for a run's log). */
    public synchronized List<String> describe() {
        List<String> out = new ArrayList<>();
        proxies.values().forEach(p -> out.add(p.toString()));
        return out;
    }

    @Override
    public synchronized void close() {
        proxies.values().forEach(FaultProxy::close);
        proxies.clear();
        group.shutdownGracefully(0, 2, TimeUnit.SECONDS).syncUninterruptibly();
    }
}
