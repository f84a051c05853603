package dev.segstore.log;

import dev.segstore.log.epoch.EpochEndOffset;
import dev.segstore.log.epoch.EpochEntry;
import dev.segstore.log.epoch.LeaderEpochCache;
import dev.segstore.log.format.BatchView;
import dev.segstore.log.format.FileHeader;
import dev.segstore.log.format.FormatException;
import dev.segstore.log.format.RecordBatch;
import dev.segstore.log.io.LogFiles;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.OptionalLong;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.function.Supplier;

/**
 * A shard's replica on this node: a chain of {@link Segment} files in one directory, with a leader-epoch
 * history. The leader appends records and the log assigns offsets ({@link #appendAsLeader}); a follower
 * appends the leader's batches byte for byte with their offsets ({@link #appendAsFollower}); anyone reads
 * by offset ({@link #read}, {@link #readSlice}) or timestamp, and a replica that lost leadership truncates
 * ({@link #truncateTo}). Files in the log directory:
 * <pre>
 *   00000000000000000000.log  .oix  .tix   a segment and its indexes, named by base offset
 *   leader-epoch-checkpoint                 {@link LeaderEpochCache}
 *   log-state                               {@link LogState}: clean-shutdown flag and recovery point
 * </pre>
 *
 * <h2>Offsets</h2>
 * {@link #logStartOffset()} &le; {@link #durableEndOffset()} &le; {@link #writtenEndOffset()} &le;
 * {@link #logEndOffset()}. The log end offset counts every accepted append; reads see only what is written,
 * and never beyond the {@code upperBound} the caller passes (the high watermark, on a storage node).
 *
 * <h2>Threads</h2>
 * Mutating calls (appends, truncation, retention, close) take the log's monitor and are meant to come from
 * one owner thread per log; the file work happens on the directory's I/O thread. Reads take no lock and
 * may run on any thread, concurrently with appends.
 *
 * <h2>Recovery</h2>
 * After a clean shutdown the indexes are trusted (and rebuilt if missing or invalid). After an unclean one,
 * every segment from the one holding the recovery point on is read and checksummed: the first bad batch
 * there is a torn tail, so the log is truncated to it (with a warning naming the bytes dropped). A bad batch
 * below the recovery point, in bytes that were forced, is corruption and fails the open with
 * {@link LogException.Kind#CORRUPT_DATA}.
 */
public final class SegmentLog {
    private static final Logger LOG = LoggerFactory.getLogger(SegmentLog.class);
    static final String EPOCH_FILE = "leader-epoch-checkpoint";

    private final LogDirectory directory;
    private final LogFiles files;
    private final String name;
    private final Path dir;
    private final LogConfig config;
    /** The leader-epoch history and its checkpoint; guarded by this. */
    private final LogEpochs epochs;
    private final LogReader reader;
    private final AppendChecks checks;

    // Guarded by this.
    private Segment active;
    private boolean truncating;
    private boolean closed;
    private boolean sealed;
    private long recoveryPoint;
    /** Made by this open and no state written since: while it holds no record, it may still move ({@link #rebaseEmpty}). */
    private boolean untouched;

    private volatile long nextOffset;
    private volatile Segment[] segments;
    private volatile long writtenEndOffset;
    private volatile long durableEndOffset;
    /**
     * Bumped before and after a truncation cuts files (odd while it does), under the log's monitor: a read that
     * found bad bytes while this moved raced the cut, not a damaged file, and is read again (see {@link #read}).
     */
    private volatile long truncations;
    /** Told of every batch appended ({@link #observeAppends}); null: none. */
    private volatile AppendObserver observer;
    /** Whether the observer failed once (logged at WARN once); guarded by this. */
    private boolean observerFailed;

    private SegmentLog(LogDirectory directory, String name, Path dir, LogConfig config, LeaderEpochCache epochs) {
        this.directory = directory;
        this.files = directory.files();
        this.name = name;
        this.dir = dir;
        this.config = config;
        this.epochs = new LogEpochs(epochs, directory, dir, name);
        this.reader = new LogReader(name, directory);
        this.checks = new AppendChecks(name, config);
    }

    /** The log's directory ({@code <data directory root>/<name>}). */
    public Path dir() {
        return dir;
    }

    public String name() {
        return name;
    }

    public LogConfig config() {
        return config;
    }

    public long logStartOffset() {
        return segments[0].baseOffset();
    }

    /** The offset the next appended record gets. */
    public long logEndOffset() {
        return nextOffset;
    }

    /** Every offset below this is written to the file (readable). */
    public long writtenEndOffset() {
        return writtenEndOffset;
    }

