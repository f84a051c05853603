package dev.segstore.node.replica;

import dev.segstore.log.io.ForwardingLogChannel;
import dev.segstore.log.io.ForwardingLogFiles;
import dev.segstore.log.io.LogChannel;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * Real files whose segment writes or forces (fsync) a test can fail (as a failing disk: EIO) or whose writes it
 * can hold (a stalled disk: the directory's I/O thread waits in the write until {@link #release}), and that can
 * lose what was never forced, as a machine crash (power loss, a kernel panic) does. Write and force failures do
 * not heal: a node recovers by starting again on another file layer. Only {@code .log} files are affected;
 * state files and indexes work as usual.
 *
 * <p><b>Losing the page cache</b> ({@link #crash}, then {@link #writeCrashImages}): the layer remembers what
 * each segment file held at its last {@code force()} and which writes and truncations came after it (as
 * segment-log's {@code FaultyLogFiles} does, and Jepsen's lazyfs). {@link #crash} is the crash's instant: every
 * file operation after it fails (the process is gone: nothing it does reaches the disk, and no force succeeds,
 * so nothing after it can be counted durable), and each file's image is fixed: its forced content plus a random
 * prefix of the later writes, the last one kept torn at a random byte half the time. Once the node is closed,
 * {@link #writeCrashImages} writes the images over the files and the layer is ready for the node to start again
 * on the same directory. A force counts the writes that had reached the file when it began, and nothing after.
 * Atomic replaces ({@code writeAtomically}: log state, epoch checkpoint) are forced by contract and count as
 * durable at once, as do creations and deletions of files; the node's RocksDB index is not on this layer and
 * keeps everything.
 */
public final class FaultyFiles extends ForwardingLogFiles {
    /** The message of injected write failures (null: writes work): EIO, or ENOSPC's "No space left on device". */
    private volatile String failWrites;
    /** Where injected write failures apply: files under this directory only (null: everywhere). */
    private volatile Path failWritesUnder;
    private volatile boolean failForces;
    private volatile boolean failOpens;
    /** Each force of a segment file takes this much longer (a slow disk); 0: none. */
    private volatile long forceDelayNanos;
    private volatile CountDownLatch gate;
    /** Set by {@link #crash} until {@link #writeCrashImages}: every operation fails. */
    private volatile boolean crashed;
    /** Segment files by path: the durable image and the operations since (guarded by this). */
    private final Map<Path, Tracked> tracked = new TreeMap<>();
    /** The images {@link #crash} fixed (guarded by this). */
    private Map<Path, byte[]> crashImages;
    /** A simulated boot id ({@link #pageCacheId}): drawn when the layer is made and at each {@link #crash}. */
    private volatile String bootId = newBootId();

    private static String newBootId() {
        return "simulated-" + java.util.UUID.randomUUID();
    }

    /** The simulated machine's boot id: the same across node restarts on this layer, a new one after a crash. */
    @Override
    public String pageCacheId() {
        return bootId;
    }

    /** One file: its content at its last force, and the writes ({@link Write}) and truncations (Long) since. */
    private static final class Tracked {
        byte[] durable;
        final List<Object> pending = new ArrayList<>();
        /** How many operations ever left {@link #pending} as forced: two forces of one file may run at once. */
        long forcedOps;
    }

    private record Write(long position, byte[] bytes) {
    }

    /** What a crash lost, for the fault's log: the unforced writes kept and in all, the files and bytes. */
    public record CrashReport(int files, int writesKept, int writesUnforced, int tornWrites, long bytesLost) {
        @Override
        public String toString() {
            return "kept " + writesKept + " of " + writesUnforced + " unforced writes in " + files + " segment files ("
                    + tornWrites + " torn, " + bytesLost + " bytes lost)";
        }
    }

    public void failWrites() {
        failWrites = "injected write failure";
    }

    /** Segment writes fail from now on with {@code message} (as "No space left on device": ENOSPC). */
    public void failWrites(String message) {
        failWrites = message;
    }

    /** Segment writes to files under {@code dir} fail from now on (one disk of several failing); others work. */
    public void failWritesUnder(Path dir) {
        failWritesUnder = dir.toAbsolutePath().normalize();
        failWrites = "injected write failure under " + dir;
    }

    /** Opening a segment file (a new segment, or one at startup) fails from now on, as on a failed disk. */
    public void failOpens() {
        failOpens = true;
    }

    /** Each force (fsync) of a segment file takes {@code delayMs} longer from now on (0: as the disk is). */
    public void slowForces(long delayMs) {
        forceDelayNanos = TimeUnit.MILLISECONDS.toNanos(delayMs);
    }

    /**
     * Clears the injected write, force and open failures and the force delay. The node does not notice: a data
     * directory an I/O error took offline stays offline until the node starts again (what the fault runs do).
     */
    public void heal() {
        failWrites = null;
        failWritesUnder = null;
        failForces = false;
        failOpens = false;
        forceDelayNanos = 0;
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

    /**
     * The crash's instant: from now on every operation of this layer fails, and each segment file's image after
     * the crash is fixed from {@code random} (see the class comment). Stop the node using the layer next, then
     * call {@link #writeCrashImages}.
     */
    public synchronized CrashReport crash(Random random) {
        crashed = true;
        bootId = newBootId(); // the machine boots again
        crashImages = new TreeMap<>();
        int kept = 0;
        int unforced = 0;
        int torn = 0;
        long lost = 0;
        for (Map.Entry<Path, Tracked> e : tracked.entrySet()) {
            Tracked t = e.getValue();
            byte[] image = t.durable.clone();
            int keep = t.pending.isEmpty() ? 0 : random.nextInt(t.pending.size() + 1);
            unforced += t.pending.size();
            kept += keep;
            for (int i = 0; i < t.pending.size(); i++) {
                Object op = t.pending.get(i);
                if (op instanceof Write w) {
                    byte[] bytes = w.bytes();
                    if (i >= keep) {
                        lost += bytes.length;
                        continue;
                    }
                    if (i == keep - 1 && bytes.length > 0 && random.nextBoolean()) {
                        int cut = random.nextInt(bytes.length);
                        lost += bytes.length - cut;
                        torn++;
                        bytes = Arrays.copyOf(bytes, cut);
                    }
                    image = apply(image, w.position(), bytes);
                } else if (i < keep) {
                    image = Arrays.copyOf(image, (int) Math.min(image.length, (Long) op));
                }
            }
            crashImages.put(e.getKey(), image);
        }
        return new CrashReport(crashImages.size(), kept, unforced, torn, lost);
    }

    /**
     * After {@link #crash} and once the node is closed: writes each segment file as the crash left it (a file
     * deleted meanwhile stays deleted) and makes the layer usable again, with what is on disk now as durable.
     */
    public synchronized void writeCrashImages() throws IOException {
        if (!crashed) {
            throw new IllegalStateException("no crash to write");
        }
        for (Map.Entry<Path, byte[]> e : crashImages.entrySet()) {
            if (Files.exists(e.getKey())) {
                Files.write(e.getKey(), e.getValue());
            }
        }
        crashImages = null;
        tracked.clear();
        crashed = false;
    }

    /** {@code image} with {@code bytes} written at {@code position}: changed in place unless it grows. */
    private static byte[] apply(byte[] image, long position, byte[] bytes) {
        int end = Math.toIntExact(position + bytes.length);
        byte[] out = image.length >= end ? image : Arrays.copyOf(image, end);
        System.arraycopy(bytes, 0, out, (int) position, bytes.length);
        return out;
    }

    private void checkAlive() throws IOException {
        if (crashed) {
            throw new IOException("injected crash: the node's process is gone");
        }
    }

    @Override
    public LogChannel open(Path file, boolean create) throws IOException {
        checkAlive();
        if (!file.getFileName().toString().endsWith(".log")) {
            return real.open(file, create);
        }
        if (failOpens) {
            throw new IOException("injected open failure: " + file.getFileName());
        }
        Tracked t;
        LogChannel ch;
        synchronized (this) {
            boolean existed = Files.exists(file);
            ch = real.open(file, create);
            t = tracked.get(file);
            if (t == null) {
                t = new Tracked();
                // What is on disk when the layer first sees a file counts as durable; a file created now starts empty.
                t.durable = existed ? Files.readAllBytes(file) : new byte[0];
                tracked.put(file, t);
            }
        }
        return new TrackedChannel(ch, t, file.toAbsolutePath().normalize());
    }

    @Override
    public void writeAtomically(Path file, byte[] content) throws IOException {
        checkAlive();
        super.writeAtomically(file, content);
    }

    @Override
    public synchronized void delete(Path file) throws IOException {
        checkAlive();
        tracked.remove(file);
        super.delete(file);
    }

    /** Renames, like creations and deletions, count as durable at once; the file keeps its image and pending writes. */
    @Override
    public synchronized void rename(Path from, Path to) throws IOException {
        checkAlive();
        super.rename(from, to);
        tracked.remove(to);
        Tracked t = tracked.remove(from);
        if (t != null) {
            tracked.put(to, t);
        }
    }

    @Override
    public void createDirectories(Path dir) throws IOException {
        checkAlive();
        super.createDirectories(dir);
    }

    @Override
    public boolean createDirectory(Path dir) throws IOException {
        checkAlive();
        return super.createDirectory(dir);
    }

    @Override
    public void forceDirectory(Path dir) throws IOException {
        checkAlive();
        super.forceDirectory(dir);
    }

    private final class TrackedChannel extends ForwardingLogChannel {
        private final Tracked t;
        private final Path path;

        TrackedChannel(LogChannel inner, Tracked t, Path path) {
            super(inner);
            this.t = t;
            this.path = path;
        }

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
            String failure = failWrites;
            Path under = failWritesUnder;
            if (failure != null && (under == null || path.startsWith(under))) {
                throw new IOException(failure);
            }
            byte[] copy = new byte[src.remaining()];
            src.duplicate().get(copy);
            synchronized (FaultyFiles.this) {
                checkAlive(); // recorded and written together: a crash sees a write whole or not at all
                t.pending.add(new Write(position, copy));
                super.writeFully(src, position);
            }
        }

        @Override
        public void truncate(long size) throws IOException {
            synchronized (FaultyFiles.this) {
                checkAlive();
                t.pending.add(size);
                super.truncate(size);
            }
        }

        @Override
        public void force() throws IOException {
            if (failForces) {
                throw new IOException("injected force failure");
            }
            long delay = forceDelayNanos;
            if (delay > 0) { // a slow disk: the force returns this much later
                long until = System.nanoTime() + delay;
                for (long left = delay; left > 0; left = until - System.nanoTime()) {
                    LockSupport.parkNanos(left);
                }
            }
            long covered;
            synchronized (FaultyFiles.this) {
                checkAlive();
                covered = t.forcedOps + t.pending.size(); // what reached the file before the force began
            }
            super.force();
            synchronized (FaultyFiles.this) {
                checkAlive(); // a crash during the force: it never returned
                byte[] image = t.durable; // ours alone: changed in place
                // Another force of the file (a seal's, beside a group commit) may have made some of them durable already.
                int left = (int) Math.max(0, Math.min(t.pending.size(), covered - t.forcedOps));
                List<Object> done = t.pending.subList(0, left);
                for (Object op : done) {
                    image = op instanceof Write w ? apply(image, w.position(), w.bytes())
                            : Arrays.copyOf(image, (int) Math.min(image.length, (Long) op));
                }
                t.durable = image;
                t.forcedOps += left;
                done.clear();
            }
        }
    }
}
