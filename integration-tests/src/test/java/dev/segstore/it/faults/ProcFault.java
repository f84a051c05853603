package dev.segstore.it.faults;

/**
 * One timed fault of a {@link ProcSchedule}: from {@code atMs} after the workload starts, for {@code forMs}.
 * Storage nodes are named by role in the shard's open segment when the fault starts (role 0 its leader, 1 and 2
 * its followers); a link's other end is the {@code peer + 1}-th role after it.
 */
record ProcFault(ProcFaultKind kind, int atMs, int forMs, int role, int peer, int delayMs) {
    int endMs() {
        return atMs + forMs;
    }

    int peerRole() {
        return (role + 1 + peer) % 3;
    }

    @Override
    public String toString() {
        String who = switch (kind.target) {
            case NODE -> "storage node [" + FaultAction.ROLES[role] + "]";
            case META_LEADER -> "the meta leader";
            case META_FOLLOWER -> "a meta follower";
            case META -> role == 0 ? "the meta leader" : "a meta follower";
        };
        String peerWho = "[" + FaultAction.ROLES[peerRole()] + "]";
        String what = switch (kind) {
            case KILL_NODE, KILL_META_LEADER, KILL_META_FOLLOWER -> "kill -9 " + who + ", start it again";
            case PAUSE_NODE, PAUSE_META_LEADER, PAUSE_META_FOLLOWER -> "SIGSTOP " + who + ", SIGCONT";
            case TERM_NODE, TERM_META_LEADER -> "SIGTERM " + who + ", start it again";
            case PARTITION_PEERS -> "partition " + who + " from its peers";
            case PARTITION_META -> "partition " + who + " from the meta-service";
            case ISOLATE_NODE -> "isolate " + who + " from everyone";
            case PARTITION_CLUSTER -> "partition " + who + " from its peers and the meta-service (clients still reach it)";
            case PARTITION_CLIENTS -> "partition the clients from " + who;
            case ONE_WAY -> "one-way link " + who + " -> " + peerWho + " (the way back held)";
            case SLOW_LINK -> "slow the link " + who + " <-> " + peerWho + " by " + delayMs + " ms a chunk";
            case RESET_LINK -> "reset the link " + who + " <-> " + peerWho;
            case DISK_WRITES -> "fail the segment writes (EIO) of " + who + ", heal and start it again";
            case DISK_FULL -> "fail the segment writes (ENOSPC) of " + who + ", heal and start it again";
            case DISK_FSYNCS -> "fail the fsyncs of " + who + ", heal and start it again";
            case DISK_OPENS -> "fail the segment file opens of " + who + ", heal and start it again";
            case SLOW_DISK -> "slow each fsync of " + who + " by " + delayMs + " ms";
            case CRASH_LOSE_UNSYNCED -> "crash " + who + " losing its unsynced bytes, start it again";
            case CLIENTS_FROM_META_LEADER -> "partition the clients from the meta leader";
            case META_PARTITION -> "cut the Raft links of " + who + " with both other meta nodes";
            case META_ONE_WAY -> "lose the Raft requests of " + who + " to " + (role == 0 ? "a follower" : "the leader") + " (the other way passes)";
        };
        return "at " + atMs + " ms for " + forMs + " ms: " + what;
    }
}
