package dev.segstore.node.replica;

import dev.segstore.adapter.ErrorCode;
import dev.segstore.log.AppendRecord;
import dev.segstore.log.AppendResult;
import dev.segstore.log.DirectoryConfig;
import dev.segstore.log.Durability;
import dev.segstore.log.FileSlice;
import dev.segstore.log.LogConfig;
import dev.segstore.log.LogDirectory;
import dev.segstore.log.LogRecord;
import dev.segstore.log.epoch.EpochEndOffset;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Three replicas of one segment in this JVM, each with its own data directory (node 2's on a file layer whose
 * writes a test can fail or hold), wired through an in-memory {@link LeaderEndPoint} that can cut a follower off,
 * and an in-memory controller for ISR proposals that can lose or hold its answers. Shared by {@link PartitionTest}
 * and {@link PartitionSafetyTest}.
 */
abstract class PartitionFixture {
    static final ReplicaConfig CONFIG = new ReplicaConfig(2, 1_000, Durability.FSYNC);

    @TempDir
    Path root;
    final AtomicLong clock = new AtomicLong(1_000_000);
    final List<LogDirectory> dirs = new ArrayList<>();
    final Partition[] replicas = new Partition[4]; // index = node id, 1..3
    final Set<Integer> cutOff = ConcurrentHashMap.newKeySet();
    /** The controller's view: committed ISR and its version (conditional updates). */
    List<Integer> committedIsr = List.of(1, 2, 3);
    int committedVersion;
    /** Set: the controller commits proposals but their answers are lost (the meta leader died before answering). */
    volatile boolean loseAnswers;
    /** Set: the controller commits proposals and the test holds their answers here, to deliver them late. */
    volatile List<CompletableFuture<IsrProposer.Committed>> heldAnswers;
    /** Set: the controller's refusals (mayNotJoin) are answered once the test completes the futures added here. */
    volatile List<CompletableFuture<Void>> heldRefusals;
    /** Nodes the controller refuses into the ISR (INVALID_ARGUMENT, as for a node shutting down). */
    final Set<Integer> mayNotJoin = ConcurrentHashMap.newKeySet();
    /** ISR proposals the controller has received. */
    final java.util.concurrent.atomic.AtomicInteger proposals = new java.util.concurrent.atomic.AtomicInteger();
    /** Node 2's data directory runs on files whose writes the test can fail or hold. */
    final FaultyFiles node2Files = new FaultyFiles();

    @BeforeEach
    void start() {
        for (int id = 1; id <= 3; id++) {
            LogDirectory d = id == 2
                    ? LogDirectory.open(root.resolve("node-" + id), DirectoryConfig.DEFAULT, node2Files, System::currentTimeMillis)
                    : LogDirectory.open(root.resolve("node-" + id), DirectoryConfig.DEFAULT);
            dirs.add(d);
            replicas[id] = new Partition("s/0@" + id, d.openLog("s-0", LogConfig.DEFAULT, 0), id, CONFIG, clock::get, this::propose);
        }
        replicas[1].becomeLeader(0, List.of(1, 2, 3), committedIsr, 0);
        replicas[2].becomeFollower(0, 1);
        replicas[3].becomeFollower(0, 1);
    }

    @AfterEach
    void stop() {
        node2Files.release();
        dirs.forEach(LogDirectory::close);
    }

    synchronized CompletableFuture<IsrProposer.Committed> propose(int epoch, int version, List<Integer> isr) {
        proposals.incrementAndGet();
        if (version != committedVersion) {
            return CompletableFuture.failedFuture(new ReplicaException(ErrorCode.FENCED_EPOCH, "stale ISR version " + version));
        }
        for (int n : isr) {
            if (!committedIsr.contains(n) && mayNotJoin.contains(n)) {
                ReplicaException refusal = new ReplicaException(ErrorCode.INVALID_ARGUMENT, "node " + n + " cannot join the ISR");
                if (heldRefusals != null) {
                    CompletableFuture<Void> late = new CompletableFuture<>();
                    heldRefusals.add(late);
                    return late.thenCompose(v -> CompletableFuture.failedFuture(refusal));
                }
                return CompletableFuture.failedFuture(refusal);
            }
        }
        committedIsr = List.copyOf(isr);
        committedVersion++;
        IsrProposer.Committed committed = new IsrProposer.Committed(committedIsr, committedVersion);
        if (loseAnswers) {
            return CompletableFuture.failedFuture(new java.util.concurrent.TimeoutException("the answer was lost"));
        }
        if (heldAnswers != null) {
            CompletableFuture<IsrProposer.Committed> late = new CompletableFuture<>();
            heldAnswers.add(late);
            return late.thenApply(v -> committed);
        }
        return CompletableFuture.completedFuture(committed);
    }