    /** Every offset below this is forced to disk. */
    public long durableEndOffset() {
        return durableEndOffset;
    }

    public int segmentCount() {
        return segments.length;
    }

    /** Bytes of all segment files. */
    public long sizeInBytes() {
        long total = 0;
        for (Segment s : segments) {
            total += s.writtenSize();
        }
        return total;
    }

    public synchronized int latestEpoch() {
        EpochEntry e = epochs.latest();
        return e == null ? EpochEndOffset.UNDEFINED_EPOCH : e.epoch();
    }

    public synchronized List<EpochEntry> epochHistory() {
        return epochs.entries();
    }

    /** Where {@code epoch} ends in this log; see {@link EpochEndOffset}. */
    public synchronized EpochEndOffset endOffsetForEpoch(int epoch) {
        return epochs.endOffsetFor(epoch, nextOffset);
    }

    // ---- open and recovery ------------------------------------------------------------------------------

    static SegmentLog open(LogDirectory directory, String name, Path dir, LogConfig config, long initialOffset) {
        LogFiles files = directory.files();
        try {
            files.createDirectory(dir);
            List<Long> bases = LogRecovery.segmentBases(files, dir, name);
            byte[] epochBytes = files.readAll(dir.resolve(EPOCH_FILE));
            LeaderEpochCache epochs = epochBytes == null ? new LeaderEpochCache() : LeaderEpochCache.decode(epochBytes);
            SegmentLog log = new SegmentLog(directory, name, dir, config, epochs);
            byte[] stateBytes = files.readAll(dir.resolve(LogState.FILE));
            LogState state = stateBytes == null ? null : LogState.decode(stateBytes);
            log.load(bases, state, initialOffset, bases.isEmpty() && stateBytes == null && epochBytes == null);
            if (bases.isEmpty()) {
                directory.forceDirectoriesSoon(log.active);
            }
            if (epochBytes == null && log.logEndOffset() > log.logStartOffset()) {
                // The checkpoint is written before the first batch of every epoch, so data without it means loss.
                throw new FormatException(EPOCH_FILE + " is missing but the log holds records");
            }
            return log;
        } catch (FormatException e) {
            throw LogException.corrupt("log " + name + " in " + dir + ": " + e.getMessage());
        } catch (IOException e) {
            throw directory.ioFailure(e, "opening log " + name);
        }
    }

    /**
     * Loads the segments, recovering after an unclean shutdown. A {@code fresh} log (no segment, no
     * {@code log-state}, no epoch checkpoint: created now) writes neither file: absent, they say what they would
     * hold (no epoch, not shut down cleanly, nothing forced). The checkpoint is written when an epoch is first
     * assigned (a leader taking its epoch, {@link #assignEpochAtEnd}, or a follower's first batch), before anything
     * of that epoch; {@code log-state} at the first seal, truncation, clean close or next open. So creating a log
     * costs two directory forces (its entry in the parent, its first segment's entry in it), where it cost six: a
     * roll opens one on every replica at once, on the path of the writes waiting for it.
     */
    private synchronized void load(List<Long> bases, LogState state, long initialOffset, boolean fresh) throws IOException {
        boolean clean = state != null && state.clean();
        long rp = state == null ? -1 : state.recoveryPoint();
        List<Segment> loaded = LogRecovery.loadSegments(files, dir, name, config, bases, state, epochs.cache(), initialOffset);
        Segment last = loaded.get(loaded.size() - 1);
        if (!fresh && !clean) {
            // Not closed cleanly: the process that made the log may have died before its directory entries were
            // forced (they are forced before its bytes, not at creation). Forced before this process counts any byte
            // of it durable.
            last.forceDirectoriesFirst(dir);
            if (dir.getParent() != null) {
                last.forceDirectoriesFirst(dir.getParent());
            }
        }
        last.reopenForAppend();
        active = last;
        segments = loaded.toArray(new Segment[0]);
        nextOffset = last.writtenNextOffset();
        writtenEndOffset = nextOffset;
        durableEndOffset = nextOffset;
        boolean epochsChanged = epochs.truncateFromEnd(nextOffset);
        epochsChanged |= epochs.truncateFromStart(loaded.get(0).baseOffset());
        if (!fresh && (epochsChanged || state == null || !clean)) {
            epochs.persist();
        }
        recoveryPoint = clean ? nextOffset : Math.max(loaded.get(0).baseOffset(), Math.min(rp, nextOffset));
        // From here on a crash must look unclean (a fresh log has no log-state, which looks unclean).
        sealed = state != null && state.sealed();
        if (!fresh) {
            writeState(false);
        }
        untouched = fresh;
    }

