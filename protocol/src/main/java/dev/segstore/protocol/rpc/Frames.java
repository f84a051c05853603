package dev.segstore.protocol.rpc;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelPipeline;
import io.netty.handler.codec.CorruptedFrameException;
import io.netty.handler.codec.LengthFieldBasedFrameDecoder;
import io.netty.handler.codec.LengthFieldPrepender;
import io.netty.handler.codec.MessageToMessageDecoder;
import io.netty.handler.codec.protobuf.ProtobufEncoder;
import io.netty.util.AbstractReferenceCounted;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.WritableByteChannel;
import java.util.List;

/**
 * The framing both ends use: a u32 big-endian length, then one {@link Envelope}; when the envelope announces
 * an attachment ({@code attachment_bytes}), the next frame holds its raw bytes. A frame longer than
 * {@code maxFrameBytes} closes the connection (the decoder fails before buffering it). Inbound handlers get
 * {@link Frame}s.
 */
public final class Frames {
    public static final int DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024;

    private Frames() {
    }

    /**
     * A read at least this large that fills at least half its buffer becomes a part of its frame as it is, when the
     * frame's end has no room left (see {@link #GATHER}).
     */
    static final int PART_BYTES = 4096;
    /** Room made at a frame's end at a time for the reads copied there. */
    static final int SPARE_BYTES = 8192;

    /**
     * Gathers a frame that spans socket reads without growing one buffer to its size. Growing (netty's default, the
     * merge cumulator) copied the frame again at every doubling, and a buffer as large as a big fetch answer took a
     * chunk of the pooled allocator that was made anew, and zeroed, each time the last one had been freed
     * (docs/benchmarks.md, "Frames gathered as their reads"). Here a read of at least {@link #PART_BYTES} that fills
     * at least half its buffer becomes a part of the frame as it is (no copy) when the frame's end has no room left;
     * any other read is copied into room made at the frame's end ({@link #SPARE_BYTES}, or the read's size if
     * larger, at a time). netty's composite cumulator makes every read a part: a frame sent a byte at a time then held
     * a buffer and its bookkeeping per byte. Here a partial frame holds its parts' buffers (at most twice their
     * bytes), its copied bytes once, its first read's buffer and the room left at its end (at most a read's size or
     * {@link #SPARE_BYTES}), however its sender cuts it.
     */
    static final io.netty.handler.codec.ByteToMessageDecoder.Cumulator GATHER = (alloc, cumulation, in) -> {
        if (!cumulation.isReadable()) { // the last frame ended where the read before this one did
            cumulation.release();
            return in;
        }
        io.netty.buffer.CompositeByteBuf parts = null;
        boolean wrapped = false;
        boolean done = false;
        try {
            if (cumulation instanceof io.netty.buffer.CompositeByteBuf c && c.refCnt() == 1) {
                parts = c; // the decoder's own composite, no frame sliced from it held
            } else {
                // A first read, or a composite a held frame (an attachment) shares: the rest goes into a composite of
                // its own, which takes a reference of its own (the decoder's is let go only once this succeeds).
                wrapped = true;
                parts = alloc.compositeBuffer(Integer.MAX_VALUE);
                parts.addFlattenedComponents(true, cumulation.retain());
            }
            int n = in.readableBytes();
            if (parts.writableBytes() == 0 && n >= PART_BYTES && n >= in.capacity() / 2) {
                // No room at the end (a part is placed at the composite's capacity, after the last byte): copying
                // into room first and taking the rest as a part would hold the copied bytes twice.
                io.netty.buffer.ByteBuf part = in;
                in = null; // addFlattenedComponents owns it from here, failing or not
                parts.addFlattenedComponents(true, part);
            } else {
                if (parts.writableBytes() < n) {
                    parts.capacity(parts.writerIndex() + Math.max(n, SPARE_BYTES));
                }
                parts.writeBytes(in);
                in.release();
                in = null;
            }
            if (wrapped) {
                cumulation.release();
            }
            done = true;
            return parts;
        } finally {
            if (in != null) {
                in.release();
            }
            if (!done && wrapped && parts != null) {
                parts.release(); // and with it the reference it took of the cumulation, which stays the decoder's
            }
        }
    };

    public static void install(ChannelPipeline p, int maxFrameBytes) {
        // Answers and requests are mostly written from other threads (shard owners, callers), many at once
        // when a group commit completes: flush once per burst, not once per message (a syscall each).
        p.addLast("flush-consolidation", new io.netty.handler.flush.FlushConsolidationHandler(
                io.netty.handler.flush.FlushConsolidationHandler.DEFAULT_EXPLICIT_FLUSH_AFTER_FLUSHES, true));
        LengthFieldBasedFrameDecoder frames = new LengthFieldBasedFrameDecoder(maxFrameBytes, 0, 4, 0, 4);
        frames.setCumulator(GATHER);
        p.addLast("frame-decoder", frames);
        p.addLast("frame-encoder", new LengthFieldPrepender(4));
        p.addLast("envelope-decoder", new EnvelopeDecoder());
        p.addLast("envelope-encoder", new ProtobufEncoder());
    }

    /**
     * A reader of {@code bytes} whose bytes fields are views of it, not copies. The frame decoder copies each frame
     * once into an array nothing else holds or writes, and the envelope's payload and the message parsed from it
     * ({@link #parsePayload}) are views of that array: a produce request's records were copied three times before
     * the node's own copy (parsing the envelope from an InputStream also allocated a 4 KiB buffer per envelope, a
     * quarter of a storage node's allocations at one write at a time: docs/benchmarks.md, "Fewer copies and
     * allocations per request"). A bytes field kept after its message holds the whole frame's array (none is kept
     * now: the meta-service's request ids reach its state through the Raft log, parsed again there).
     */
    static com.google.protobuf.CodedInputStream aliasing(byte[] bytes) {
        // Through a ByteString: CodedInputStream.newInstance(byte[]) takes the array as mutable and copies anyway.
        com.google.protobuf.CodedInputStream in = com.google.protobuf.UnsafeByteOperations.unsafeWrap(bytes).newCodedInput();
        in.enableAliasing(true);
        return in;
    }

