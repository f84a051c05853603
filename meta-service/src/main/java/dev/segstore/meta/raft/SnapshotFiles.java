package dev.segstore.meta.raft;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * The file operations saving a snapshot makes, a seam so that tests can check their order (the file and its
 * directory must be on disk before jraft publishes the snapshot).
 */
interface SnapshotFiles {
    /** Writes {@code bytes} as {@code file}, replacing it; not necessarily durable yet. */
    void write(Path file, byte[] bytes) throws IOException;

    /** Makes the written contents of {@code file} durable (fsync). */
    void forceFile(Path file) throws IOException;

    /** Makes the directory's entries (the names of files created in it) durable (fsync of the directory). */
    void forceDirectory(Path dir) throws IOException;

    SnapshotFiles DEFAULT = new SnapshotFiles() {
        @Override
        public void write(Path file, byte[] bytes) throws IOException {
            Files.write(file, bytes);
        }

        @Override
        public void forceFile(Path file) throws IOException {
            // fsync through any descriptor of the file flushes all its dirty pages.
            try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
                ch.force(true);
            }
        }

        @Override
        public void forceDirectory(Path dir) throws IOException {
            // Linux: fsync of a directory opened read-only makes its entries durable.
            try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
                ch.force(true);
            }
        }
    };
}
