package dev.segstore.protocol.rpc;

import java.io.IOException;
import java.nio.channels.WritableByteChannel;

/**
 * Raw bytes sent after an answer's envelope, straight from their source (a file region, with
 * {@code FileChannel.transferTo}) instead of being copied into the protobuf message. See rpc.proto.
 */
public interface Attachment {
    /** Bytes to send. */
    int length();

    /** Sends up to {@code count} bytes from {@code from} to {@code target}; returns how many were sent. */
    long transferTo(long from, long count, WritableByteChannel target) throws IOException;

    /** Called once, when the bytes were sent or the send failed. */
    void release();
}
