package dev.segstore.protocol.rpc;

import com.google.protobuf.ByteString;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The frame decoder's copies: one per frame, the envelope's payload and the message in it are views of it; a frame
 * that spans reads is gathered as the reads, not copied into a buffer grown to its size.
 */
@org.junit.jupiter.api.Timeout(60)
class FramesTest {
    /** A bytes field parsed as a view of a larger array, not copied out of it (protobuf's class for such a view). */
    private static boolean isView(ByteString b) {
        return b.getClass().getSimpleName().equals("BoundedByteString");
    }

    private static Envelope withPayload(int bytes) {
        byte[] records = new byte[bytes];
        java.util.Arrays.fill(records, (byte) 7);
        return Envelope.newBuilder().setId(2).setMethod("inner").setPayload(ByteString.copyFrom(records)).build();
    }

    @Test
    void theDecoderInThePipelineGivesEnvelopesWhosePayloadIsAViewOfTheFrame() {
        io.netty.channel.embedded.EmbeddedChannel ch = new io.netty.channel.embedded.EmbeddedChannel();
        Frames.install(ch.pipeline(), 1 << 20);
        Envelope sent = Envelope.newBuilder().setId(1).setMethod("node.Produce").setPayload(withPayload(1_000).toByteString()).build();
        byte[] bytes = sent.toByteArray();
        io.netty.buffer.ByteBuf in = io.netty.buffer.Unpooled.buffer();
        in.writeInt(bytes.length).writeBytes(bytes);
        ch.writeInbound(in);
        Frame f = ch.readInbound();
        assertEquals(sent, f.envelope(), "the envelope decodes whole");
        org.junit.jupiter.api.Assertions.assertTrue(isView(f.envelope().getPayload()),
                "the payload is a view of the frame's copy, not a copy of its own: " + f.envelope().getPayload().getClass());
        ch.finishAndReleaseAll();
    }

    /** An allocator that remembers the largest buffer asked of it (a buffer it made grows without asking it again). */
    private static final class LargestAsked extends io.netty.buffer.AbstractByteBufAllocator {
        private int largest;

        LargestAsked() {
            super(false);
        }

        @Override
        protected io.netty.buffer.ByteBuf newHeapBuffer(int initialCapacity, int maxCapacity) {
            largest = Math.max(largest, initialCapacity);
            return io.netty.buffer.Unpooled.buffer(initialCapacity, maxCapacity);
        }

        @Override
        protected io.netty.buffer.ByteBuf newDirectBuffer(int initialCapacity, int maxCapacity) {
            largest = Math.max(largest, initialCapacity);
            return io.netty.buffer.Unpooled.directBuffer(initialCapacity, maxCapacity);
        }

        @Override
        public boolean isDirectBufferPooled() {
            return false;
        }
    }

    @Test
    void aLargeFrameArrivingInManyReadsIsGatheredWithoutABufferOfItsSize() {
        // A fetch answer's attachment of 1 MiB and its envelope, arriving in reads of at most 64 KiB (what a socket read
        // gives): the decoder must hand both over whole without asking its allocator for a buffer of the frame's size
        // (growing one buffer copied the frame at every doubling, and buffers that large took pooled chunks made anew).
        io.netty.channel.embedded.EmbeddedChannel ch = new io.netty.channel.embedded.EmbeddedChannel();
        LargestAsked alloc = new LargestAsked();
        ch.config().setAllocator(alloc);
        Frames.install(ch.pipeline(), 4 << 20);
        byte[] attachment = new byte[1 << 20];
        new java.util.Random(42).nextBytes(attachment);
        Envelope sent = Envelope.newBuilder().setId(3).setMethod("node.FetchMany").setPayload(withPayload(100_000).toByteString())
                .setAttachmentBytes(attachment.length).build();
        io.netty.buffer.ByteBuf all = io.netty.buffer.Unpooled.buffer();
        all.writeInt(sent.getSerializedSize()).writeBytes(sent.toByteArray()).writeInt(attachment.length).writeBytes(attachment);
        int read = 64 * 1024 - 3; // reads that end inside length fields and frames alike
        while (all.isReadable()) {
            ch.writeInbound(all.readRetainedSlice(Math.min(read, all.readableBytes())));
        }
        all.release();
        Frame f = ch.readInbound();
        try {
            assertEquals(sent, f.envelope(), "the envelope decodes whole");
            byte[] got = new byte[f.attachment().readableBytes()];
            f.attachment().getBytes(f.attachment().readerIndex(), got);
            org.junit.jupiter.api.Assertions.assertArrayEquals(attachment, got, "the attachment's bytes, in order");
            org.junit.jupiter.api.Assertions.assertTrue(alloc.largest <= read,
                    "the decoder asked its allocator for a buffer of " + alloc.largest + " bytes to gather the frame in, more than a read"
                            + " of " + read + " (a buffer to grow: it reallocates itself, up to the frame's size)");
        } finally {
            f.release();
            ch.finishAndReleaseAll();
        }
    }

    @Test
    void aServerAndAClientParseTheMessagesInEnvelopesAsViews() throws Exception {
        // Envelope serves as a message with a bytes field: the handler answers whether its request's was a view, and
        // sends one back for the client to check its own parse.
        RpcServer server = new RpcServer(1, 1 << 20).register(RpcHandler.of("view", Envelope.parser(), r ->
                java.util.concurrent.CompletableFuture.completedFuture(r.toBuilder().setId(isView(r.getPayload()) ? 1 : 0).build())));
        RpcClient client = new RpcClient(1, 1 << 20);
        try {
            java.net.InetSocketAddress bound = server.start("127.0.0.1", 0);
            Envelope answer = client.call("127.0.0.1:" + bound.getPort(), "view", withPayload(1_000), Envelope.parser(), 10_000)
                    .get(30, java.util.concurrent.TimeUnit.SECONDS);
            assertEquals(1, answer.getId(), "the server's request: its records are a view of the frame");
            org.junit.jupiter.api.Assertions.assertTrue(isView(answer.getPayload()), "the client's answer: its records are a view of the frame");
            assertEquals(withPayload(1_000).getPayload(), answer.getPayload(), "and the same bytes");
        } finally {
            client.close();
            server.close();
        }
    }

    @Test
    void anEnvelopeAndTheMessageInItAreViewsOfTheFramesBytesNotCopies() throws Exception {
        byte[] records = new byte[1_000];
        java.util.Arrays.fill(records, (byte) 7);
        // A message with a bytes field (an envelope will do) as the payload of the envelope a frame holds.
        Envelope inner = Envelope.newBuilder().setId(2).setMethod("inner").setPayload(ByteString.copyFrom(records)).build();
        Envelope outer = Envelope.newBuilder().setId(1).setMethod("node.Produce").setPayload(inner.toByteString()).build();
        byte[] frame = outer.toByteArray();

        Envelope e = Envelope.parseFrom(Frames.aliasing(frame));
        Envelope m = Frames.parsePayload(Envelope.parser(), e.getPayload());
        assertEquals(inner, m, "the message parses whole");
        assertEquals(1, e.getId());

        // The frame's array is the decoder's own, never written after it is parsed; here it is, to see who shares it.
        int last = frame.length - 1; // the records' last byte: the inner payload ends both envelopes
        frame[last] = 9;
        assertEquals(9, e.getPayload().byteAt(e.getPayload().size() - 1), "the envelope's payload is a view of the frame");
        assertEquals(9, m.getPayload().byteAt(m.getPayload().size() - 1), "the records in the message are a view of the frame");
    }
}