    /** Replaces {@code log-state}; callers hold the log's monitor. */
    private void writeState(boolean clean) throws IOException {
        untouched = false;
        files.writeAtomically(dir.resolve(LogState.FILE), new LogState(clean, sealed, recoveryPoint).encode());
    }

    /** How many times this open wrote the leader-epoch checkpoint (each a forced write; tests and tracing). */
    public synchronized int epochCheckpointWrites() {
        return epochs.epochCheckpointWrites();
    }

    // ---- appends ----------------------------------------------------------------------------------------

    /** Appends records as the leader of {@code leaderEpoch}, without a producer id. */
    public CompletableFuture<AppendResult> appendAsLeader(List<AppendRecord> records, int leaderEpoch, Durability durability) {
        return appendAsLeader(records, leaderEpoch, RecordBatch.NO_PRODUCER_ID, RecordBatch.NO_SEQUENCE, durability);
    }

    /**
     * Appends {@code records} as one batch: the log assigns the next offsets. The future completes when the
     * batch is durable per {@code durability}, or at once with {@link AppendResult.Status#QUEUE_FULL}.
     *
     * @throws LogException INVALID_ARGUMENT for no records or an epoch older than the log's latest,
     *                      RECORD_TOO_LARGE above {@link LogConfig#maxBatchBytes()}, STORAGE_ERROR or CLOSED
     */
    public synchronized CompletableFuture<AppendResult> appendAsLeader(List<AppendRecord> records, int leaderEpoch,
                                                                        long producerId, int baseSequence,
                                                                        Durability durability) {
        ensureWritable();
        if (records == null || records.isEmpty()) {
            throw LogException.invalid("log " + name + ": an append needs at least one record");
        }
        checks.leaderEpoch(leaderEpoch, latestEpoch());
        ByteBuffer batch;
        try {
            batch = RecordBatch.encode(nextOffset, leaderEpoch, producerId, baseSequence, records);
        } catch (IllegalArgumentException e) {
            throw new LogException(LogException.Kind.RECORD_TOO_LARGE, "log " + name + ": " + e.getMessage());
        }
        return enqueueAsLeader(batch, durability);
    }

    /**
     * Appends a batch a writer encoded itself (with {@link RecordBatch#encode}, any offsets and epoch): the log
     * checks it ({@link RecordBatch#validate}: a bad batch is INVALID_ARGUMENT, nothing is written), stamps the
     * next offsets, {@code leaderEpoch}, {@code producerId} and {@code baseSequence} into it in place, and
     * appends its bytes as they are. Saves decoding and encoding every record again. The buffer must be a heap
     * buffer the log may keep; otherwise as {@link #appendAsLeader(List, int, long, int, Durability)}.
     */
    public synchronized CompletableFuture<AppendResult> appendEncodedAsLeader(ByteBuffer batch, int leaderEpoch, long producerId,
                                                                               int baseSequence, Durability durability) {
        ensureWritable();
        checks.leaderEpoch(leaderEpoch, latestEpoch());
        checks.encodedBatch(batch);
        RecordBatch.restamp(batch, nextOffset, leaderEpoch, producerId, baseSequence);
        return enqueueAsLeader(batch, durability);
    }

    private CompletableFuture<AppendResult> enqueueAsLeader(ByteBuffer batch, Durability durability) {
        checks.batchSize(batch);
        if (!directory.tryReserve(batch.remaining(), 1)) {
            return CompletableFuture.completedFuture(AppendResult.QUEUE_FULL);
        }
        BatchView view = BatchView.at(batch);
        CompletableFuture<AppendResult> future = new CompletableFuture<>();
        try {
            enqueueBatch(batch, view, durability, 1, future,
                    new AppendResult(AppendResult.Status.APPENDED, view.baseOffset(), view.lastOffset()));
        } catch (RuntimeException e) {
            directory.unreserve(batch.remaining(), 1);
            throw e;
        }
        return future;
    }

