package dev.segstore.log;

import dev.segstore.log.epoch.EpochEndOffset;
import dev.segstore.log.epoch.EpochEntry;
import dev.segstore.log.epoch.LeaderEpochCache;
import dev.segstore.log.io.LogFiles;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * The leader-epoch history of a {@link SegmentLog} ({@link LeaderEpochCache}) and its checkpoint file,
 * {@code leader-epoch-checkpoint} ({@link SegmentLog#EPOCH_FILE}), which {@link #persist} replaces (an atomic,
 * forced write, counted for {@link SegmentLog#epochCheckpointWrites}). When the history changes and when the
 * checkpoint is written is mostly the log's to say (see {@code SegmentLog.load}); the log passes its end offset
 * where a rule here needs it.
 *
 * <p>Threads: not safe on its own and takes no lock; guarded by the log's monitor, as the rest of the log's state.
 */
final class LogEpochs {
    private final LeaderEpochCache epochs;
    private final LogDirectory directory;
    private final LogFiles files;
    private final Path dir;
    private final String name;
    private int epochCheckpointWrites;

    LogEpochs(LeaderEpochCache epochs, LogDirectory directory, Path dir, String name) {
        this.epochs = epochs;
        this.directory = directory;
        this.files = directory.files();
        this.dir = dir;
        this.name = name;
    }

    /** The history itself, for recovery to learn the epochs of the batches it scans ({@link LogRecovery#loadSegments}). */
    LeaderEpochCache cache() {
        return epochs;
    }

    EpochEntry latest() {
        return epochs.latest();
    }

    List<EpochEntry> entries() {
        return epochs.entries();
    }

    /** See {@link LeaderEpochCache#endOffsetFor}. */
    EpochEndOffset endOffsetFor(int epoch, long logEndOffset) {
        return epochs.endOffsetFor(epoch, logEndOffset);
    }

    /** See {@link LeaderEpochCache#truncateFromEnd}; writes nothing. */
    boolean truncateFromEnd(long endOffset) {
        return epochs.truncateFromEnd(endOffset);
    }

    /** See {@link LeaderEpochCache#truncateFromStart}; writes nothing. */
    boolean truncateFromStart(long startOffset) {
        return epochs.truncateFromStart(startOffset);
    }

    /** Replaces the checkpoint with the history as it is now. */
    void persist() throws IOException {
        epochCheckpointWrites++;
        files.writeAtomically(dir.resolve(SegmentLog.EPOCH_FILE), epochs.encode());
    }

    /** As {@link #persist}, but an I/O error takes the data directory offline (STORAGE_ERROR), as any other does. */
    void persistOrFail() {
        try {
            persist();
        } catch (IOException e) {
            throw directory.ioFailure(e, "writing the leader-epoch checkpoint of " + name);
        }
    }

    /**
     * Records that {@code epoch} starts at {@code startOffset} ({@link LeaderEpochCache#assign}) and, if that changed
     * the history, writes the checkpoint ({@link #persistOrFail}).
     */
    void assign(int epoch, long startOffset) {
        if (epochs.assign(epoch, startOffset)) {
            persistOrFail();
        }
    }

    /** See {@link SegmentLog#dropEmptyEpochsBut}; {@code logEndOffset} is the log's end. */
    void dropEmptyBut(int followed, long logEndOffset) {
        EpochEntry latest = epochs.latest();
        if (latest != null && latest.epoch() == followed) {
            return; // every entry before it starts below it, so below the log's end
        }
        if (epochs.truncateFromEnd(logEndOffset)) {
            persistOrFail();
        }
    }

    /**
     * The log made now and left empty moved to start at {@code start} ({@link SegmentLog#rebaseEmpty}); {@code epoch}
     * is its one epoch (assigned at its old start), or null. Moved forward, the entry moves in memory only, as the
     * checkpoint's entry at an earlier offset than the log's start reads the same; moved back, the checkpoint is
     * written again.
     */
    void rebase(EpochEntry epoch, long start) {
        if (epoch != null) {
            if (start > epoch.startOffset()) {
                epochs.truncateFromStart(start);
            } else {
                epochs.clear();
                epochs.assign(epoch.epoch(), start);
                persistOrFail(); // an entry past the log's start would not read the same
            }
        }
    }

    /** See {@link SegmentLog#epochCheckpointWrites}. */
    int epochCheckpointWrites() {
        return epochCheckpointWrites;
    }
}
