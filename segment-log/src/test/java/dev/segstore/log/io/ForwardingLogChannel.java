package dev.segstore.log.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.WritableByteChannel;

/** A {@link LogChannel} that passes every call to another; test layers override what they change. */
public class ForwardingLogChannel implements LogChannel {
    protected final LogChannel inner;

    public ForwardingLogChannel(LogChannel inner) {
        this.inner = inner;
    }

    @Override
    public void writeFully(ByteBuffer src, long position) throws IOException {
        inner.writeFully(src, position);
    }

    @Override
    public int readFully(ByteBuffer dst, long position) throws IOException {
        return inner.readFully(dst, position);
    }

    @Override
    public long size() throws IOException {
        return inner.size();
    }

    @Override
    public void truncate(long size) throws IOException {
        inner.truncate(size);
    }

    @Override
    public void force() throws IOException {
        inner.force();
    }

    @Override
    public long transferTo(long position, long count, WritableByteChannel target) throws IOException {
        return inner.transferTo(position, count, target);
    }

    @Override
    public void close() throws IOException {
        inner.close();
    }
}