    /**
     * Appends batches fetched from the leader, keeping their offsets and bytes. {@code batches} holds whole
     * batches back to back; they are all checked (checksum, offsets that continue this log exactly, epochs
     * that never go back) before any is appended.
     *
     * @throws LogException OFFSET_MISMATCH for a gap or an overlap, CORRUPT_DATA for bad bytes
     */
    public synchronized CompletableFuture<AppendResult> appendAsFollower(ByteBuffer batches, Durability durability) {
        ensureWritable();
        int epoch = latestEpoch();
        // An epoch that starts at the log's end holds nothing yet: written ahead, it says where the leader this
        // replica follows starts it (Partition.becomeFollower keeps only that epoch's; docs/architecture.md, "Close
        // ahead"). The leader's log may hold older epochs there first (the segment's leadership moved after an
        // earlier hand-over, so its later epochs start past its start): batches older than it are taken against the
        // epoch before it, and the early entry is dropped for their own.
        EpochEntry latest = epochs.latest();
        boolean aheadOnly = latest != null && latest.startOffset() >= nextOffset;
        if (aheadOnly) {
            List<EpochEntry> all = epochs.entries();
            epoch = all.size() > 1 ? all.get(all.size() - 2).epoch() : EpochEndOffset.UNDEFINED_EPOCH;
        }
        List<BatchView> views = checks.followerBatches(batches, nextOffset, epoch);
        long total = batches.remaining();
        if (!directory.tryReserve(total, views.size())) {
            return CompletableFuture.completedFuture(AppendResult.QUEUE_FULL);
        }
        CompletableFuture<AppendResult> future = new CompletableFuture<>();
        AppendResult result = new AppendResult(AppendResult.Status.APPENDED, views.get(0).baseOffset(),
                views.get(views.size() - 1).nextOffset() - 1);
        int i = 0;
        try {
            if (aheadOnly && views.get(0).leaderEpoch() < latest.epoch()) {
                // Forced before any of the batches is written (the first batch's own epoch may already be the
                // latest left, which writes nothing): recovery never cuts an entry below the log's end.
                epochs.truncateFromEnd(nextOffset);
                epochs.persistOrFail();
            }
            for (; i < views.size(); i++) {
                boolean last = i == views.size() - 1;
                BatchView v = views.get(i);
                enqueueBatch(v.buffer(), v, durability, 1, last ? future : null, last ? result : null);
            }
        } catch (RuntimeException e) {
            long left = 0;
            for (int j = i; j < views.size(); j++) {
                left += views.get(j).sizeInBytes();
            }
            directory.unreserve(left, views.size() - i);
            throw e;
        }
        return future;
    }

    private void enqueueBatch(ByteBuffer bytes, BatchView view, Durability durability, int appends,
                              CompletableFuture<AppendResult> future, AppendResult result) {
        int size = view.sizeInBytes();
        long now = directory.nowMs();
        maybeRoll(size, view.recordCount(), now);
        epochs.assign(view.leaderEpoch(), view.baseOffset());
        long position = active.reserve(size, now);
        nextOffset = view.nextOffset();
        directory.enqueue(new IoTask.Write(this, active, position, bytes, view.baseOffset(), view.nextOffset(),
                view.maxTimestamp(), durability, System.nanoTime(), appends, future, result));
        AppendObserver o = observer;
        if (o != null) {
            // After the enqueue: whatever the observer does, the log holds what it was given.
            try {
                o.appended(view, truncations);
            } catch (RuntimeException e) {
                if (!observerFailed) {
                    observerFailed = true;
                    LOG.warn("Log {}: the append observer failed on the batch at offset {} (later failures are logged at DEBUG)",
                            name, view.baseOffset(), e);
                } else {
                    LOG.debug("Log {}: the append observer failed on the batch at offset {}: {}", name, view.baseOffset(), e.toString());
                }
            }
        }
    }

    /**
     * Told of each batch appended, as leader or follower, so that what the log's reader would read back can be taken
     * from the bytes being appended instead (the node's key and tag index: docs/architecture.md, "Key, tag and timestamp reads").
     */
    @FunctionalInterface
    public interface AppendObserver {
        /**
         * {@code batch} (whole, checked, with its final offsets) was appended at the log's end: it is queued for writing
         * (and may be written already), and its bytes must not be kept (they are read only during this call).
         * {@code truncations} is {@link #truncations()} then: a later truncation may have cut the batch. Runs on the
         * appending thread, under the log's monitor, once the batch is queued: it must be quick and take no lock that
         * waits on this log. What it throws is logged; the append stands.
         */
        void appended(BatchView batch, long truncations);
    }

    /** Sets the one observer of this log's appends ({@link AppendObserver}); null: none. Appends already made are not told. */
    public void observeAppends(AppendObserver observer) {
        this.observer = observer;
    }

    /**
     * How many times a truncation began or ended on this log (odd while one runs): appended batches told to an
     * {@link AppendObserver} with a different count than now may have been cut.
     */
    public long truncations() {
        return truncations;
    }

