package dev.segstore.log;

import dev.segstore.log.io.LogChannel;
import dev.segstore.log.io.LogFiles;
import dev.segstore.log.io.RealLogFiles;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/** Real files, with a count of forces and a gate that can hold the I/O thread inside {@code force()}. */
final class GatedLogFiles implements LogFiles {
    final AtomicInteger forces = new AtomicInteger();
    final AtomicInteger writes = new AtomicInteger();
    private volatile CountDownLatch gate = new CountDownLatch(0);
    private final CountDownLatch entered = new CountDownLatch(1);

    /** Makes the next forces wait until {@link #open()}. */
    void close() {
        gate = new CountDownLatch(1);
    }

    void open() {
        gate.countDown();
    }

    /** Waits until some force is held at the gate. */
    void awaitHeld() throws InterruptedException {
        if (!entered.await(30, TimeUnit.SECONDS)) {
            throw new AssertionError("no force reached the gate");
        }
    }

    @Override
    public LogChannel open(Path file, boolean create) throws IOException {
        LogChannel inner = RealLogFiles.INSTANCE.open(file, create);
        return new LogChannel() {
            @Override
            public void writeFully(ByteBuffer src, long position) throws IOException {
                writes.incrementAndGet();
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
                forces.incrementAndGet();
                entered.countDown();
                try {
                    if (!gate.await(30, TimeUnit.SECONDS)) {
                        throw new IOException("gate never opened");
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IOException(e);
                }
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
        };
    }

    @Override
    public void writeAtomically(Path file, byte[] content) throws IOException {
        RealLogFiles.INSTANCE.writeAtomically(file, content);
    }

    @Override
    public byte[] readAll(Path file) throws IOException {
        return RealLogFiles.INSTANCE.readAll(file);
    }

    @Override
    public List<String> list(Path dir) throws IOException {
        return RealLogFiles.INSTANCE.list(dir);
    }

    @Override
    public void delete(Path file) throws IOException {
        RealLogFiles.INSTANCE.delete(file);
    }

    @Override
    public void createDirectories(Path dir) throws IOException {
        RealLogFiles.INSTANCE.createDirectories(dir);
    }

    @Override
    public void forceDirectory(Path dir) throws IOException {
        RealLogFiles.INSTANCE.forceDirectory(dir);
    }
}