    /** A leader reached in memory; fetches from cut-off followers fail as a lost network would. */
    LeaderEndPoint endpointTo(int leader) {
        return new LeaderEndPoint() {
            @Override
            public CompletableFuture<EpochEndOffset> endOffsetForEpoch(int leaderEpoch, int epoch) {
                return CompletableFuture.completedFuture(replicas[leader].endOffsetForEpoch(leaderEpoch, epoch));
            }

            @Override
            public CompletableFuture<FetchResult> fetch(int followerId, int leaderEpoch, long fetchOffset, long tombstoneFrom, int maxBytes) {
                if (cutOff.contains(followerId)) {
                    return CompletableFuture.failedFuture(new ReplicaException(ErrorCode.UNAVAILABLE, "cut off"));
                }
                try {
                    return CompletableFuture.completedFuture(replicas[leader].fetchFromFollower(followerId, leaderEpoch, fetchOffset,
                            tombstoneFrom, maxBytes));
                } catch (ReplicaException e) {
                    return CompletableFuture.failedFuture(e); // as the leader's error comes back over the network
                }
            }
        };
    }

    static List<AppendRecord> records(String prefix, int n) {
        List<AppendRecord> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            out.add(AppendRecord.of(i, (prefix + i).getBytes(StandardCharsets.UTF_8)));
        }
        return out;
    }

    /** One fetch by each follower, as the node's fetch loop makes it: truncating against the leader first when due. */
    void fetchRound(int leader, int... followers) {
        for (int f : followers) {
            if (replicas[f].needsTruncation()) {
                replicas[f].truncateToLeader(endpointTo(leader));
            }
            replicas[f].fetchOnce(endpointTo(leader), 1 << 20);
        }
    }

    static <T> T await(CompletableFuture<T> f) throws Exception {
        return f.get(30, TimeUnit.SECONDS);
    }

    static ReplicaException failure(CompletableFuture<?> f) {
        ExecutionException e = assertThrows(ExecutionException.class, () -> f.get(30, TimeUnit.SECONDS));
        assertTrue(e.getCause() instanceof ReplicaException, String.valueOf(e.getCause()));
        return (ReplicaException) e.getCause();
    }

    static String text(LogRecord r) {
        return new String(r.payload(), StandardCharsets.UTF_8);
    }

    /** Waits (with a deadline) until the leader's own append is durable, so the test controls fetch timing. */
    void awaitDurable(int node, long offset) {
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (replicas[node].log().durableEndOffset() < offset) {
            if (System.nanoTime() > end) {
                throw new AssertionError("not durable: " + offset);
            }
            Thread.onSpinWait();
        }
    }


    /**
     * Node 3 is cut off while node 1 (leader) takes 5 records "a0".. that node 2 fetches; past the lag limit the leader
     * shrinks the ISR (to [1, 2], the controller committing it). Node 3 stays cut off.
     */
    void leaveNode3OutOfTheIsr() throws Exception {
        cutOff.add(3);
        replicas[1].append(records("a", 5), -1, -1);
        awaitDurable(1, 5);
        fetchRound(1, 2);
        fetchRound(1, 2);
        clock.addAndGet(1_001);
        fetchRound(1, 2); // node 2 stays caught up
        replicas[1].maybeShrinkIsr();
    }

    /** Node 1 (leader) takes records "r0".. and both followers fetch them until the write is acknowledged. */
    void writeAcknowledged(int n) throws Exception {
        CompletableFuture<AppendResult> ack = replicas[1].append(records("r", n), -1, -1);
        awaitDurable(1, n);
        fetchRound(1, 2, 3);
        fetchRound(1, 2, 3);
        await(ack);
    }

    ByteBuffer wholeLog(int node) throws Exception {
        try (FileSlice s = replicas[node].log().readSlice(0, Integer.MAX_VALUE, Long.MAX_VALUE)) {
            return s.read();
        }
    }
}