    /** Rolls to a new segment when the next batch would not fit, or the active segment is old enough. */
    private void maybeRoll(int size, int records, long nowMs) {
        Segment a = active;
        if (a.assignedSize() == FileHeader.SIZE) {
            return;
        }
        boolean full = a.assignedSize() + size > config.segmentBytes();
        boolean old = a.firstAppendMs() >= 0 && nowMs - a.firstAppendMs() >= config.segmentMs();
        boolean offsetsFull = nextOffset + records - a.baseOffset() > Integer.MAX_VALUE;
        if (full || old || offsetsFull) {
            rollNow();
        }
    }

    private void rollNow() {
        Segment a = active;
        Segment next;
        try {
            next = Segment.create(files, dir, nextOffset, config);
            next.forceDirectoriesFirst(dir); // before its first bytes are forced, not on this append's path
            directory.forceDirectoriesSoon(next);
        } catch (IOException e) {
            throw directory.ioFailure(e, "creating segment " + nextOffset + " of " + name);
        }
        Segment[] grown = Arrays.copyOf(segments, segments.length + 1);
        grown[grown.length - 1] = next;
        segments = grown;
        active = next;
        directory.enqueue(new IoTask.Seal(this, a, next.baseOffset()));
    }

    private void ensureWritable() {
        if (closed) {
            throw new LogException(LogException.Kind.CLOSED, "log " + name + " is closed");
        }
        directory.checkOnline();
        if (truncating) {
            throw new LogException(LogException.Kind.ILLEGAL_STATE, "log " + name
                    + " is being truncated; wait for truncateTo's future before appending");
        }
        if (sealed) {
            throw new LogException(LogException.Kind.ILLEGAL_STATE, "log " + name + " is sealed at offset " + nextOffset);
        }
    }

    // ---- called by the I/O thread -----------------------------------------------------------------------

    void onWritten(long next) {
        writtenEndOffset = next;
    }

    void onDurable() {
        durableEndOffset = writtenEndOffset;
    }

    /**
     * A background force covered every byte below {@code end} (read on the I/O thread when it started). Runs on
     * a force thread; nothing moves the end back meanwhile, as a truncation first waits for the force.
     */
    void onDurable(long end) {
        if (end > durableEndOffset) {
            durableEndOffset = end;
        }
    }

    synchronized void onSealed(long newRecoveryPoint) throws IOException {
        if (closed || newRecoveryPoint <= recoveryPoint) {
            return;
        }
        recoveryPoint = newRecoveryPoint;
        writeState(false);
    }

    // ---- reads --------------------------------------------------------------------------------------------

    private void checkReadable(long offset) {
        if (closed) {
            throw new LogException(LogException.Kind.CLOSED, "log " + name + " is closed");
        }
        directory.checkOnline();
        long start = logStartOffset();
        long end = nextOffset;
        if (offset < start || offset > end) {
            throw new LogException(LogException.Kind.OFFSET_OUT_OF_RANGE, "log " + name + ": offset " + offset
                    + " is outside [" + start + ", " + end + "]");
        }
    }

    /**
     * Decoded records from {@code offset} on, below {@code upperBound} (exclusive; pass the high watermark or
     * {@link Long#MAX_VALUE}), at most {@code maxRecords} and about {@code maxBytes} of record data (at least
     * one record when any is there). Every batch read is checksummed.
     *
     * @throws LogException OFFSET_OUT_OF_RANGE outside [logStartOffset, logEndOffset], CORRUPT_DATA
     */
    public List<LogRecord> read(long offset, int maxRecords, int maxBytes, long upperBound) {
        if (maxRecords < 1 || maxBytes < 1) {
            throw LogException.invalid("maxRecords and maxBytes must be >= 1: " + maxRecords + ", " + maxBytes);
        }
        return readRacingTruncations(offset,
                () -> reader.read(segments, offset, maxRecords, maxBytes, Math.min(upperBound, writtenEndOffset)));
    }

    /**
     * As {@link #read}, but each record comes with its offset, key and tags only (no headers, an empty payload):
     * what the key and tag index needs, without copying every payload. {@code maxBytes} counts keys and tags only.
     */
    public List<LogRecord> readKeysAndTags(long offset, int maxRecords, int maxBytes, long upperBound) {
        if (maxRecords < 1 || maxBytes < 1) {
            throw LogException.invalid("maxRecords and maxBytes must be >= 1: " + maxRecords + ", " + maxBytes);
        }
        return readRacingTruncations(offset,
                () -> reader.read(segments, offset, maxRecords, maxBytes, Math.min(upperBound, writtenEndOffset), false));
    }

