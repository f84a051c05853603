package dev.segstore.log.epoch;

import dev.segstore.log.format.FormatException;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.CRC32C;

/**
 * The log's history of leader epochs: which epoch started writing at which offset. A replica that comes back
 * asks the leader for the end of its own latest epoch ({@link #endOffsetFor}) and truncates to it, as the
 * design's leader-epoch truncation requires. Epochs and start offsets both strictly grow.
 *
 * <p>Not thread-safe: the owning {@code SegmentLog} guards it. Persisted by the log as the file
 * {@code leader-epoch-checkpoint} ({@link #encode}):
 * <pre>
 *  0  u32 magic "SGEP"    4  u16 version = 1    6  u16 reserved
 *  8  i32 count           12 count x (i32 epoch, i64 startOffset)
 *  .. u32 crc             CRC32C of every byte before it
 * </pre>
 */
public final class LeaderEpochCache {
    public static final int MAGIC = 0x53474550;
    public static final int VERSION = 1;
    private final List<EpochEntry> entries = new ArrayList<>();

    public List<EpochEntry> entries() {
        return List.copyOf(entries);
    }

    public EpochEntry latest() {
        return entries.isEmpty() ? null : entries.get(entries.size() - 1);
    }

    /**
     * Records that {@code epoch} starts at {@code startOffset}. Returns true if the history changed. A known
     * epoch or an older one is ignored (a follower sees the same epoch on many batches).
     *
     * @throws IllegalArgumentException for a newer epoch that would start before the latest epoch's start
     */
    public boolean assign(int epoch, long startOffset) {
        EpochEntry latest = latest();
        if (latest != null && epoch <= latest.epoch()) {
            return false;
        }
        if (latest != null && startOffset < latest.startOffset()) {
            throw new IllegalArgumentException("epoch " + epoch + " cannot start at " + startOffset
                    + ", before epoch " + latest.epoch() + " started at " + latest.startOffset());
        }
        if (latest != null && startOffset == latest.startOffset()) {
            entries.remove(entries.size() - 1); // the older epoch wrote nothing
        }
        entries.add(new EpochEntry(epoch, startOffset));
        return true;
    }

    /** The end of {@code requestedEpoch} in a log whose end offset is {@code logEndOffset}; see {@link EpochEndOffset}. */
    public EpochEndOffset endOffsetFor(int requestedEpoch, long logEndOffset) {
        if (requestedEpoch < 0 || entries.isEmpty()) {
            return EpochEndOffset.UNDEFINED;
        }
        EpochEntry latest = latest();
        if (requestedEpoch >= latest.epoch()) {
            return requestedEpoch == latest.epoch() ? new EpochEndOffset(latest.epoch(), logEndOffset) : EpochEndOffset.UNDEFINED;
        }
        EpochEntry floor = null;
        EpochEntry higher = null;
        for (EpochEntry e : entries) {
            if (e.epoch() <= requestedEpoch) {
                floor = e;
            } else {
                higher = e;
                break;
            }
        }
        // Epoch older than all we know: it ended where our history starts.
        return new EpochEndOffset(floor == null ? requestedEpoch : floor.epoch(), higher.startOffset());
    }

    /** Drops epochs that start at or after {@code endOffset} (the log was truncated to it). Returns true if changed. */
    public boolean truncateFromEnd(long endOffset) {
        boolean changed = false;
        while (!entries.isEmpty() && latest().startOffset() >= endOffset) {
            entries.remove(entries.size() - 1);
            changed = true;
        }
        return changed;
    }

    /**
     * The log now starts at {@code startOffset} (old segments deleted): epochs wholly before it are dropped,
     * and the one that spans it now starts there. Returns true if changed.
     */
    public boolean truncateFromStart(long startOffset) {
        boolean changed = false;
        while (entries.size() > 1 && entries.get(1).startOffset() <= startOffset) {
            entries.remove(0);
            changed = true;
        }
        if (!entries.isEmpty() && entries.get(0).startOffset() < startOffset) {
            entries.set(0, new EpochEntry(entries.get(0).epoch(), startOffset));
            changed = true;
        }
        return changed;
    }

    public void clear() {
        entries.clear();
    }

    public byte[] encode() {
        ByteBuffer buf = ByteBuffer.allocate(12 + entries.size() * 12 + 4);
        buf.putInt(MAGIC).putShort((short) VERSION).putShort((short) 0).putInt(entries.size());
        for (EpochEntry e : entries) {
            buf.putInt(e.epoch()).putLong(e.startOffset());
        }
        CRC32C crc = new CRC32C();
        crc.update(buf.array(), 0, buf.position());
        buf.putInt((int) crc.getValue());
        return buf.array();
    }

    /** Reads a checkpoint written by {@link #encode}; throws {@link FormatException} naming what is wrong. */
    public static LeaderEpochCache decode(byte[] bytes) {
        if (bytes.length < 16) {
            throw new FormatException("leader-epoch checkpoint of " + bytes.length + " bytes is too short");
        }
        ByteBuffer buf = ByteBuffer.wrap(bytes);
        if (buf.getInt(0) != MAGIC) {
            throw new FormatException(String.format("leader-epoch checkpoint has bad magic 0x%08x", buf.getInt(0)));
        }
        CRC32C crc = new CRC32C();
        crc.update(bytes, 0, bytes.length - 4);
        if ((int) crc.getValue() != buf.getInt(bytes.length - 4)) {
            throw new FormatException("leader-epoch checkpoint checksum mismatch");
        }
        int version = Short.toUnsignedInt(buf.getShort(4));
        if (version != VERSION) {
            throw new FormatException("leader-epoch checkpoint version " + version + " is not supported");
        }
        int count = buf.getInt(8);
        if (count < 0 || 12 + (long) count * 12 + 4 != bytes.length) {
            throw new FormatException("leader-epoch checkpoint count " + count + " does not match its length " + bytes.length);
        }
        LeaderEpochCache cache = new LeaderEpochCache();
        buf.position(12);
        for (int i = 0; i < count; i++) {
            int epoch = buf.getInt();
            long start = buf.getLong();
            EpochEntry latest = cache.latest();
            if (epoch < 0 || start < 0 || (latest != null && (epoch <= latest.epoch() || start <= latest.startOffset()))) {
                throw new FormatException("leader-epoch checkpoint entry " + i + " (" + epoch + ", " + start + ") is out of order");
            }
            cache.entries.add(new EpochEntry(epoch, start));
        }
        return cache;
    }
}
