package dev.segstore.protocol.rpc;

import com.google.protobuf.ByteString;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The frame decoder's copies: one per frame, the envelope's payload and the message in it are views of it. */
class FramesTest {
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