    /** An envelope's payload as {@code parser}'s message, its bytes fields views of the frame's array (see {@link #aliasing}). */
    static <M> M parsePayload(com.google.protobuf.Parser<M> parser, com.google.protobuf.ByteString payload)
            throws com.google.protobuf.InvalidProtocolBufferException {
        com.google.protobuf.CodedInputStream in = payload.newCodedInput();
        in.enableAliasing(true);
        M message = parser.parseFrom(in);
        in.checkLastTagWas(0); // as parseFrom(ByteString) checks
        return message;
    }

    /** Envelopes, each with its attachment frame when it announced one. One per connection. */
    private static final class EnvelopeDecoder extends MessageToMessageDecoder<ByteBuf> {
        private Envelope waiting;

        @Override
        protected void decode(ChannelHandlerContext ctx, ByteBuf frame, List<Object> out) throws IOException {
            if (waiting != null) {
                if (frame.readableBytes() != waiting.getAttachmentBytes()) {
                    throw new CorruptedFrameException("attachment of " + frame.readableBytes() + " bytes, the envelope announced "
                            + waiting.getAttachmentBytes());
                }
                out.add(new Frame(waiting, frame.retain()));
                waiting = null;
                return;
            }
            com.google.protobuf.CodedInputStream in = aliasing(io.netty.buffer.ByteBufUtil.getBytes(frame)); // a copy, always
            Envelope e = Envelope.parseFrom(in);
            in.checkLastTagWas(0); // as parseFrom(InputStream) checked: a stray end-group tag is malformed, not an end
            if (e.getAttachmentBytes() > 0) {
                waiting = e;
            } else {
                out.add(new Frame(e, null));
            }
        }
    }

    /**
     * Writes an envelope and its attachment as two frames, back to back on the channel's event loop (nothing
     * may come between them). The attachment goes out as a file region: its length prefix, then its bytes by
     * {@link Attachment#transferTo} (zero-copy for files).
     */
    static void writeWithAttachment(io.netty.channel.Channel ch, Envelope envelope, Attachment attachment) {
        Runnable write = () -> {
            ch.write(envelope.toBuilder().setAttachmentBytes(attachment.length()).build());
            if (ch.pipeline().get(io.netty.handler.ssl.SslHandler.class) != null) {
                ch.writeAndFlush(copied(ch, attachment)); // TLS encrypts buffers: no zero-copy file region
            } else {
                ch.writeAndFlush(new AttachmentRegion(attachment));
            }
        };
        if (ch.eventLoop().inEventLoop()) {
            write.run();
        } else {
            ch.eventLoop().execute(write);
        }
    }

    /**
     * The attachment's bytes copied into a buffer, for a TLS connection (the frame encoder prefixes the length, as
     * for an envelope); the attachment is released at once.
     */
    private static ByteBuf copied(io.netty.channel.Channel ch, Attachment attachment) {
        ByteBuf buf = ch.alloc().buffer(attachment.length());
        try {
            WritableByteChannel into = new WritableByteChannel() {
                @Override
                public int write(ByteBuffer src) {
                    int n = src.remaining();
                    buf.writeBytes(src);
                    return n;
                }

                @Override
                public boolean isOpen() {
                    return true;
                }

                @Override
                public void close() {
                }
            };
            long done = 0;
            while (done < attachment.length()) {
                long n = attachment.transferTo(done, attachment.length() - done, into);
                if (n <= 0) {
                    throw new IOException("attachment ended after " + done + " of " + attachment.length() + " bytes");
                }
                done += n;
            }
            return buf;
        } catch (IOException | RuntimeException e) {
            buf.release();
            throw new java.io.UncheckedIOException(e instanceof IOException io ? io : new IOException(e));
        } finally {
            attachment.release();
        }
    }

    /** The attachment frame: a u32 length, then the attachment's bytes. Passes the encoders untouched. */
    private static final class AttachmentRegion extends AbstractReferenceCounted implements io.netty.channel.FileRegion {
        private final Attachment attachment;
        private final ByteBuffer prefix;
        private long transferred;

        AttachmentRegion(Attachment attachment) {
            this.attachment = attachment;
            this.prefix = ByteBuffer.allocate(4).putInt(0, attachment.length());
        }

        @Override
        public long position() {
            return 0;
        }

        @Override
        @Deprecated
        public long transfered() {
            return transferred;
        }

        @Override
        public long transferred() {
            return transferred;
        }

        @Override
        public long count() {
            return 4L + attachment.length();
        }

        @Override
        public long transferTo(WritableByteChannel target, long position) throws IOException {
            long n = 0;
            if (position < 4) {
                prefix.position((int) position);
                n = target.write(prefix);
                if (prefix.hasRemaining()) {
                    transferred += n;
                    return n;
                }
                position = 4;
            }
            long body = attachment.transferTo(position - 4, attachment.length() - (position - 4), target);
            n += body;
            transferred += n;
            return n;
        }

        @Override
        protected void deallocate() {
            attachment.release();
        }

        @Override
        public AttachmentRegion retain() {
            super.retain();
            return this;
        }

        @Override
        public AttachmentRegion retain(int increment) {
            super.retain(increment);
            return this;
        }

        @Override
        public AttachmentRegion touch() {
            return this;
        }

        @Override
        public AttachmentRegion touch(Object hint) {
            return this;
        }
    }
}
