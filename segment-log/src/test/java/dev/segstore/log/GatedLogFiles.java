package dev.segstore.log;

import dev.segstore.log.io.ForwardingLogChannel;
import dev.segstore.log.io.ForwardingLogFiles;
import dev.segstore.log.io.LogChannel;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/** Real files, with a count of forces and a gate that can hold the I/O thread inside {@code force()}. */
final class GatedLogFiles extends ForwardingLogFiles {
    final AtomicInteger forces = new AtomicInteger();
    final AtomicInteger writes = new AtomicInteger();
    /** Forces waiting at the closed gate right now. */
    final AtomicInteger held = new AtomicInteger();
    private volatile CountDownLatch gate = new CountDownLatch(0);
    private volatile CountDownLatch entered = new CountDownLatch(1);

    /** Makes the next forces wait until {@link #open()}. */
    void close() {
        // A force that passed the open gate earlier (the "warm" append's) must not count as held: awaitHeld()
        // waits for one that reaches this closed gate.
        entered = new CountDownLatch(1);
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
        return new ForwardingLogChannel(super.open(file, create)) {
            @Override
            public void writeFully(ByteBuffer src, long position) throws IOException {
                writes.incrementAndGet();
                inner.writeFully(src, position);
            }

            @Override
            public void force() throws IOException {
                forces.incrementAndGet();
                CountDownLatch g = gate;
                if (g.getCount() > 0) {
                    entered.countDown();
                }
                held.incrementAndGet();
                try {
                    if (!g.await(30, TimeUnit.SECONDS)) {
                        throw new IOException("gate never opened");
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IOException(e);
                } finally {
                    held.decrementAndGet();
                }
                inner.force();
            }
        };
    }
}
