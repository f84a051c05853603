package dev.segstore.it.faults;

import dev.segstore.node.server.StorageNode;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.ToIntFunction;

/**
 * The network faults between storage nodes, as one {@link StorageNode.PeerFaults} every node of the cluster
 * calls through: isolated nodes (every call from them and to them is dropped: it fails UNAVAILABLE), one-way
 * cuts (calls from one node to another dropped, the other way passing) and slow links (calls both ways held back). Each rule belongs to the fault that set it, so overlapping faults on one
 * node or link end independently. Calls between storage nodes pass this seam, and a storage node's calls to the
 * meta-service (lost requests or lost answers, {@link #cutMeta}); clients and the meta-service still reach every
 * node. Thread-safe: nodes ask on their fetcher threads while the nemesis
 * changes the rules.
 */
final class PeerFaultTable implements StorageNode.PeerFaults {
    private record Link(int low, int high) {
        static Link of(int a, int b) {
            return new Link(Math.min(a, b), Math.max(a, b));
        }
    }

    private record Delay(Link link, long ms) {
    }

    /** Node id of a storage node's address, -1 if no running node has it (nodes bind a new port at each start). */
    private final ToIntFunction<String> nodeOfAddress;
    private final Map<Object, Integer> isolated = new ConcurrentHashMap<>();
    private final Map<Object, Delay> delays = new ConcurrentHashMap<>();
    private final Map<Object, MetaCut> metaCuts = new ConcurrentHashMap<>();
    /** One-way cuts: calls from {@code from} to {@code to} are dropped, the other way they pass. */
    private final Map<Object, OneWay> oneWays = new ConcurrentHashMap<>();

    private record OneWay(int from, int to) {
    }

    private record MetaCut(int node, StorageNode.MetaDrop drop) {
    }

    PeerFaultTable(ToIntFunction<String> nodeOfAddress) {
        this.nodeOfAddress = nodeOfAddress;
    }

    /** Fault {@code owner} cuts {@code node} off from its peers. */
    void isolate(Object owner, int node) {
        isolated.put(owner, node);
    }

    /** Fault {@code owner} drops the calls of node {@code from} to node {@code to} (not those the other way). */
    void oneWay(Object owner, int from, int to) {
        oneWays.put(owner, new OneWay(from, to));
    }

    /** Fault {@code owner} slows the link between nodes {@code a} and {@code b}. */
    void slow(Object owner, int a, int b, long delayMs) {
        delays.put(owner, new Delay(Link.of(a, b), delayMs));
    }

    /**
     * Fault {@code owner} loses {@code node}'s calls to the meta-service: their requests ({@link StorageNode.MetaDrop#REQUEST},
     * node to meta) or their answers ({@link StorageNode.MetaDrop#ANSWER}, meta to node: what the node asked for is done).
     */
    void cutMeta(Object owner, int node, StorageNode.MetaDrop drop) {
        metaCuts.put(owner, new MetaCut(node, drop));
    }

    /** Fault {@code owner}'s rule is lifted. */
    void lift(Object owner) {
        isolated.remove(owner);
        delays.remove(owner);
        metaCuts.remove(owner);
        oneWays.remove(owner);
    }

    void clear() {
        isolated.clear();
        delays.clear();
        metaCuts.clear();
        oneWays.clear();
    }

    /** Whether a fault cuts {@code node} from the meta-service now (it cannot register). */
    boolean cutFromMeta(int node) {
        return metaCuts.values().stream().anyMatch(c -> c.node() == node);
    }

    @Override
    public StorageNode.MetaDrop metaDrop(int fromNode, String method) {
        if (metaCuts.isEmpty()) {
            return StorageNode.MetaDrop.NONE;
        }
        StorageNode.MetaDrop drop = StorageNode.MetaDrop.NONE;
        for (MetaCut c : metaCuts.values()) {
            if (c.node() == fromNode && (drop == StorageNode.MetaDrop.NONE || c.drop() == StorageNode.MetaDrop.REQUEST)) {
                drop = c.drop(); // a lost request wins over a lost answer
            }
        }
        return drop;
    }

    @Override
    public boolean drop(int fromNode, String toAddress, String method) {
        if (isolated.isEmpty() && oneWays.isEmpty()) {
            return false;
        }
        int to = nodeOfAddress.applyAsInt(toAddress);
        return isolated.containsValue(fromNode) || isolated.containsValue(to) || oneWays.containsValue(new OneWay(fromNode, to));
    }

    @Override
    public long delayMs(int fromNode, String toAddress, String method) {
        if (delays.isEmpty()) {
            return 0;
        }
        Link link = Link.of(fromNode, nodeOfAddress.applyAsInt(toAddress));
        long ms = 0;
        for (Delay d : delays.values()) {
            if (d.link().equals(link)) {
                ms = Math.max(ms, d.ms());
            }
        }
        return ms;
    }
}
