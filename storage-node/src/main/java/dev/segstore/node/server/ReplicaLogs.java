package dev.segstore.node.server;

import dev.segstore.log.LogException;
import dev.segstore.log.SegmentLog;
import dev.segstore.node.server.Hosted.Key;
import dev.segstore.protocol.meta.Segment;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

/**
 * Where a hosted replica's log comes from ({@link AssignmentReconciler}): made ahead of a roll's commit
 * ({@link #prepare}), made while the segment before it closes ahead ({@link #prepareAhead}), on disk, or new
 * ({@link #openLog}). Not thread-safe: the reconciler calls it under its monitor.
 */
final class ReplicaLogs {
    private static final Logger LOG = LoggerFactory.getLogger(ReplicaLogs.class);

    /** How long a log made ahead of a roll's commit ({@link #prepare}) waits to be claimed before it is deleted. */
    static final long PREPARED_TTL_MS = 60_000;
    /**
     * Logs made ahead of a roll's commit ({@link #prepare}), not hosted yet (guarded by the reconciler's monitor): taken by {@link #openLog}
     * when the committed segment claims them, deleted after {@link #PREPARED_TTL_MS} when nothing did.
     */
    private final Map<Key, Prepared> prepared = new java.util.HashMap<>();

    private final java.util.concurrent.atomic.AtomicLong preparedTaken = new java.util.concurrent.atomic.AtomicLong();
    private final java.util.concurrent.atomic.AtomicLong aheadTaken = new java.util.concurrent.atomic.AtomicLong();
    private final java.util.concurrent.atomic.AtomicLong aheadWithEpochTaken = new java.util.concurrent.atomic.AtomicLong();

    /** {@code ahead}: made for the next segment of a segment closing ahead here ({@link #prepareAhead}). */
    private record Prepared(SegmentLog log, long madeAtNanos, boolean ahead) {
    }

    private final NodeConfig config;
    private final DataDirectories directory;
    private final Map<Key, Hosted> hosted;
    private final BooleanSupplier closed;
    private final Set<Long> deletedShards;

    ReplicaLogs(NodeConfig config, DataDirectories directory, Map<Key, Hosted> hosted, BooleanSupplier closed, Set<Long> deletedShards) {
        this.config = config;
        this.directory = directory;
        this.hosted = hosted;
        this.closed = closed;
        this.deletedShards = deletedShards;
    }

    /**
     * A roll being committed will create {@code s} (a watch answer's upcoming segment, not committed): its log is made
     * now, with the leader epoch checkpoint if this node is to lead. Only a log that does not exist yet is made.
     */
    void prepare(Segment s) {
        Key key = Key.of(s);
        String name = key.logName();
        if (closed.getAsBoolean() || deletedShards.contains(key.shardId()) || !s.getReplicasList().contains(config.nodeId())
                || hosted.containsKey(key) || prepared.containsKey(key) || directory.holds(name) || directory.onOfflineDirectory(name)) {
            return;
        }
        long startedNanos = System.nanoTime();
        try {
            SegmentLog log = directory.openLog(name, config.log(), s.getStartOffset());
            prepared.put(key, new Prepared(log, startedNanos, false));
            if (s.getLeader() == config.nodeId() && s.getLeaderEpoch() == 0) {
                log.assignEpochAtEnd(0); // as becomeLeader would: already there when it does
            }
            LOG.debug("{}: log made ahead of its roll's commit in {} ms", name, (System.nanoTime() - startedNanos) / 1_000_000);
        } catch (RuntimeException e) {
            LOG.debug("{}: making the log ahead of its roll's commit failed ({}); it is made when the roll is", name, e.toString());
        }
    }

