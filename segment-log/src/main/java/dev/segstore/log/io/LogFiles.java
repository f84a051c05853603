package dev.segstore.log.io;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * File-system operations of the segment log, as a seam (see {@link LogChannel}). {@link RealLogFiles} is the
 * production implementation; tests wrap it to inject faults.
 */
public interface LogFiles {

    /** Opens a file for reading and writing, creating it when {@code create} is set. */
    LogChannel open(Path file, boolean create) throws IOException;

    /**
     * Replaces {@code file} with {@code content} atomically and durably: written to a temporary file, forced,
     * renamed over the old one, and the directory forced. After a crash the file holds the old or the new
     * content, never a mix.
     */
    void writeAtomically(Path file, byte[] content) throws IOException;

    /** The file's whole content, or null when it does not exist. */
    byte[] readAll(Path file) throws IOException;

    /** The names of the regular files in {@code dir}, sorted. */
    List<String> list(Path dir) throws IOException;

    void delete(Path file) throws IOException;

    /** Creates the directory and its parents, and forces the parent so the entry survives a crash. */
    void createDirectories(Path dir) throws IOException;

    /**
     * Creates {@code dir} (its parent exists) if it does not exist, without forcing the parent: the caller forces
     * it before anything in {@code dir} is counted durable. True if this call created it.
     */
    boolean createDirectory(Path dir) throws IOException;

    /**
     * Renames {@code from} to {@code to} in the same directory, atomically (a file of that name is replaced). Durable
     * once the directory is forced ({@link #forceDirectory}).
     */
    void rename(Path from, Path to) throws IOException;

    /** Forces a directory's entries (created, renamed, deleted files) to disk. */
    void forceDirectory(Path dir) throws IOException;

    /**
     * The identity of the page cache holding the bytes written through these files and not yet forced, or
     * {@code ""} when unknown. Two answers, even from different processes, are the same non-empty id only if no
     * such byte can have been lost in between: the kernel's boot id on Linux (a process that dies leaves its
     * written bytes in the page cache; a machine crash or reboot loses them and changes the id).
     */
    default String pageCacheId() {
        return "";
    }
}
