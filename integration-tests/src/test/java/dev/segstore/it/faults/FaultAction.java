package dev.segstore.it.faults;

/**
 * One timed fault of a {@link Schedule}: from {@code atMs} after the workload starts, for {@code forMs}.
 * Storage nodes are named by role in the shard's open segment when the fault starts (not by id, so that a
 * schedule means the same whoever leads): role 0 is its leader, 1 and 2 its followers in replica order.
 *
 * @param role    the storage node the fault hits (storage-node kinds); {@link FaultKind#META_PARTITION}: the meta leader (0) or a
 *                follower; {@link FaultKind#META_ONE_WAY}: whose Raft requests are lost, the leader's (0) or the follower's
 * @param peer    {@link FaultKind#SLOW_LINK}, {@link FaultKind#ONE_WAY}: the other end of the link, the {@code peer + 1}-th role after
 *                {@code role} (so never the same node); meta kinds: the follower, the {@code peer + 1}-th meta node after the leader
 * @param delayMs {@link FaultKind#SLOW_LINK}: how long each call on the link is held back
 */
record FaultAction(FaultKind kind, int atMs, int forMs, int role, int peer, int delayMs) {
    static final String[] ROLES = {"leader", "follower 1", "follower 2"};

    int endMs() {
        return atMs + forMs;
    }

    /**
     * {@link FaultKind#ISOLATE_NODE}: when, after the node is cut off, the controller fences it: half the interval,
     * at most 250 ms, so that it comes before the node's leader has dropped its followers from the ISR (the test
     * cluster's lag limit is 400 ms) and they can be elected, and the cut-off node has taken writes meanwhile.
     */
    int fenceAfterMs() {
        return Math.min(forMs / 2, 250);
    }

    /** The role at the other end of a slow link. */
    int peerRole() {
        return (role + 1 + peer) % 3;
    }

    /** What it does, in words: "at 120 ms for 300 ms: kill storage node [leader]". */
    @Override
    public String toString() {
        String who = "storage node [" + ROLES[role] + "]";
        String what = switch (kind) {
            case PARTITION -> "partition " + who + " from its peers";
            case SLOW_LINK -> "slow the link " + who + " <-> [" + ROLES[peerRole()] + "] by " + delayMs + " ms";
            case ONE_WAY -> "drop the calls of " + who + " to [" + ROLES[peerRole()] + "] (its calls to " + who + " go through)";
            case ISOLATE_NODE -> "isolate " + who + " from its peers; the controller fences it " + fenceAfterMs() + " ms later";
            case KILL_NODE -> "kill " + who + ", start it again";
            case CRASH_LOSE_UNSYNCED -> "crash " + who + " losing its unforced writes (page cache), start it again";
            case DISK_WRITES -> "fail the segment writes of " + who + ", restart it on a healthy disk";
            case DISK_FSYNCS -> "fail the fsyncs of " + who + ", restart it on a healthy disk";
            case DISK_OPENS -> "fail the segment file opens of " + who + ", restart it on a healthy disk";
            case LOSE_DISK -> "replace the disk of " + who + " by an empty one (its machine goes down), start it again at once";
            case SLOW_DISK -> "slow each fsync of " + who + " by " + delayMs + " ms";
            case KILL_META_LEADER -> "kill the meta-service leader, start it again";
            case META_REQUESTS_LOST -> "lose the calls of " + who + " to the meta-service";
            case META_ANSWERS_LOST -> "lose the meta-service's answers to " + who + " (its calls are applied)";
            case META_PARTITION -> "cut the Raft links of " + (role == 0 ? "the meta leader" : "a meta follower") + " with both other meta nodes";
            case META_ONE_WAY -> role == 0 ? "lose the meta leader's Raft requests to a follower (the follower's pass)"
                    : "lose a meta follower's Raft requests to the leader (the leader's pass)";
        };
        return "at " + atMs + " ms for " + forMs + " ms: " + what;
    }
}
