package dev.segstore.protocol.rpc;

import io.netty.buffer.ByteBuf;

/**
 * One decoded message: its envelope, and its attachment when the envelope announced one (a retained buffer
 * the receiver must release), else null.
 */
public record Frame(Envelope envelope, ByteBuf attachment) {
    void release() {
        if (attachment != null) {
            attachment.release();
        }
    }
}
