package dev.segstore.log;

import dev.segstore.log.io.ForwardingLogChannel;
import dev.segstore.log.io.ForwardingLogFiles;
import dev.segstore.log.io.LogChannel;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A file layer for tests, over real files, that remembers what each file held at its last {@code force()}
 * and which writes came after. {@link #crash} then rewrites every file as a machine crash could leave it:
 * the forced content plus a random prefix of the later writes, the last of them torn at a random byte.
 * {@link #failForcesAfter} and {@link #failWritesAfter} make I/O calls throw, as a failing disk would.
 *
 * <p>Atomic replaces ({@link #writeAtomically}) are forced by contract, so they count as durable at once. A rename
 * ({@link #rename}) is durable once its directory is forced (by {@link #forceDirectory} or an atomic replace in it):
 * {@link #crash} undoes the others, newest first, as a crash before the directory's entries reach the disk would.
 * Memory-mapped index files are not seen by this layer; the log treats them as derived data and rebuilds them
 * after an unclean shutdown.
 */
final class FaultyLogFiles extends ForwardingLogFiles {
    private final Map<Path, Tracked> tracked = new HashMap<>();
    /** Renames whose directory was not forced since, oldest first (guarded by this). */
    private final List<Rename> unforcedRenames = new ArrayList<>();

    private record Rename(Path from, Path to) {
    }
    private final AtomicInteger forcesLeft = new AtomicInteger(Integer.MAX_VALUE);
    private final AtomicInteger writesLeft = new AtomicInteger(Integer.MAX_VALUE);

    /** One file: its durable image and the operations since. */
    private static final class Tracked {
        /** Where the file is now (a rename moves it). */
        Path path;
        byte[] durable;
        final List<Object> pending = new ArrayList<>(); // Write or Long (truncate to size)
        final List<LogChannel> open = new ArrayList<>();
    }

    private record Write(long position, byte[] bytes) {
    }

    void failForcesAfter(int n) {
        forcesLeft.set(n);
    }

    void failWritesAfter(int n) {
        writesLeft.set(n);
    }

    @Override
    public synchronized LogChannel open(Path file, boolean create) throws IOException {
        boolean existed = Files.exists(file);
        LogChannel ch = real.open(file, create);
        Tracked t = tracked.get(file);
        if (t == null) {
            t = new Tracked();
            t.path = file;
            // What is on disk when we first see a file counts as durable; a file created now starts empty.
            t.durable = existed ? Files.readAllBytes(file) : new byte[0];
            tracked.put(file, t);
        }
        FaultyChannel fc = new FaultyChannel(ch, t);
        t.open.add(fc);
        return fc;
    }

    /**
     * Rewrites every tracked file as a crash may leave it, and closes its channels. The log directory using
     * this layer must have been halted first.
     */
    synchronized void crash(Random random) throws IOException {
        for (int i = unforcedRenames.size() - 1; i >= 0; i--) {
            Rename r = unforcedRenames.get(i);
            if (Files.exists(r.to())) {
                Files.move(r.to(), r.from(), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
                moveTracked(r.to(), r.from());
            }
        }
        unforcedRenames.clear();
        for (Map.Entry<Path, Tracked> e : tracked.entrySet()) {
            Tracked t = e.getValue();
            for (LogChannel c : t.open) {
                c.close();
            }
            if (!Files.exists(e.getKey())) {
                continue; // deleted: deletions go straight to disk
            }
            byte[] image = t.durable;
            int keep = t.pending.isEmpty() ? 0 : random.nextInt(t.pending.size() + 1);
            for (int i = 0; i < keep; i++) {
                Object op = t.pending.get(i);
                boolean last = i == keep - 1;
                if (op instanceof Write w) {
                    byte[] bytes = w.bytes();
                    if (last && bytes.length > 0 && random.nextBoolean()) {
                        bytes = Arrays.copyOf(bytes, random.nextInt(bytes.length)); // torn
                    }
                    image = apply(image, w.position(), bytes);
                } else {
                    image = Arrays.copyOf(image, (int) Math.min(image.length, (Long) op));
                }
            }
            Files.write(e.getKey(), image);
        }
        tracked.clear();
    }

    private static byte[] apply(byte[] image, long position, byte[] bytes) {
        int end = (int) position + bytes.length;
        byte[] out = image.length >= end ? image : Arrays.copyOf(image, end);
        System.arraycopy(bytes, 0, out, (int) position, bytes.length);
        return out;
    }

    private void maybeFail(AtomicInteger budget, String what) throws IOException {
        if (budget.getAndDecrement() <= 0) {
            throw new IOException("injected " + what + " failure");
        }
    }

    @Override
    public synchronized void delete(Path file) throws IOException {
        tracked.remove(file);
        real.delete(file);
    }

    /** A rename is durable once its directory is forced (see the class comment); the file keeps its image and writes. */
    @Override
    public synchronized void rename(Path from, Path to) throws IOException {
        real.rename(from, to);
        moveTracked(from, to);
        unforcedRenames.add(new Rename(from, to));
    }

    private void moveTracked(Path from, Path to) {
        tracked.remove(to);
        Tracked t = tracked.remove(from);
        if (t != null) {
            t.path = to;
            tracked.put(to, t);
        }
    }

    @Override
    public void forceDirectory(Path dir) throws IOException {
        super.forceDirectory(dir);
        forced(dir);
    }

    @Override
    public void writeAtomically(Path file, byte[] content) throws IOException {
        super.writeAtomically(file, content); // forces the file's directory
        forced(file.getParent());
    }

    private synchronized void forced(Path dir) {
        unforcedRenames.removeIf(r -> dir.equals(r.to().getParent()));
    }

    private final class FaultyChannel extends ForwardingLogChannel {
        private final Tracked t;

        FaultyChannel(LogChannel inner, Tracked t) {
            super(inner);
            this.t = t;
        }

        @Override
        public void writeFully(ByteBuffer src, long position) throws IOException {
            maybeFail(writesLeft, "write");
            byte[] copy = new byte[src.remaining()];
            src.duplicate().get(copy);
            synchronized (FaultyLogFiles.this) {
                t.pending.add(new Write(position, copy));
            }
            inner.writeFully(src, position);
        }

        @Override
        public void truncate(long size) throws IOException {
            synchronized (FaultyLogFiles.this) {
                t.pending.add(size);
            }
            inner.truncate(size);
        }

        @Override
        public void force() throws IOException {
            maybeFail(forcesLeft, "force");
            synchronized (FaultyLogFiles.this) {
                inner.force();
                t.durable = Files.readAllBytes(t.path);
                t.pending.clear();
            }
        }
    }
}
