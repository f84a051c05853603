package dev.segstore.log.epoch;

/**
 * Answer to "where does epoch E end in your log?": the largest epoch at or below E that this log knows, and
 * the offset where it ends (the start of the next known epoch, or the log end offset for the latest epoch).
 * {@link #UNDEFINED} when E is newer than every epoch the log knows.
 */
public record EpochEndOffset(int epoch, long endOffset) {
    public static final int UNDEFINED_EPOCH = -1;
    public static final long UNDEFINED_OFFSET = -1;
    public static final EpochEndOffset UNDEFINED = new EpochEndOffset(UNDEFINED_EPOCH, UNDEFINED_OFFSET);

    public boolean isUndefined() {
        return epoch == UNDEFINED_EPOCH && endOffset == UNDEFINED_OFFSET;
    }
}
