package dev.segstore.log.io;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/** {@link LogFiles} over the real file system, for test layers that change only some calls. */
public class ForwardingLogFiles implements LogFiles {
    protected final LogFiles real = RealLogFiles.INSTANCE;

    @Override
    public LogChannel open(Path file, boolean create) throws IOException {
        return real.open(file, create);
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
    public boolean createDirectory(Path dir) throws IOException {
        return real.createDirectory(dir);
    }

    @Override
    public void rename(Path from, Path to) throws IOException {
        real.rename(from, to);
    }

    @Override
    public void forceDirectory(Path dir) throws IOException {
        real.forceDirectory(dir);
    }

    @Override
    public String pageCacheId() {
        return real.pageCacheId();
    }
}
