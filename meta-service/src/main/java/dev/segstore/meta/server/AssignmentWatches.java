package dev.segstore.meta.server;

import dev.segstore.meta.raft.MetaStateMachine;
import dev.segstore.protocol.meta.Command;
import dev.segstore.protocol.meta.WatchAssignmentsResponse;
import dev.segstore.protocol.rpc.RpcException;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;

/**
 * The storage nodes' outstanding {@code meta.WatchAssignments} calls (long polls), answered "changed" as soon as a
 * command that may change assignments is applied at a metadata version above the one the call named, or "nothing
 * new" after their wait. A watch carries no assignments: the node then heartbeats at once, and only the heartbeat's
 * answer (read after a ReadIndex barrier, checked by version on the node) is applied. So a lost, late or spurious
 * answer here can only make a node heartbeat sooner or later, never apply something it would not have.
 *
 * <p>Bounded: one watch per storage node id (a newer one answers the older "nothing new"), and only for ids the
 * state knows. Every answer is completed on this class's own thread {@code meta-watch}, never on jraft's: commands
 * are observed on jraft's apply thread ({@link #applied}), which only records the version and hands the waking
 * over (a meta leader once deadlocked when futures were completed on jraft's threads; see RaftGroup).
 *
 * <p>Every command but a consumer-offset commit wakes every watch: offsets are not in assignments and are the only
 * frequent command; the others (rolls, ISR changes, leader moves, fences, registrations, creates and deletes) are
 * few, and each node heartbeats at most once per wake however many came meanwhile.
 */
public final class AssignmentWatches implements MetaStateMachine.ApplyObserver, AutoCloseable {
    /** The longest a watch is held when nothing changes (the node asks for less or this). */
    public static final long MAX_WAIT_MS = 30_000;
    /** The wait when the call names none. */
    public static final long DEFAULT_WAIT_MS = 5_000;

    private final ScheduledExecutorService thread = watchThread();
    private final Map<Integer, Waiter> waiters = new HashMap<>(); // guarded by this
    /** The metadata version of the newest command applied that may change assignments. */
    private long changedVersion; // guarded by this
    /** The metadata version of the newest command applied (or snapshot loaded). */
    private long version; // guarded by this

    /** One daemon thread, which ends when idle (no watch held, nothing to complete) and starts again when needed. */
    private static ScheduledExecutorService watchThread() {
        java.util.concurrent.ScheduledThreadPoolExecutor e = new java.util.concurrent.ScheduledThreadPoolExecutor(1, r -> {
            Thread t = new Thread(r, "meta-watch");
            t.setDaemon(true);
            return t;
        });
        e.setRemoveOnCancelPolicy(true); // an answered watch's time-out does not stay queued for its whole wait
        e.setKeepAliveTime(10, TimeUnit.SECONDS);
        e.allowCoreThreadTimeOut(true);
        return e;
    }

    private record Waiter(long appliedVersion, CompletableFuture<WatchAssignmentsResponse> answer, ScheduledFuture<?> timeout) {
    }

    @Override
    public void applied(Command command, long metadataVersion) {
        boolean changesAssignments = command.getKindCase() != Command.KindCase.COMMIT_OFFSETS;
        List<Waiter> woken;
        synchronized (this) {
            version = Math.max(version, metadataVersion);
            if (!changesAssignments) {
                return;
            }
            changedVersion = Math.max(changedVersion, metadataVersion);
            woken = takeBelow(changedVersion);
        }
        answer(woken, true);
    }

    @Override
    public void restored(long metadataVersion) {
        List<Waiter> woken;
        synchronized (this) {
            version = Math.max(version, metadataVersion);
            changedVersion = Math.max(changedVersion, metadataVersion); // anything may have changed
            woken = takeBelow(changedVersion);
        }
        answer(woken, true);
    }

    /**
     * Node {@code nodeId}'s watch from {@code appliedVersion}: answered "changed" at once if a command that may
     * change assignments was applied above it, else held up to {@code waitMs} (bounded by {@link #MAX_WAIT_MS}).
     * The caller checks leadership and the node id first.
     */
    public CompletableFuture<WatchAssignmentsResponse> watch(int nodeId, long appliedVersion, long waitMs) {
        long wait = waitMs <= 0 ? DEFAULT_WAIT_MS : Math.min(waitMs, MAX_WAIT_MS);
        CompletableFuture<WatchAssignmentsResponse> answer = new CompletableFuture<>();
        Waiter replaced;
        synchronized (this) {
            if (changedVersion > appliedVersion) {
                return CompletableFuture.completedFuture(response(true, version));
            }
            ScheduledFuture<?> timeout;
            try {
                timeout = thread.schedule(() -> expire(nodeId, answer), wait, TimeUnit.MILLISECONDS);
            } catch (RejectedExecutionException closed) {
                return CompletableFuture.completedFuture(response(false, version));
            }
            replaced = waiters.put(nodeId, new Waiter(appliedVersion, answer, timeout));
        }
        if (replaced != null) {
            answer(List.of(replaced), false);
        }
        return answer;
    }

