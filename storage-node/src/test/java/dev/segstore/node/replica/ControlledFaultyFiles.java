package dev.segstore.node.replica;

import dev.segstore.log.io.LogChannel;
import dev.segstore.log.io.LogFiles;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * {@link FaultyFiles} for a storage node <em>process</em> (test only): named by the node's test-only setting
 * {@code test.log.files.class} (docs/configuration.md), it reads its mode from the control file
 * {@value #CONTROL} in the node's data directory, polled every {@value #POLL_MS} ms, so a harness in another
 * JVM (the process fault runs, {@code ProcNemesis}) can fail the node's disk. The file holds one line:
 * <ul>
 *   <li>{@code none} (or no file): the disk works;</li>
 *   <li>{@code write-eio}, {@code write-enospc}: segment writes fail (Input/output error; No space left on device);</li>
 *   <li>{@code fsync-eio}: segment forces fail;</li>
 *   <li>{@code open-eio}: opening a segment file fails;</li>
 *   <li>{@code slow-fsync MS}: each force takes MS ms longer;</li>
 *   <li>{@code crash SEED}: the machine crashes losing its page cache: each segment file is cut to what its last
 *       force covered plus a random prefix (drawn from SEED) of the later writes, the last torn half the time
 *       ({@link FaultyFiles#crash}), a new simulated boot id is left in {@value #BOOT_ID} (the node's next start
 *       reports it as its page cache's id), and the JVM halts at once (exit code {@value #CRASH_EXIT}). Write {@code none}
 *       before starting the node again on the same directory.</li>
 * </ul>
 * A mode replaces the one before it; {@code none} clears failures in the layer, but a data directory an I/O error
 * took offline stays offline until the node starts again. Write the file atomically (a temporary file renamed
 * over it: {@link #set}).
 */
public final class ControlledFaultyFiles implements LogFiles {
    public static final String CONTROL = "test-disk-fault";
    public static final int POLL_MS = 20;
    public static final int CRASH_EXIT = 99;

    /**
     * The simulated boot id a {@code crash} leaves in the data directory for the node's next start (a machine
     * crash boots the machine again); absent: the real one.
     */
    public static final String BOOT_ID = "test-boot-id";

    private final FaultyFiles files = new FaultyFiles();
    private final Path control;
    private final Path bootId;
    private String mode = "none";

    public ControlledFaultyFiles(Path dataDir) {
        this.control = dataDir.resolve(CONTROL);
        this.bootId = dataDir.resolve(BOOT_ID);
        poll(); // a mode set before the start applies from the first operation
        Thread poller = new Thread(() -> {
            while (true) {
                LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(POLL_MS));
                poll();
            }
        }, "disk-fault-control");
        poller.setDaemon(true);
        poller.start();
    }

    /** Sets the mode of the node whose data directory is {@code dataDir}: the control file, replaced atomically. */
    public static void set(Path dataDir, String mode) throws IOException {
        Files.createDirectories(dataDir);
        Path tmp = dataDir.resolve(CONTROL + ".tmp");
        Files.writeString(tmp, mode + "\n", StandardCharsets.UTF_8);
        Files.move(tmp, dataDir.resolve(CONTROL), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }

    private synchronized void poll() {
        String next;
        try {
            next = Files.exists(control) ? Files.readString(control, StandardCharsets.UTF_8).trim() : "none";
        } catch (IOException e) {
            return; // being replaced: the next poll reads it
        }
        if (next.isEmpty()) {
            next = "none";
        }
        if (next.equals(mode)) {
            return;
        }
        String[] words = next.split("\\s+");
        try {
            files.heal();
            switch (words[0]) {
                case "none" -> {
                }
                case "write-eio" -> files.failWrites("Input/output error (injected)");
                case "write-enospc" -> files.failWrites("No space left on device (injected)");
                case "fsync-eio" -> files.failForces();
                case "open-eio" -> files.failOpens();
                case "slow-fsync" -> files.slowForces(Long.parseLong(words[1]));
                case "crash" -> crash(Long.parseLong(words[1]));
                default -> {
                    System.err.println("disk-fault-control: unknown mode '" + next + "' in " + control + "; ignored");
                    mode = next;
                    return;
                }
            }
        } catch (RuntimeException e) {
            System.err.println("disk-fault-control: bad mode '" + next + "' in " + control + ": " + e + "; ignored");
            mode = next;
            return;
        }
        System.err.println("disk-fault-control: disk mode " + mode + " -> " + next);
        mode = next;
    }

    /** Fixes the crash images, writes them over the files and halts, all while no segment write can run. */
    private void crash(long seed) {
        synchronized (files) { // FaultyFiles records and makes each segment write under this lock
            FaultyFiles.CrashReport report = files.crash(new Random(seed));
            try {
                Path tmp = bootId.resolveSibling(BOOT_ID + ".tmp"); // the machine boots again: a new id
                Files.writeString(tmp, "crashed-" + seed + "-" + System.nanoTime() + "\n", StandardCharsets.UTF_8);
                Files.move(tmp, bootId, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
                files.writeCrashImages();
                System.err.println("disk-fault-control: crash losing the page cache (seed " + seed + "): " + report + "; halting");
            } catch (IOException | RuntimeException e) {
                System.err.println("disk-fault-control: crash images not written: " + e + "; halting");
            }
            System.err.flush();
            Runtime.getRuntime().halt(CRASH_EXIT);
        }
    }

    @Override
    public LogChannel open(Path file, boolean create) throws IOException {
        return files.open(file, create);
    }

    /** The real boot id, or the simulated one the last {@code crash} left ({@value #BOOT_ID}). */
    @Override
    public String pageCacheId() {
        try {
            return Files.exists(bootId) ? Files.readString(bootId, StandardCharsets.UTF_8).trim() : dev.segstore.log.io.RealLogFiles.INSTANCE.pageCacheId();
        } catch (IOException e) {
            return ""; // unknown: the node registers as one that may have lost its page cache
        }
    }

    @Override
    public void writeAtomically(Path file, byte[] content) throws IOException {
        files.writeAtomically(file, content);
    }

    @Override
    public byte[] readAll(Path file) throws IOException {
        return files.readAll(file);
    }

    @Override
    public List<String> list(Path dir) throws IOException {
        return files.list(dir);
    }

    @Override
    public void delete(Path file) throws IOException {
        files.delete(file);
    }

    @Override
    public void rename(Path from, Path to) throws IOException {
        files.rename(from, to);
    }

    @Override
    public void createDirectories(Path dir) throws IOException {
        files.createDirectories(dir);
    }

    @Override
    public boolean createDirectory(Path dir) throws IOException {
        return files.createDirectory(dir);
    }

    @Override
    public void forceDirectory(Path dir) throws IOException {
        files.forceDirectory(dir);
    }
}
