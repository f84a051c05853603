package dev.segstore.it.faults;

import dev.segstore.it.raft.RaftLinkFaults;

import java.util.ArrayList;
import java.util.List;
import java.util.function.IntFunction;

/**
 * The meta <-> meta Raft links a meta link fault cuts ({@link FaultKind#META_PARTITION}, {@link FaultKind#META_ONE_WAY} and
 * their {@link ProcFaultKind} twins), the same in both harnesses. The follower is the {@code peer + 1}-th meta node
 * after the leader. A partition cuts the leader's links (role 0) or the follower's with both other meta nodes,
 * both ways; a one-way cut loses the leader's Raft requests to the follower (role 0) or the follower's to the
 * leader, the other way passing.
 *
 * @param meta        the meta node the fault is about: the partitioned one, or the one whose requests are lost
 * @param links       the links to cut
 * @param description what it does, in words, for the history and the nemesis log
 */
record MetaLinks(int meta, List<RaftLinkFaults.Link> links, String description) {
    static MetaLinks of(boolean partition, int role, int peer, int leader, IntFunction<String> raftAddress) {
        int follower = (leader + 1 + peer) % 3;
        int meta = role == 0 ? leader : follower;
        String who = "meta node " + meta + (meta == leader ? " (the Raft leader)" : " (a follower)");
        if (partition) {
            List<Integer> others = new ArrayList<>(List.of(0, 1, 2));
            others.remove(Integer.valueOf(meta));
            return new MetaLinks(meta, RaftLinkFaults.partition(raftAddress.apply(meta), others.stream().map(raftAddress::apply).toList()),
                    "cut the Raft links of " + who + " with meta nodes " + others.get(0) + " and " + others.get(1) + ", both ways");
        }
        int to = meta == leader ? follower : leader;
        return new MetaLinks(meta, List.of(new RaftLinkFaults.Link(raftAddress.apply(meta), raftAddress.apply(to))),
                "lose the Raft requests of " + who + " to meta node " + to + " (its requests to " + meta + " pass)");
    }
}
