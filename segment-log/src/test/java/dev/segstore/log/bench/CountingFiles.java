package dev.segstore.log.bench;

import dev.segstore.log.io.LogChannel;
import dev.segstore.log.io.LogFiles;
import dev.segstore.log.io.RealLogFiles;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

/** Real files, counting the forces, so the benchmark can report fsyncs per second (group commit at work). */
final class CountingFiles implements LogFiles {
    final AtomicLong forces = new AtomicLong();

    @Override
    public LogChannel open(Path file, boolean create) throws IOException {
        LogChannel inner = RealLogFiles.INSTANCE.open(file, create);
        return new LogChannel() {
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
                forces.incrementAndGet();
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