    /** Runs {@code read} (which reads the log's current segments) and reads again after a racing truncation. */
    private <T> T readRacingTruncations(long offset, Supplier<T> read) {
        for (int attempt = 1; ; attempt++) {
            checkReadable(offset);
            long seen = truncations;
            try {
                return read.get();
            } catch (LogException e) {
                awaitTruncationIfRaced(e, seen, attempt);
            }
        }
    }

    /**
     * Rethrows {@code e} unless it is CORRUPT_DATA from a read that overlapped a truncation (the bytes were cut
     * under it); then waits for the truncation to end, so the caller reads again (and finds the offset gone, or
     * whole bytes). A log truncated under the same read ten times in a row gives up with the error.
     */
    private void awaitTruncationIfRaced(LogException e, long seen, int attempt) {
        boolean raced = (seen & 1) != 0 || truncations != seen;
        if (e.kind() != LogException.Kind.CORRUPT_DATA || !raced || attempt >= 10) {
            throw e;
        }
        synchronized (this) {
            // A truncation holds the monitor from the first bump to the second: once in here, it has ended.
        }
    }

    /**
     * Whole batches from the one holding {@code offset}, below {@code upperBound}, about {@code maxBytes}
     * long (always at least one batch when there is one), from a single segment, as a file slice to send
     * without copying. The caller must close the slice.
     */
    public FileSlice readSlice(long offset, int maxBytes, long upperBound) {
        if (maxBytes < 1) {
            throw LogException.invalid("maxBytes must be >= 1: " + maxBytes);
        }
        return readRacingTruncations(offset,
                () -> reader.readSlice(segments, offset, maxBytes, Math.min(upperBound, writtenEndOffset)));
    }

    /** The first offset below {@code upperBound} whose record has a timestamp &gt;= {@code timestamp}. */
    public OptionalLong offsetForTimestamp(long timestamp, long upperBound) {
        return reader.offsetForTimestamp(segments, timestamp, Math.min(upperBound, writtenEndOffset));
    }

    // ---- rolling and sealing ----------------------------------------------------------------------------------

    /**
     * Starts a new segment file now, if the active one holds anything (for example when an operator or a
     * storage node wants an older file to become deletable). Returns the new segment's base offset.
     */
    public synchronized long roll() {
        ensureWritable();
        if (active.assignedSize() > FileHeader.SIZE) {
            rollNow();
        }
        return active.baseOffset();
    }

    /**
     * Makes the whole log immutable at its current end: the active segment is forced and sealed, and the
     * sealed state survives restarts. Later appends, truncations and rolls fail with ILLEGAL_STATE. The
     * future completes with the log end offset once the seal is durable.
     */
    public synchronized CompletableFuture<Long> seal() {
        ensureWritable();
        sealed = true;
        long end = nextOffset;
        Segment last = active; // no roll, append or truncation comes after this, but through a later Run
        // On a force thread, not the I/O thread: the directory's other logs (a roll's next segment among them, on
        // this node) go on being written while this one is forced. Only this log's bytes need forcing for its
        // state to say so; a later truncation, close or delete of it waits for this first (LogDirectory).
        CompletableFuture<Object> done = new CompletableFuture<>();
        directory.enqueue(new IoTask.Offload("sealing log " + name, () -> {
            last.seal();
            synchronized (this) {
                if (!sealed) {
                    throw new LogException(LogException.Kind.ILLEGAL_STATE, "log " + name + " was unsealed (to be truncated) before its seal was durable");
                }
                if (!closed) { // else the close, queued after this, writes the sealed state with the clean flag
                    recoveryPoint = Math.max(recoveryPoint, end);
                    writeState(false);
                }
                return end;
            }
        }, done));
        return done.thenApply(o -> (Long) o);
    }