    /**
     * Close ahead: segment {@code closingKey}, hosted here, is closing: its next segment's log is made now, beside it
     * (see {@link NextSegments#prepareAheadLater}).
     */
    void prepareAhead(Key closingKey) {
        Hosted closing = hosted.get(closingKey);
        Key key = new Key(closingKey.shardId(), closingKey.sequence() + 1);
        String name = key.logName();
        if (closed.getAsBoolean() || closing == null || closing.closingVersion == 0 || deletedShards.contains(key.shardId())
                || hosted.containsKey(key) || prepared.containsKey(key) || directory.holds(name) || directory.onOfflineDirectory(name)
                || !directory.holds(closingKey.logName())) {
            return;
        }
        long startedNanos = System.nanoTime();
        try {
            SegmentLog log = directory.openLogBeside(name, closingKey.logName(), config.log(), closing.partition.log().logEndOffset());
            try {
                // The next segment is led in the closing one's epoch, by its leader (unless the leadership moves
                // first): the checkpoint is written now, so that neither taking the lead nor a follower's first batch
                // writes one (a forced write on the writes' path). The move carries the entry to the start
                // (rebaseEmpty); a later epoch replaces it, and a replica that follows a later one drops it
                // (becomeFollower: an epoch in which nothing was written; one that follows this epoch keeps it).
                log.assignEpochAtEnd(closing.assigned.getLeaderEpoch());
            } catch (RuntimeException e) {
                directory.deleteLog(name);
                throw e;
            }
            prepared.put(key, new Prepared(log, startedNanos, true));
            LOG.debug("{}: log made while the segment before it closes, in {} us", name, (System.nanoTime() - startedNanos) / 1_000);
        } catch (RuntimeException e) {
            LOG.debug("{}: making the log while the segment before it closes failed ({}); it is made at the hand-over", name, e.toString());
        }
    }

    /** Whether a log made ahead waits here for segment {@code key} to claim it. */
    boolean holds(Key key) {
        return prepared.containsKey(key);
    }

    /**
     * The log for replica {@code key} of {@code s}: the one made ahead (of the roll, or while the segment before it
     * closed) if it is still empty, starts where {@code s} starts and holds no epoch but 0 (or, made while the segment
     * before closed, none later than {@code s}'s: {@link #serves}); one that would but starts elsewhere is moved there
     * ({@link SegmentLog#rebaseEmpty}); any other is deleted and made again. Else the
     * one on disk or a new one. An empty log on disk that starts elsewhere can only be one made ahead of a roll that
     * committed another start (the node restarted meanwhile): it is made again too.
     */
    SegmentLog openLog(Key key, Segment s) {
        String name = key.logName();
        Prepared p = prepared.remove(key);
        if (p != null) {
            if (!serves(p, s) && p.log().logEndOffset() == p.log().logStartOffset()
                    && (p.ahead() ? p.log().latestEpoch() <= s.getLeaderEpoch() : p.log().latestEpoch() < 0 && !takenAhead(s))) {
                // Made before its start was known (prepareAhead), or ahead of a roll that committed another start:
                // moved there, which costs far less than making it. (Not a log made ahead of a roll for a segment
                // taken ahead of its seal: that one goes beside the closing one, where prepareAhead makes its logs.)
                try {
                    p.log().rebaseEmpty(s.getStartOffset());
                } catch (LogException e) {
                    LOG.info("{}: moving the log made ahead to start at {} failed ({}): making it again", name, s.getStartOffset(), e.toString());
                }
            }
            if (serves(p, s)) {
                preparedTaken.incrementAndGet();
                if (p.ahead()) {
                    aheadTaken.incrementAndGet();
                    if (p.log().latestEpoch() == s.getLeaderEpoch()) {
                        aheadWithEpochTaken.incrementAndGet(); // taking the lead, or the first batch, writes no checkpoint
                    }
                }
                return p.log();
            }
            LOG.info("{}: the log made ahead of its roll does not fit the segment committed (start {}, log {}..{}, epoch {}): making it again",
                    name, s.getStartOffset(), p.log().logStartOffset(), p.log().logEndOffset(), p.log().latestEpoch());
            directory.deleteLog(name).join();
        }
        // A next segment taken ahead of its seal lives on its closing segment's data directory: a failure of that
        // directory takes both offline together, and is reported for the closing one, which the controller knows (the
        // next one it does not know yet: a copy of it lost alone would go unreported while the node stayed in the ISR).
        boolean ahead = takenAhead(s);
        String closingLog = new Key(key.shardId(), key.sequence() - 1).logName(); // (ahead: the log it goes beside)
        SegmentLog log = ahead
                ? directory.openLogBeside(name, closingLog, config.log(), s.getStartOffset())
                : directory.openLog(name, config.log(), s.getStartOffset());
        if (log.logStartOffset() != s.getStartOffset() && log.logEndOffset() > log.logStartOffset() && !ahead) {
            if (s.getIsrList().contains(config.nodeId()) || s.getLeader() == config.nodeId()) {
                log.close();
                throw new IllegalStateException("its log on disk starts at " + log.logStartOffset() + ", the segment at "
                        + s.getStartOffset() + ": it must not count in the ISR or lead with it");
            }
            // Taken ahead of a seal that kept another end (its leader lost the tail it handed over at), then the node
            // restarted: outside the ISR, it holds nothing that counts, and is made again.
            LOG.info("{}: the log on disk starts at {}, the segment at {}: making it again", name, log.logStartOffset(), s.getStartOffset());
            directory.deleteLog(name).join();
            log = directory.openLog(name, config.log(), s.getStartOffset());
        }
        if (log.logStartOffset() != s.getStartOffset() && ahead) {
            // Close ahead: a log of the next segment from another end than its leader's holds nothing acknowledged
            // (takeAhead), whatever it holds.
            LOG.info("{}: the log on disk starts at {}, the next segment is handed over at {}: making it again", name,
                    log.logStartOffset(), s.getStartOffset());
            directory.deleteLog(name).join();
            log = directory.openLogBeside(name, closingLog, config.log(), s.getStartOffset());
        }
        if (log.logStartOffset() != s.getStartOffset() && log.logEndOffset() == log.logStartOffset()) {
            LOG.info("{}: the empty log on disk starts at {}, the segment at {}: made ahead of a roll that committed another start; making it again",
                    name, log.logStartOffset(), s.getStartOffset());
            directory.deleteLog(name).join();
            log = directory.openLog(name, config.log(), s.getStartOffset());
        }
        return log;
    }

