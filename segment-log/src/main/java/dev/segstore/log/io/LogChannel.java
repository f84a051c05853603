package dev.segstore.log.io;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.WritableByteChannel;

/**
 * The file operations the segment code uses, and nothing more: the seam under which tests put a file layer
 * that loses unsynced bytes, tears writes and flips bits. All positions are absolute; implementations must
 * allow concurrent positional reads while one thread writes.
 */
public interface LogChannel extends Closeable {

    /** Writes all of {@code src} at {@code position}. */
    void writeFully(ByteBuffer src, long position) throws IOException;

    /** Reads into {@code dst} from {@code position} until it is full or the file ends; returns the bytes read. */
    int readFully(ByteBuffer dst, long position) throws IOException;

    long size() throws IOException;

    /** Cuts the file to {@code size} bytes. */
    void truncate(long size) throws IOException;

    /** Makes every write so far durable (fdatasync). */
    void force() throws IOException;

    /** Sends {@code count} bytes from {@code position} to {@code target}, without copying where the OS can. */
    long transferTo(long position, long count, WritableByteChannel target) throws IOException;
}
