package dev.segstore.log.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/** {@link LogFiles} over the real file system, with {@link FileChannel}s. */
public final class RealLogFiles implements LogFiles {
    public static final RealLogFiles INSTANCE = new RealLogFiles();

    /** Where Linux keeps the id of the current boot (a random UUID drawn at every boot). */
    static final Path BOOT_ID = Path.of("/proc/sys/kernel/random/boot_id");
    private static volatile String bootId;

    private RealLogFiles() {
    }

    /** The kernel's boot id ({@link #BOOT_ID}), read once; {@code ""} where there is none (not Linux). */
    @Override
    public String pageCacheId() {
        String id = bootId;
        if (id == null) {
            try {
                id = Files.readString(BOOT_ID).trim();
            } catch (IOException | UnsupportedOperationException e) {
                id = "";
            }
            bootId = id;
        }
        return id;
    }

    @Override
    public LogChannel open(Path file, boolean create) throws IOException {
        FileChannel ch = create
                ? FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE)
                : FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE);
        return new FileLogChannel(ch);
    }

    @Override
    public void writeAtomically(Path file, byte[] content) throws IOException {
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            ByteBuffer buf = ByteBuffer.wrap(content);
            while (buf.hasRemaining()) {
                ch.write(buf);
            }
            ch.force(true);
        }
        Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        forceDirectory(file.getParent());
    }

    @Override
    public byte[] readAll(Path file) throws IOException {
        try {
            return Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            return null;
        }
    }

    @Override
    public List<String> list(Path dir) throws IOException {
        List<String> names = new ArrayList<>();
        try (Stream<Path> s = Files.list(dir)) {
            s.filter(Files::isRegularFile).forEach(p -> names.add(p.getFileName().toString()));
        }
        names.sort(null);
        return names;
    }

    @Override
    public void delete(Path file) throws IOException {
        Files.deleteIfExists(file);
    }

    @Override
    public void createDirectories(Path dir) throws IOException {
        Files.createDirectories(dir);
        if (dir.getParent() != null) {
            forceDirectory(dir.getParent());
        }
    }

    @Override
    public boolean createDirectory(Path dir) throws IOException {
        try {
            Files.createDirectory(dir);
            return true;
        } catch (java.nio.file.FileAlreadyExistsException e) {
            if (Files.isDirectory(dir)) {
                return false;
            }
            throw e;
        }
    }

    @Override
    public void rename(Path from, Path to) throws IOException {
        Files.move(from, to, StandardCopyOption.ATOMIC_MOVE);
    }

    @Override
    public void forceDirectory(Path dir) throws IOException {
        try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
            ch.force(true);
        }
    }

    /** A {@link LogChannel} over a {@link FileChannel}; exposes the channel for zero-copy senders. */
    public static final class FileLogChannel implements LogChannel {
        private final FileChannel channel;

        FileLogChannel(FileChannel channel) {
            this.channel = channel;
        }

        public FileChannel fileChannel() {
            return channel;
        }

        @Override
        public void writeFully(ByteBuffer src, long position) throws IOException {
            long p = position;
            while (src.hasRemaining()) {
                p += channel.write(src, p);
            }
        }

        @Override
        public int readFully(ByteBuffer dst, long position) throws IOException {
            int total = 0;
            while (dst.hasRemaining()) {
                int n = channel.read(dst, position + total);
                if (n < 0) {
                    break;
                }
                total += n;
            }
            return total;
        }

        @Override
        public long size() throws IOException {
            return channel.size();
        }

        @Override
        public void truncate(long size) throws IOException {
            channel.truncate(size);
        }

        @Override
        public void force() throws IOException {
            channel.force(false);
        }

        @Override
        public long transferTo(long position, long count, WritableByteChannel target) throws IOException {
            return channel.transferTo(position, count, target);
        }

        @Override
        public void close() throws IOException {
            channel.close();
        }
    }
}
