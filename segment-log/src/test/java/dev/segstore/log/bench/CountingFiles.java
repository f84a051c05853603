package dev.segstore.log.bench;

import dev.segstore.log.io.ForwardingLogChannel;
import dev.segstore.log.io.ForwardingLogFiles;
import dev.segstore.log.io.LogChannel;

import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicLong;

/** Real files, counting the forces, so the benchmark can report fsyncs per second (group commit at work). */
final class CountingFiles extends ForwardingLogFiles {
    final AtomicLong forces = new AtomicLong();

    @Override
    public LogChannel open(Path file, boolean create) throws IOException {
        return new ForwardingLogChannel(super.open(file, create)) {
            @Override
            public void force() throws IOException {
                forces.incrementAndGet();
                inner.force();
            }
        };
    }
}
