package dev.segstore.it.faults;

/**
 * What a {@link FaultAction} does to the in-JVM cluster, and the nemesis kind its interval is recorded under in
 * the history. Listed from the simplest to shrink towards (jqwik shrinks an enum towards its first value).
 */
enum FaultKind {
    /** Every call the node makes to its peers, and every call they make to it, is dropped (fails UNAVAILABLE). */
    PARTITION("partition"),
    /** Calls between two storage nodes, both ways, are held back by a delay. */
    SLOW_LINK("slow-link"),
    /**
     * The node is cut off from its peers and the controller fences it, as it does when a node's heartbeats stop
     * for a session timeout: its leaderships move to other ISR members while it still runs and takes writes from
     * clients whose routes are older (a node partitioned from everyone, compressed: in the JVM its heartbeats
     * cannot be cut, so it learns of the fence from its next heartbeat and registers again, as a node back from
     * a partition does). Its peers reach it again at the end.
     */
    ISOLATE_NODE("isolate"),
    /** {@code stopNode}, then {@code startNode} on the same data directory at the end of the interval. */
    KILL_NODE("kill"),
    /**
     * The node crashes as a machine does on power loss: it is stopped abruptly, and its segment files lose every
     * byte that was not forced (fsync), keeping a random prefix of the later writes with the last one torn (as
     * Jepsen's lazyfs does; the prefix is drawn from the schedule's seed). It starts again on the same data
     * directory at the end of the interval.
     */
    CRASH_LOSE_UNSYNCED("crash-lost-page-cache"),
    /** The node's segment writes fail (EIO); at the end it is restarted on a healthy file layer. */
    DISK_WRITES("disk-write-failure"),
    /** The node's segment forces (fsync) fail; at the end it is restarted on a healthy file layer. */
    DISK_FSYNCS("disk-fsync-failure"),
    /** Opening the node's segment files (a new segment's) fails; at the end it is restarted on a healthy file layer. */
    DISK_OPENS("disk-open-failure"),
    /**
     * The node's machine goes down and its disk is replaced by an empty one (its data directory deleted: every
     * segment log, the index and tombstones); it starts again at once, holding nothing, while the meta-service still
     * counts it in every ISR (it registers again before its session ends; the interval only keeps other faults off
     * the node). Its registration
     * lists the logs it holds (none): the controller marks its copies offline before it can lead from an empty log.
     * Played only while every segment of the shard whose ISR holds the node holds two other members that lost
     * nothing in the run ({@link DiskLosses}): losing the only copy of acknowledged records is no anomaly.
     */
    LOSE_DISK("replaced-disk"),
    /** Each force (fsync) of the node's segment files takes the fault's delay longer; healed at the end. */
    SLOW_DISK("slow-disk"),
    /** The meta-service's Raft leader is closed, and started again (same ports and data) at the end. */
    KILL_META_LEADER("kill-meta-leader"),
    /**
     * The node's calls to the meta-service (registration, heartbeats, ISR proposals, rolls) are lost on their way
     * there: each fails UNAVAILABLE at once and changes nothing. Longer than the session timeout, the controller
     * fences the node, which learns of it when its heartbeats get through again.
     */
    META_REQUESTS_LOST("meta-requests-lost"),
    /**
     * One way: the node's calls reach the meta-service and are applied (heartbeats keep its session, ISR changes
     * and rolls commit), but every answer is lost: each call fails TIMEOUT, and the node learns nothing of the
     * committed state (nor of new assignments) until the end.
     */
    META_ANSWERS_LOST("meta-answers-lost"),
    /**
     * One way between two storage nodes: every call the node makes to its peer is dropped (fails UNAVAILABLE),
     * while the peer's calls to it go through (A hears B, B does not hear A): a follower that cannot fetch from
     * its leader though the leader could fetch from it, or the reverse. Lifted at the end.
     */
    ONE_WAY("one-way"),
    /**
     * Raft between meta nodes: a meta node's Raft links with both other meta nodes are cut, both ways (the leader's
     * for role 0, else a follower's), in jraft's transport ({@code dev.segstore.it.raft.RaftLinkFaults}): a cut-off
     * leader steps down and the two others elect one of them; storage nodes and clients still reach every meta
     * node's RPC port. Lifted at the end.
     */
    META_PARTITION("meta-raft-partition"),
    /**
     * One way between the meta leader and a follower: for role 0 the leader's Raft requests to the follower are
     * lost (the follower's to the leader pass), else the follower's to the leader. Lifted at the end.
     */
    META_ONE_WAY("meta-raft-one-way");

    /** The nemesis kind in the history (docs/chaos-history.md). */
    final String nemesis;

    FaultKind(String nemesis) {
        this.nemesis = nemesis;
    }

    /** Whether the fault takes a storage node's process or disk (at most one such fault per node at a time). */
    boolean takesNode() {
        return this == KILL_NODE || this == CRASH_LOSE_UNSYNCED || this == DISK_WRITES || this == DISK_FSYNCS || this == DISK_OPENS
                || this == LOSE_DISK || this == SLOW_DISK;
    }
}