    /** Whether {@code s} is the next segment of a closing one hosted here, taken ahead of its seal ({@link AssignmentReconciler#takeAhead}). */
    private boolean takenAhead(Segment s) {
        Hosted before = hosted.get(new Key(s.getShardId(), s.getSequence() - 1));
        return before != null && before.closingVersion != 0 && s.getCreatedVersion() == before.closingVersion;
    }

    /**
     * Whether prepared log {@code p} can serve {@code s}: {@link #fits}; one made while the segment before closed
     * ({@link #prepareAhead}) may hold the epoch it wrote ahead, if {@code s} is led in it or a later one.
     */
    private static boolean serves(Prepared p, Segment s) {
        return serves(p.log(), p.ahead(), s);
    }

    static boolean serves(SegmentLog log, boolean ahead, Segment s) {
        return ahead ? log.logStartOffset() == s.getStartOffset() && log.logEndOffset() == s.getStartOffset()
                && log.latestEpoch() <= s.getLeaderEpoch() : fits(log, s.getStartOffset());
    }

    /** Whether a log made ahead of a roll can serve a segment starting at {@code start}: empty there, no epoch but 0. */
    static boolean fits(SegmentLog log, long start) {
        return log.logStartOffset() == start && log.logEndOffset() == start && log.latestEpoch() <= 0;
    }

    /** Logs made ahead of a roll that nothing claimed for {@link #PREPARED_TTL_MS}: deleted (on each assignment applied). */
    void expire() {
        long now = System.nanoTime();
        prepared.entrySet().removeIf(e -> {
            if (now - e.getValue().madeAtNanos() < TimeUnit.MILLISECONDS.toNanos(PREPARED_TTL_MS) || hosted.containsKey(e.getKey())) {
                return false;
            }
            Hosted closing = e.getValue().ahead() ? hosted.get(new Key(e.getKey().shardId(), e.getKey().sequence() - 1)) : null;
            if (closing != null && closing.closingVersion != 0 && closing.assigned.getStatus() == dev.segstore.protocol.meta.SegmentStatus.OPEN) {
                return false; // its segment still closes here (not sealed as far as this node knows): the hand-over may come any time
            }
            LOG.info("{}: made ahead of a roll that did not claim it; deleting it", e.getKey().logName());
            directory.deleteLog(e.getKey().logName());
            return true;
        });
    }

    /** Logs made ahead of a roll's commit and then claimed by the committed segment (tests, metrics). */
    long preparedTaken() {
        return preparedTaken.get();
    }

    /** Of those, logs made while the segment before closed ahead ({@link #prepareAhead}) (tests). */
    long aheadTaken() {
        return aheadTaken.get();
    }

    /** Of those, logs whose checkpoint already held the epoch their segment is led in, taken to lead or follow (tests). */
    long aheadWithEpochTaken() {
        return aheadWithEpochTaken.get();
    }
}
