package dev.segstore.protocol.rpc;

import io.netty.channel.ChannelPipeline;
import io.netty.handler.codec.LengthFieldBasedFrameDecoder;
import io.netty.handler.codec.LengthFieldPrepender;
import io.netty.handler.codec.protobuf.ProtobufDecoder;
import io.netty.handler.codec.protobuf.ProtobufEncoder;

/**
 * The framing both ends use: a u32 big-endian length, then one {@link Envelope}. A frame longer than
 * {@code maxFrameBytes} closes the connection (the decoder fails before buffering it).
 */
public final class Frames {
    public static final int DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024;

    private Frames() {
    }

    public static void install(ChannelPipeline p, int maxFrameBytes) {
        p.addLast("frame-decoder", new LengthFieldBasedFrameDecoder(maxFrameBytes, 0, 4, 0, 4));
        p.addLast("frame-encoder", new LengthFieldPrepender(4));
        p.addLast("envelope-decoder", new ProtobufDecoder(Envelope.getDefaultInstance()));
        p.addLast("envelope-encoder", new ProtobufEncoder());
    }
}