    /**
     * Moves a log made by this open, to which nothing was written since (no record, no state; at most one epoch,
     * assigned at its start), to start at {@code start}: its segment file and indexes are renamed and their headers
     * rewritten in place, which costs far less than making a log (issue 14 item 7: a storage node makes the next
     * segment's log while a segment closes ahead, before the offset it starts at is known). For a log nobody reads or
     * writes yet. A crash part way leaves an empty log starting at the old start or at {@code start}: such a log is
     * unclean (it has no state), so its recovery drops a segment file whose header does not match its name and rebuilds
     * the indexes (docs/on-disk-formats.md). An epoch assigned at the old start now starts at {@code start}: moved
     * forward, in memory only, as the checkpoint's entry at an earlier offset than the log's start reads the same (the
     * log's start bounds it, as after retention, {@link LeaderEpochCache#truncateFromStart}), so a node can write a
     * next segment's epoch checkpoint ahead too; moved back, the checkpoint is written again.
     *
     * @throws LogException ILLEGAL_STATE if the log is not such a log (the caller makes the log anew); CLOSED;
     *                      STORAGE_ERROR if the files could not be moved: an I/O error, which takes the data directory
     *                      offline as any other does (the log is closed without its state)
     */
    public synchronized void rebaseEmpty(long start) {
        if (start < 0) {
            throw LogException.invalid("start " + start + " must be >= 0");
        }
        ensureWritable();
        EpochEntry epoch = epochs.latest();
        if (!untouched || segments.length != 1 || !active.isEmpty() || nextOffset != active.baseOffset()
                || epochs.entries().size() > 1 || epoch != null && epoch.startOffset() != active.baseOffset()) {
            throw new LogException(LogException.Kind.ILLEGAL_STATE, "log " + name + " is not a log made now and left empty: it cannot move");
        }
        if (start == active.baseOffset()) {
            return;
        }
        Segment moved;
        try {
            moved = active.rebaseEmpty(start);
        } catch (IllegalStateException e) {
            throw new LogException(LogException.Kind.ILLEGAL_STATE, "log " + name + ": " + e.getMessage()); // nothing moved
        } catch (IOException e) {
            closed = true; // its files may be half moved: nothing more is written through this object
            active.release(); // closes the file
            directory.forget(this);
            throw directory.ioFailure(e, "moving the empty log " + name + " to start at " + start); // as any I/O error
        }
        active = moved;
        segments = new Segment[] {moved};
        nextOffset = start;
        writtenEndOffset = start;
        durableEndOffset = start;
        recoveryPoint = start;
        directory.forceDirectoriesSoon(moved); // the renames: most likely forced before the first write needs them
        epochs.rebase(epoch, start);
    }

    public synchronized boolean isSealed() {
        return sealed;
    }

    /**
     * Repairs a sealed replica that holds records its segment's leader does not (it was sealed before it
     * reconciled with the leader): unseals the log and truncates it to {@code offset}, so it can fetch the
     * leader's records and be sealed again. On a log that is not sealed, or holds nothing at or after
     * {@code offset}, this is {@link #truncateTo}.
     */
    public synchronized CompletableFuture<Long> unsealAndTruncateTo(long offset) {
        if (offset >= nextOffset) {
            return CompletableFuture.completedFuture(nextOffset);
        }
        if (!sealed) {
            return truncateTo(offset);
        }
        LOG.warn("Log {} is sealed at {} but holds records its leader does not: unsealing it and truncating to {}",
                name, nextOffset, offset);
        sealed = false; // persisted with the truncation's new state
        try {
            return truncateTo(offset);
        } catch (RuntimeException e) {
            sealed = true; // refused (closed, offline, below the log start): still sealed, as on disk
            throw e;
        }
    }

    /**
     * Records that {@code epoch} starts at the log's end, before anything is written in it (a new leader). A
     * known or older epoch changes nothing.
     */
    public synchronized void assignEpochAtEnd(int epoch) {
        epochs.assign(epoch, nextOffset);
    }

    /**
     * Drops epochs that start at the log's end: epochs in which nothing was written (a leader's, assigned at its start,
     * which a new leader never saw). Keeps the latest epoch if it is {@code followed}, the epoch of the leader this
     * replica follows now, which that leader knows (an epoch has one leader): a follower that wrote its leader's epoch
     * ahead (docs/architecture.md, "Close ahead") so writes no checkpoint at its first batch. Such an entry may be
     * early (the leader's log holds older epochs there first); {@link #appendAsFollower} then replaces it.
     */
    public synchronized void dropEmptyEpochsBut(int followed) {
        epochs.dropEmptyBut(followed, nextOffset);
    }

    /** Whether the data directory this log lives in is online (an I/O error takes it offline for good). */
    public boolean isOnline() {
        return directory.isOnline();
    }

    // ---- truncation and retention -------------------------------------------------------------------------

    /**
     * Removes every record at or after {@code offset}. If {@code offset} falls inside a batch, the whole batch
     * goes (epoch ends, which truncation uses, are always batch boundaries). Appends are refused until the
     * returned future completes with the new log end offset.
     */
    public synchronized CompletableFuture<Long> truncateTo(long offset) {
        ensureWritable();
        if (offset < logStartOffset()) {
            throw new LogException(LogException.Kind.OFFSET_OUT_OF_RANGE, "log " + name + ": cannot truncate to "
                    + offset + ", below the log start " + logStartOffset());
        }
        if (offset >= nextOffset) {
            return CompletableFuture.completedFuture(nextOffset);
        }
        truncating = true;
        return directory.run("truncating log " + name + " to " + offset, () -> doTruncate(offset))
                .thenApply(o -> (Long) o)
                .whenComplete((r, e) -> {
                    synchronized (this) {
                        truncating = false;
                    }
                });
    }

