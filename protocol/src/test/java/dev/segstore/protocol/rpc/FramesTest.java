package dev.segstore.protocol.rpc;

import com.google.protobuf.ByteString;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The frame decoder's copies: one per frame, the envelope's payload and the message in it are views of it; a frame
 * that spans reads is gathered without a buffer grown to its size, and holds about its own bytes however it is cut.
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

    /**
     * An allocator that remembers the largest buffer asked of it and the bytes asked in all (a buffer it made grows
     * without asking it again).
     */
    private static final class LargestAsked extends io.netty.buffer.AbstractByteBufAllocator {
        private int largest;
        private long total;

        LargestAsked() {
            super(false);
        }

        @Override
        protected io.netty.buffer.ByteBuf newHeapBuffer(int initialCapacity, int maxCapacity) {
            largest = Math.max(largest, initialCapacity);
            total += initialCapacity;
            return io.netty.buffer.Unpooled.buffer(initialCapacity, maxCapacity);
        }

        @Override
        protected io.netty.buffer.ByteBuf newDirectBuffer(int initialCapacity, int maxCapacity) {
            largest = Math.max(largest, initialCapacity);
            total += initialCapacity;
            return io.netty.buffer.Unpooled.directBuffer(initialCapacity, maxCapacity);
        }

        @Override
        public boolean isDirectBufferPooled() {
            return false;
        }
    }

    /** Envelope {@code e}'s frame, then an attachment frame of {@code attachment} when it is not null. */
    private static io.netty.buffer.ByteBuf framed(Envelope e, byte[] attachment) {
        io.netty.buffer.ByteBuf all = io.netty.buffer.Unpooled.buffer();
        all.writeInt(e.getSerializedSize()).writeBytes(e.toByteArray());
        if (attachment != null) {
            all.writeInt(attachment.length).writeBytes(attachment);
        }
        return all;
    }

    private static byte[] bytes(io.netty.buffer.ByteBuf b) {
        byte[] got = new byte[b.readableBytes()];
        b.getBytes(b.readerIndex(), got);
        return got;
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
        io.netty.buffer.ByteBuf all = framed(sent, attachment);
        int read = 64 * 1024 - 3;
        // Reads that end inside the first length field, inside the second, and then every 64 KiB - 3 bytes.
        for (int cut : new int[] {2, sent.getSerializedSize() + 6 - 2}) {
            ch.writeInbound(all.readRetainedSlice(cut));
        }
        while (all.isReadable()) {
            ch.writeInbound(all.readRetainedSlice(Math.min(read, all.readableBytes())));
        }
        all.release();
        Frame f = ch.readInbound();
        org.junit.jupiter.api.Assertions.assertNotNull(f, "a frame decoded");
        try {
            assertEquals(sent, f.envelope(), "the envelope decodes whole");
            org.junit.jupiter.api.Assertions.assertArrayEquals(attachment, bytes(f.attachment()), "the attachment's bytes, in order");
            org.junit.jupiter.api.Assertions.assertTrue(alloc.largest <= read,
                    "the decoder asked its allocator for a buffer of " + alloc.largest + " bytes to gather the frame in, more than a read"
                            + " of " + read + " (a buffer to grow: it reallocates itself, up to the frame's size)");
        } finally {
            f.release();
            ch.finishAndReleaseAll();
        }
    }

    @Test
    void aFrameSentAByteAtATimeHoldsNoneOfItsReadsBuffersAndSparesAHeldAttachment() {
        // Reads of one byte, each in a buffer of 64 (as a socket read into a buffer sized for more): a partial frame must
        // hold about its own bytes, not each read's buffer (netty's composite cumulator keeps every read as a part).
        // The first frame comes in reads of 1,000 bytes, so that its attachment is a slice of a gathered frame with
        // room at its end; it is held meanwhile, as a caller holds it until it copied it, and must stay as it was.
        io.netty.channel.embedded.EmbeddedChannel ch = new io.netty.channel.embedded.EmbeddedChannel();
        Frames.install(ch.pipeline(), 1 << 20);
        byte[] attachment = new byte[10_000];
        new java.util.Random(7).nextBytes(attachment);
        Envelope first = Envelope.newBuilder().setId(4).setMethod("node.Fetch").setAttachmentBytes(attachment.length).build();
        Envelope second = Envelope.newBuilder().setId(5).setMethod("node.Produce").setPayload(withPayload(20_000).toByteString()).build();
        io.netty.buffer.ByteBuf all = framed(first, attachment);
        io.netty.buffer.ByteBuf next = framed(second, null);
        all.writeBytes(next, 10); // the second frame's first bytes come in the same read as the first's last
        while (all.isReadable()) {
            ch.writeInbound(all.readRetainedSlice(Math.min(1_000, all.readableBytes())));
        }
        all.release();
        Frame held = ch.readInbound();
        org.junit.jupiter.api.Assertions.assertNotNull(held, "the first frame decoded");
        try {
            assertEquals(first, held.envelope());
            java.util.List<io.netty.buffer.ByteBuf> reads = new java.util.ArrayList<>();
            while (next.readableBytes() > 1) {
                io.netty.buffer.ByteBuf one = io.netty.buffer.Unpooled.buffer(64).writeByte(next.readByte());
                reads.add(one);
                ch.writeInbound(one);
            }
            org.junit.jupiter.api.Assertions.assertNull(ch.readInbound(), "the second frame lacks its last byte");
            long stillHeld = reads.stream().filter(b -> b.refCnt() > 0).count();
            assertEquals(0, stillHeld, stillHeld + " of the " + reads.size() + " one-byte reads' buffers are still held by the partial frame");
            ch.writeInbound(next.readRetainedSlice(1));
            Frame f = ch.readInbound();
            org.junit.jupiter.api.Assertions.assertNotNull(f, "the second frame decoded");
            assertEquals(second, f.envelope(), "the second frame decodes whole");
            f.release();
            org.junit.jupiter.api.Assertions.assertArrayEquals(attachment, bytes(held.attachment()), "the held attachment is unchanged");
        } finally {
            held.release();
            next.release();
            ch.finishAndReleaseAll();
        }
    }

    @Test
    void aFrameInAlternatingLargeAndOneByteReadsHoldsAtMostAboutTwiceItsBytes() {
        // Reads that could each be a part (at least 4 KiB, at least half their buffer full), each after a read of one
        // byte in a buffer of 64 (which leaves room at the frame's end). Before its last byte the partial frame may hold
        // its reads' buffers and what it asked its allocator for: about twice its bytes at most. Two shapes: 4 KiB in
        // 8 KiB buffers (the room left by a trim, if kept, held 4 times the frame) and 12,287 bytes in 24,574 (copying
        // into the room first and taking the rest as a part held the copied bytes twice: 2.7 times the frame).
        for (int[] shape : new int[][] {{4096, 8192}, {12_287, 24_574}}) {
            io.netty.channel.embedded.EmbeddedChannel ch = new io.netty.channel.embedded.EmbeddedChannel();
            LargestAsked alloc = new LargestAsked();
            ch.config().setAllocator(alloc);
            Frames.install(ch.pipeline(), 4 << 20);
            Envelope sent = Envelope.newBuilder().setId(6).setMethod("node.Produce").setPayload(withPayload(1 << 20).toByteString()).build();
            io.netty.buffer.ByteBuf all = framed(sent, null);
            int frameBytes = all.readableBytes();
            java.util.List<io.netty.buffer.ByteBuf> reads = new java.util.ArrayList<>();
            boolean big = true;
            while (all.readableBytes() > 1) {
                int n = Math.min(big ? shape[0] : 1, all.readableBytes() - 1);
                io.netty.buffer.ByteBuf read = io.netty.buffer.Unpooled.buffer(big ? shape[1] : 64).writeBytes(all, n);
                reads.add(read);
                ch.writeInbound(read);
                big = !big;
            }
            org.junit.jupiter.api.Assertions.assertNull(ch.readInbound(), "the frame lacks its last byte");
            long readBuffersHeld = reads.stream().filter(b -> b.refCnt() > 0).mapToLong(io.netty.buffer.ByteBuf::capacity).sum();
            long held = readBuffersHeld + alloc.total;
            org.junit.jupiter.api.Assertions.assertTrue(held <= 2L * frameBytes + 64 * 1024, "reads of " + shape[0] + " bytes in "
                    + shape[1] + ": the partial frame of " + frameBytes + " bytes holds " + held + " (its reads' buffers "
                    + readBuffersHeld + ", asked of the allocator " + alloc.total + ")");
            ch.writeInbound(all.readRetainedSlice(1));
            all.release();
            Frame f = ch.readInbound();
            org.junit.jupiter.api.Assertions.assertNotNull(f, "the frame decoded");
            assertEquals(sent, f.envelope(), "the frame decodes whole");
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
