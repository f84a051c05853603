package dev.segstore.node.replica;

import dev.segstore.log.io.ForwardingLogChannel;
import dev.segstore.log.io.ForwardingLogFiles;
import dev.segstore.log.io.LogChannel;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * Real files whose segment writes or forces (fsync) a test can fail (as a failing disk: EIO) or whose writes it
 * can hold (a stalled disk: the directory's I/O thread waits in the write until {@link #release}). Failures do not
 * heal: a node recovers by starting again on another file layer. Only {@code .log} files are affected;
 * state files and indexes work as usual.
 */
public final class FaultyFiles extends ForwardingLogFiles {
    private volatile boolean failWrites;
    private volatile boolean failForces;
    private volatile CountDownLatch gate;

    public void failWrites() {
        failWrites = true;
    }

    /** Forces (fsync) of segment files fail from now on; writes still reach the page cache. */
    public void failForces() {
        failForces = true;
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
        return new ForwardingLogChannel(ch) {
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
                super.writeFully(src, position);
            }

            @Override
            public void force() throws IOException {
                if (failForces) {
                    throw new IOException("injected force failure");
                }
                super.force();
            }
        };
    }
}