    /** I/O thread. */
    private synchronized long doTruncate(long offset) throws IOException {
        truncations++;
        try {
            return cutAt(offset);
        } finally {
            truncations++;
        }
    }

    /** I/O thread, under the log's monitor. */
    private long cutAt(long offset) throws IOException {
        Segment[] segs = segments;
        int idx = LogReader.floorSegment(segs, offset);
        Segment target = segs[idx];
        Segment.Position p = target.locate(offset);
        List<Segment> dropped = new ArrayList<>(Arrays.asList(segs).subList(idx + 1, segs.length));
        // The recovery point goes down first: log-state says every record below it was forced, and a file cut below
        // it, with the state still naming it (an I/O error between the cut and the state's update), made the log
        // refuse to open as corrupt, so its replica never came back (found by the fault schedules). A lower
        // recovery point only makes a recovery scan more.
        if (target.baseOffset() < recoveryPoint) {
            recoveryPoint = target.baseOffset();
            writeState(false);
        }
        target.truncateFile(p.position());
        target.recover(null);
        target.reopenForAppend();
        segments = Arrays.copyOf(segs, idx + 1);
        active = target;
        long newEnd = target.writtenNextOffset();
        nextOffset = newEnd;
        writtenEndOffset = newEnd;
        durableEndOffset = Math.min(durableEndOffset, newEnd);
        for (Segment s : dropped) {
            s.markDeleted();
        }
        files.forceDirectory(dir);
        if (epochs.truncateFromEnd(newEnd)) {
            epochs.persist();
        }
        recoveryPoint = Math.min(recoveryPoint, target.baseOffset());
        writeState(false);
        LOG.info("Log {} truncated to {} (asked {}), {} segment(s) dropped", name, newEnd, offset, dropped.size());
        return newEnd;
    }

    /**
     * Applies retention: deletes the oldest sealed segments whose newest record is older than
     * {@code retentionMs}, and then while the log is larger than {@code retentionBytes}. The active segment
     * is never deleted. Returns how many segments were removed from the log.
     */
    public synchronized int deleteRetainedSegments(long nowMs) {
        if (closed) {
            throw new LogException(LogException.Kind.CLOSED, "log " + name + " is closed");
        }
        directory.checkOnline();
        Segment[] segs = segments;
        long size = sizeInBytes();
        int drop = 0;
        while (drop < segs.length - 1) {
            Segment s = segs[drop];
            boolean expired = config.retentionMs() > 0 && s.maxTimestamp() >= 0 && s.maxTimestamp() < nowMs - config.retentionMs();
            boolean tooBig = config.retentionBytes() > 0 && size - s.writtenSize() >= config.retentionBytes();
            if (!expired && !tooBig) {
                break;
            }
            size -= s.writtenSize();
            drop++;
        }
        if (drop == 0) {
            return 0;
        }
        List<Segment> gone = Arrays.asList(segs).subList(0, drop);
        segments = Arrays.copyOfRange(segs, drop, segs.length);
        boolean epochsChanged = epochs.truncateFromStart(segments[0].baseOffset());
        directory.run("deleting " + drop + " segment(s) of " + name, () -> {
            if (epochsChanged) {
                synchronized (this) {
                    epochs.persist();
                }
            }
            for (Segment s : gone) {
                s.markDeleted();
            }
            files.forceDirectory(dir);
            return null;
        });
        LOG.info("Log {}: retention deleted {} segment(s); log starts at {}", name, drop, segments[0].baseOffset());
        return drop;
    }

    // ---- close ---------------------------------------------------------------------------------------------

    /** Flushes everything, trims the indexes, marks the shutdown clean and closes the files. Idempotent. */
    public synchronized CompletableFuture<Void> closeAsync() {
        if (closed) {
            return CompletableFuture.completedFuture(null);
        }
        closed = true;
        return directory.run("closing log " + name, () -> {
            synchronized (this) {
                active.flushForClose();
                for (Segment s : segments) {
                    s.release();
                }
                recoveryPoint = nextOffset;
                writeState(true);
                directory.forget(this);
                return null;
            }
        }).thenApply(o -> null);
    }

    public void close() {
        try {
            closeAsync().join();
        } catch (CompletionException e) {
            throw e.getCause() instanceof LogException le ? le : e;
        }
    }
}
