package dev.segstore.node.replica;

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

/**
 * Real files whose segment writes a test can fail (as a failing disk: EIO) or hold (a stalled disk: the
 * directory's I/O thread waits in the write until {@link #release}). Only {@code .log} files are affected;
 * state files and indexes work as usual.
 */
public final class FaultyFiles implements LogFiles {
    private final LogFiles real = RealLogFiles.INSTANCE;
    private volatile boolean failWrites;
    private volatile CountDownLatch gate;

    public void failWrites() {
        failWrites = true;
    }

    /** Segment writes wait from now on until {@link #release}. */
    public void hold() {
        gate = new CountDownLatch(1);
    }

    public void release() {
        CountDownLatch g = gate;
        gate = null;
        if (g != null) {
            g.countDown();
        }
    }

    @Override
    public LogChannel open(Path file, boolean create) throws IOException {
        LogChannel ch = real.open(file, create);
        if (!file.getFileName().toString().endsWith(".log")) {
            return ch;
        }
        return new LogChannel() {
            @Override
            public void writeFully(ByteBuffer src, long position) throws IOException {
                CountDownLatch g = gate;
                if (g != null) {
                    try {
                        if (!g.await(30, TimeUnit.SECONDS)) {
                            throw new IOException("held write never released");
                        }
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        throw new IOException("interrupted while held", e);
                    }
                }
                if (failWrites) {
                    throw new IOException("injected write failure");
                }
                ch.writeFully(src, position);
            }

            @Override
            public int readFully(ByteBuffer dst, long position) throws IOException {
                return ch.readFully(dst, position);
            }

            @Override
            public long size() throws IOException {
                return ch.size();
            }

            @Override
            public void truncate(long size) throws IOException {
                ch.truncate(size);
            }

            @Override
            public void force() throws IOException {
                ch.force();
            }

            @Override
            public long transferTo(long position, long count, WritableByteChannel target) throws IOException {
                return ch.transferTo(position, count, target);
            }

            @Override
            public void close() throws IOException {
                ch.close();
            }
        };
    }

    @Override
    public void writeAtomically(Path file, byte[] content) throws IOException {
        real.writeAtomically(file, content);
    }

    @Override
    public byte[] readAll(Path file) throws IOException {
        return real.readAll(file);
    }

    @Override
    public List<String> list(Path dir) throws IOException {
        return real.list(dir);
    }

    @Override
    public void delete(Path file) throws IOException {
        real.delete(file);
    }

    @Override
    public void createDirectories(Path dir) throws IOException {
        real.createDirectories(dir);
    }

    @Override
    public void forceDirectory(Path dir) throws IOException {
        real.forceDirectory(dir);
    }
}
