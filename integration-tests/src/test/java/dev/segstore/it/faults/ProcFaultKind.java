package dev.segstore.it.faults;

/**
 * What a {@link ProcFault} does to the cluster of processes ({@link ProcCluster}), and the nemesis kind its
 * interval is recorded under in the history. Process faults take a storage node (by its role in the shard's open
 * segment) or a meta node (the Raft leader or a follower); network faults go through the proxies.
 */
enum ProcFaultKind {
    /** kill -9 of a storage node, started again at the end. */
    KILL_NODE("proc-kill-node", Target.NODE),
    /** SIGSTOP of a storage node, SIGCONT at the end: it wakes up with stale leaderships and routes. */
    PAUSE_NODE("proc-pause-node", Target.NODE),
    /** SIGTERM (controlled shutdown: leaderships handed over first) of a storage node, started again at the end. */
    TERM_NODE("proc-term-node", Target.NODE),
    /** kill -9 of the meta-service's Raft leader, started again at the end. */
    KILL_META_LEADER("proc-kill-meta-leader", Target.META_LEADER),
    /** kill -9 of a meta follower, started again at the end. */
    KILL_META_FOLLOWER("proc-kill-meta-follower", Target.META_FOLLOWER),
    /** SIGSTOP of the meta leader, SIGCONT at the end (a deposed leader that wakes up). */
    PAUSE_META_LEADER("proc-pause-meta-leader", Target.META_LEADER),
    /** SIGSTOP of a meta follower, SIGCONT at the end. */
    PAUSE_META_FOLLOWER("proc-pause-meta-follower", Target.META_FOLLOWER),
    /** SIGTERM of the meta leader (it hands Raft leadership over), started again at the end. */
    TERM_META_LEADER("proc-term-meta-leader", Target.META_LEADER),
    /** The storage node and its two peers reach each other no more, either way (bytes held until the heal). */
    PARTITION_PEERS("net-partition-peers", Target.NODE),
    /** The storage node reaches no meta node (heartbeats stop: the controller fences it), peers and clients still reach it. */
    PARTITION_META("net-partition-meta", Target.NODE),
    /** The storage node reaches nothing and nothing reaches it: peers, meta nodes, clients. */
    ISOLATE_NODE("net-isolate-node", Target.NODE),
    /**
     * The storage node reaches neither its peers nor the meta-service, but clients still reach it: a leader that
     * is fenced and replaced while clients with older routes keep writing to it (a zombie leader).
     */
    PARTITION_CLUSTER("net-partition-cluster", Target.NODE),
    /** Clients reach the storage node no more (its peers and the meta-service still do). */
    PARTITION_CLIENTS("net-partition-clients", Target.NODE),
    /** Bytes from the storage node to a peer pass, bytes back are held (both ways of every connection). */
    ONE_WAY("net-one-way", Target.NODE),
    /** Every chunk between the storage node and a peer, both ways, is delayed. */
    SLOW_LINK("net-slow-link", Target.NODE),
    /** Connections between the storage node and a peer are reset, and new ones too, until the end. */
    RESET_LINK("net-reset-link", Target.NODE),
    /**
     * The storage node's segment writes fail (EIO) from the start, through its fault-injecting file layer
     * ({@code ControlledFaultyFiles}, the test-only {@code test.log.files.class}); at the end the disk is healed and
     * the node started again on it (a data directory an I/O error took offline stays offline until then).
     */
    DISK_WRITES("proc-disk-write-failure", Target.NODE),
    /** As {@link #DISK_WRITES}, the writes failing "No space left on device" (ENOSPC). */
    DISK_FULL("proc-disk-full", Target.NODE),
    /** The storage node's segment forces (fsync) fail; at the end the disk is healed and the node started again. */
    DISK_FSYNCS("proc-disk-fsync-failure", Target.NODE),
    /** Opening a segment file fails (a new segment's, or at a start); at the end healed and the node started again. */
    DISK_OPENS("proc-disk-open-failure", Target.NODE),
    /** Each force (fsync) of the storage node's segment files takes the fault's delay longer; healed at the end. */
    SLOW_DISK("proc-slow-disk", Target.NODE),
    /**
     * The storage node crashes losing its page cache: each segment file keeps what its last force covered and a
     * random prefix of the later writes, the last torn half the time (as Jepsen's lazyfs), and its JVM halts; it
     * is started again on the same directory at the end.
     */
    CRASH_LOSE_UNSYNCED("proc-crash-lost-page-cache", Target.NODE),
    /** Clients reach the meta leader no more (they must find the routes elsewhere; a follower answers NOT_LEADER). */
    CLIENTS_FROM_META_LEADER("net-clients-meta-leader", Target.META_LEADER),
    /**
     * The Raft links of the meta leader (role 0) or a follower with both other meta nodes are cut, both ways, in
     * jraft's transport: the meta processes poll the control file {@code test-raft-links} in their data
     * directories ({@code dev.segstore.it.raft.RaftLinkFaults}). Lifted at the end.
     */
    META_PARTITION("net-meta-raft-partition", Target.META),
    /** One way: the meta leader's Raft requests to a follower (role 0), or the follower's to the leader, are lost. */
    META_ONE_WAY("net-meta-raft-one-way", Target.META);

    /** What a fault hits: a storage node by role; the meta leader; a follower; the leader (role 0) or a follower. */
    enum Target { NODE, META_LEADER, META_FOLLOWER, META }

    final String nemesis;
    final Target target;

    ProcFaultKind(String nemesis, Target target) {
        this.nemesis = nemesis;
        this.target = target;
    }

    /** Whether it stops a process (at most one such fault per process at a time, and one meta process at a time). */
    boolean takesProcess() {
        return name().startsWith("KILL") || name().startsWith("PAUSE") || name().startsWith("TERM") || this == CRASH_LOSE_UNSYNCED;
    }

    /** Whether it sets the storage node's disk mode (at most one such fault per node at a time). */
    boolean takesDisk() {
        return name().startsWith("DISK") || this == SLOW_DISK;
    }

    /** The disk mode of the node's file layer while a {@link #takesDisk()} fault lasts (its control file). */
    String diskMode(int delayMs) {
        return switch (this) {
            case DISK_WRITES -> "write-eio";
            case DISK_FULL -> "write-enospc";
            case DISK_FSYNCS -> "fsync-eio";
            case DISK_OPENS -> "open-eio";
            case SLOW_DISK -> "slow-fsync " + delayMs;
            default -> throw new IllegalStateException(this + " sets no disk mode");
        };
    }

    /** Whether it cuts Raft links between meta nodes (one meta fault at a time, as for meta process faults). */
    boolean cutsRaft() {
        return this == META_PARTITION || this == META_ONE_WAY;
    }

    /** Whether it needs a peer (the other end of a link). */
    boolean hasPeer() {
        return this == ONE_WAY || this == SLOW_LINK || this == RESET_LINK;
    }
}