    /**
     * A roll being committed will create {@code next}: each of its replicas' held watch is answered at once with it
     * as upcoming ({@code changed} false: nothing is applied yet), so the node can create its log while the roll
     * commits. A node with no watch held learns of it when the roll is applied, as before.
     */
    public void upcoming(dev.segstore.protocol.meta.Segment next) {
        List<Waiter> woken = new ArrayList<>();
        long v;
        synchronized (this) {
            for (int nodeId : next.getReplicasList()) {
                Waiter w = waiters.remove(nodeId);
                if (w != null) {
                    woken.add(w);
                }
            }
            v = version;
        }
        if (woken.isEmpty()) {
            return;
        }
        WatchAssignmentsResponse r = response(false, v).toBuilder().addUpcoming(next).build();
        complete(() -> woken.forEach(w -> {
            w.timeout().cancel(false);
            w.answer().complete(r);
        }));
    }

    /**
     * The read lease that node {@code nodeId} waits out before it serves a segment it took over ended early: the old
     * leader stepped down ({@code DeposedLeaders}). Its held watch is answered at once with {@code wait}
     * ({@code changed} false); a node with no watch held learns it from its next heartbeat's answer.
     */
    public void leaseReleased(int nodeId, dev.segstore.protocol.meta.LeaseWait wait) {
        Waiter w;
        long v;
        synchronized (this) {
            w = waiters.remove(nodeId);
            v = version;
        }
        if (w == null) {
            return;
        }
        WatchAssignmentsResponse r = response(false, v).toBuilder().addLeaseWaits(wait).build();
        complete(() -> {
            w.timeout().cancel(false);
            w.answer().complete(r);
        });
    }

    /** This node no longer leads: every watch is answered {@code notLeader}, and the nodes ask the new leader. */
    public void leaderGone(java.util.function.Supplier<RpcException> notLeader) {
        List<Waiter> all;
        synchronized (this) {
            all = new ArrayList<>(waiters.values());
            waiters.clear();
        }
        if (all.isEmpty()) {
            return;
        }
        complete(() -> { // the error is made here, off jraft's thread: it asks jraft who leads
            RpcException e = notLeader.get();
            all.forEach(w -> {
                w.timeout().cancel(false);
                w.answer().completeExceptionally(e);
            });
        });
    }

    /** Watches held now (tests, metrics). */
    public synchronized int waiting() {
        return waiters.size();
    }

    private void expire(int nodeId, CompletableFuture<WatchAssignmentsResponse> answer) {
        long v;
        synchronized (this) {
            Waiter w = waiters.get(nodeId);
            if (w == null || w.answer() != answer) {
                return; // answered meanwhile
            }
            waiters.remove(nodeId);
            v = version;
        }
        answer.complete(response(false, v)); // on this class's thread already
    }

    private List<Waiter> takeBelow(long changed) {
        List<Waiter> woken = new ArrayList<>();
        waiters.values().removeIf(w -> {
            if (w.appliedVersion() < changed) {
                woken.add(w);
                return true;
            }
            return false;
        });
        return woken;
    }

    private void answer(List<Waiter> ws, boolean changed) {
        if (ws.isEmpty()) {
            return;
        }
        long v;
        synchronized (this) {
            v = version;
        }
        WatchAssignmentsResponse r = response(changed, v);
        complete(() -> ws.forEach(w -> {
            w.timeout().cancel(false);
            w.answer().complete(r);
        }));
    }

    /** Runs {@code completion} on {@code meta-watch}; once closed, here (nothing of jraft's is then left to block). */
    private void complete(Runnable completion) {
        try {
            thread.execute(completion);
        } catch (RejectedExecutionException closed) {
            completion.run();
        }
    }

    private static WatchAssignmentsResponse response(boolean changed, long version) {
        return WatchAssignmentsResponse.newBuilder().setChanged(changed).setMetadataVersion(version).build();
    }

    @Override
    public void close() {
        List<Waiter> all;
        synchronized (this) {
            all = new ArrayList<>(waiters.values());
            waiters.clear();
        }
        thread.shutdownNow();
        WatchAssignmentsResponse r = response(false, 0);
        all.forEach(w -> w.answer().complete(r));
    }
}
