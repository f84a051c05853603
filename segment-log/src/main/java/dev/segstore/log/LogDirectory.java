package dev.segstore.log;

import dev.segstore.log.io.LogChannel;
import dev.segstore.log.io.LogFiles;
import dev.segstore.log.io.RealLogFiles;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongSupplier;
import java.util.regex.Pattern;

/**
 * One data directory and its I/O owner: the single thread that writes, forces, seals and truncates every
 * log in the directory. Appends are queued (bounded by bytes and count: a full queue is a
 * {@link AppendResult.Status#QUEUE_FULL} result, never a blocked caller), written in batches (consecutive
 * batches of a segment in one system call), and forced when the {@link FlushPolicy} says so. Futures complete
 * in queue order, on the I/O thread: callers must not block in their callbacks.
 *
 * <p>Files are forced on a few force threads, several at once when a flush covers several segments (the
 * disk can merge their syncs: measured 20-40 % less time than one after another for 3-6 files). Background
 * flushes of page-cache bytes run there without the I/O thread waiting, so it goes on writing (and
 * acknowledging page-cache appends) while the disk catches up: one background force at a time, over the
 * segments that were dirty when it started. When the next one is due before it ends, the I/O thread waits
 * for it, so unsynced bytes stay within about twice the flush policy's threshold. Everything else that
 * needs forced bytes (a group commit for fsync appends, a seal, a truncation, any {@link IoTask.Run}) first
 * waits for the background force in flight, so a force never races a truncation or a close, and an fsync
 * acknowledgement still covers every byte written before it.
 *
 * <p>An I/O error takes the whole directory offline (through {@link #ioFailure}): every pending and later
 * call fails with {@link LogException.Kind#STORAGE_ERROR}; nothing is retried silently.
 *
 * <p>Layout: {@code <root>/<logName>/} per log, see {@link SegmentLog}.
 */
public final class LogDirectory implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(LogDirectory.class);
    /** Log names become directory names: no separators, no leading dot. */
    private static final Pattern LOG_NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,254}");
    private static final int WRITE_BUFFER = 1 << 20;
    /** Threads per directory that force segment files, several at once. */
    private static final int FORCE_THREADS = 4;
    /** Queued when a background force ends, to wake an idle I/O thread; does nothing. */
    private static final IoTask WAKE = new IoTask.Run("wake up after a background force", () -> null, new CompletableFuture<>());

    private final Path root;
    private final DirectoryConfig config;
    private final LogFiles files;
    private final LongSupplier clockMs;
    private final LinkedBlockingQueue<IoTask> queue = new LinkedBlockingQueue<>();
    private final AtomicLong inFlightBytes = new AtomicLong();
    private final AtomicInteger inFlightAppends = new AtomicInteger();
    /** Bytes of appends written to segment files (monitoring). */
    private final java.util.concurrent.atomic.LongAdder writtenBytes = new java.util.concurrent.atomic.LongAdder();
    /** Told how long each flush's forces took (monitoring); a no-op until set. */
    private volatile java.util.function.LongConsumer forceNanos = n -> { };
    private final Map<String, SegmentLog> logs = new ConcurrentHashMap<>();
    private final Thread ioThread;
    /** Threads that force segment files, several at once. */
    private final ExecutorService forcers;
    private volatile LogException failure;
    private volatile boolean closed;
    private volatile boolean stopped;

    // I/O thread only.
    private final ArrayDeque<IoTask.Write> unacked = new ArrayDeque<>();
    private final Set<Segment> dirtySegments = Collections.newSetFromMap(new IdentityHashMap<>());
    private final Set<SegmentLog> dirtyLogs = Collections.newSetFromMap(new IdentityHashMap<>());
    private final ByteBuffer writeBuffer = ByteBuffer.allocateDirect(WRITE_BUFFER);
    private final List<IoTask.Write> buffered = new ArrayList<>();
    private long unsyncedBytes;
    private long oldestUnsyncedNanos = -1;
    private long oldestFsyncWaitNanos = -1;
    /** {@link IoTask.Offload} actions started on the force threads, not known finished (I/O thread only). */
    private final List<CompletableFuture<Object>> offloaded = new ArrayList<>();
    /** The background force in flight or finished and not yet reaped; null when none. */
    private CompletableFuture<Void> backgroundForce;
    private volatile boolean stopRequested;
    private volatile boolean halted;

    private LogDirectory(Path root, DirectoryConfig config, LogFiles files, LongSupplier clockMs) {
        this.root = root;
        this.config = config;
        this.files = files;
        this.clockMs = clockMs;
        this.ioThread = new Thread(this::runIoLoop, "segstore-io-" + root.getFileName());
        this.ioThread.setDaemon(true);
        AtomicInteger forceThreads = new AtomicInteger();
        this.forcers = Executors.newFixedThreadPool(FORCE_THREADS, r -> {
            Thread t = new Thread(r, "segstore-force-" + root.getFileName() + "-" + forceThreads.incrementAndGet());
            t.setDaemon(true);
            return t;
        });
    }

    public static LogDirectory open(Path root, DirectoryConfig config) {
        return open(root, config, RealLogFiles.INSTANCE, System::currentTimeMillis);
    }

    /** Opens the directory with a given file layer and clock (tests inject faults and time here). */
    public static LogDirectory open(Path root, DirectoryConfig config, LogFiles files, LongSupplier clockMs) {
        try {
            files.createDirectories(root);
        } catch (IOException e) {
            throw new LogException(LogException.Kind.STORAGE_ERROR, "cannot create data directory " + root + ": " + e, e);
        }
        LogDirectory d = new LogDirectory(root, config, files, clockMs);
        d.ioThread.start();
        return d;
    }

    public Path root() {
        return root;
    }

    LogFiles files() {
        return files;
    }

    long nowMs() {
        return clockMs.getAsLong();
    }

    /** Whether the directory is online; when not, {@link #failure()} says why. */
    public boolean isOnline() {
        return failure == null && !closed;
    }

    public LogException failure() {
        return failure;
    }

    /** Bytes of appends queued for the I/O thread and not yet acknowledged (the write queue's depth). */
    public long queuedBytes() {
        return inFlightBytes.get();
    }

    /** Appends queued and not yet acknowledged. */
    public int queuedAppends() {
        return inFlightAppends.get();
    }

    /** Bytes of appends written to segment files since the directory opened. */
    public long writtenBytes() {
        return writtenBytes.sum();
    }

    /** Sets what is told the duration of each flush's fsyncs (nanoseconds), on the I/O thread: keep it cheap. */
    public void onForce(java.util.function.LongConsumer observer) {
        this.forceNanos = observer == null ? n -> { } : observer;
    }

    /**
     * Opens (recovering if needed) or creates the log {@code name}. A new log starts at {@code initialOffset};
     * an existing one keeps its offsets.
     */
    public SegmentLog openLog(String name, LogConfig config, long initialOffset) {
        checkOnline();
        if (name == null || !LOG_NAME.matcher(name).matches() || name.contains("..")) {
            throw LogException.invalid("log name " + (name == null ? "null" : "'" + name + "'")
                    + " must be 1..255 characters of [A-Za-z0-9._-], starting with a letter or digit, without '..'");
        }
        if (initialOffset < 0) {
            throw LogException.invalid("initialOffset " + initialOffset + " must be >= 0");
        }
        synchronized (logs) {
            if (logs.containsKey(name)) {
                throw new LogException(LogException.Kind.ILLEGAL_STATE, "log " + name + " is already open");
            }
            SegmentLog log = SegmentLog.open(this, name, root.resolve(name), config, initialOffset);
            logs.put(name, log);
            return log;
        }
    }

    /**
     * The identity of the page cache ({@link LogFiles#pageCacheId}) holding what this directory's logs were written
     * through, once the newest segment file of each log not open here is forced: before it rolls, a log writes only
     * its newest segment (a roll forces the one it seals). After a process restart on a machine that did not crash,
     * the previous process's unforced bytes are in that page cache, and the force puts them on disk, or fails if
     * the kernel lost some in a write-back error: then, and where the file layer knows no id, {@code ""}
     * (unknown). A storage node calls this before it opens its logs, and registers with the answer.
     */
    public String pageCacheIdAfterForcing() {
        String id = files.pageCacheId();
        if (id.isEmpty()) {
            return id;
        }
        String name = "";
        boolean rootToForce = false;
        try {
            for (String each : logNames()) {
                name = each;
                if (logs.containsKey(name)) {
                    continue;
                }
                Path dir = root.resolve(name);
                String newest = null;
                for (String f : files.list(dir)) {
                    if (f.endsWith(".log") && (newest == null || f.compareTo(newest) > 0)) {
                        newest = f; // names are 20-digit base offsets: the greatest is the newest
                    }
                }
                if (newest != null) {
                    try (LogChannel ch = files.open(dir.resolve(newest), false)) {
                        ch.force();
                    }
                }
                // A log's directory entries are forced before its bytes, not when it is made: the last process may
                // have died in between. A log closed cleanly forced them at its close at the latest.
                byte[] state = files.readAll(dir.resolve(LogState.FILE));
                if (state == null || !LogState.decode(state).clean()) {
                    files.forceDirectory(dir);
                    rootToForce = true;
                }
            }
            if (rootToForce) {
                files.forceDirectory(root);
            }
        } catch (IOException | RuntimeException e) {
            LOG.warn("Log directory {}: forcing log {} at start failed ({}): its unforced bytes may be lost", root, name, e.toString());
            return "";
        }
        return id;
    }

    /** The logs that exist on disk in this directory (open or not). */
    public List<String> logNames() {
        try (var s = Files.list(root)) {
            return s.filter(Files::isDirectory).map(p -> p.getFileName().toString())
                    .filter(n -> LOG_NAME.matcher(n).matches()).sorted().toList();
        } catch (IOException e) {
            throw ioFailure(e, "listing " + root);
        }
    }

    /** Closes the log if open and deletes its files. */
    public CompletableFuture<Void> deleteLog(String name) {
        checkOnline();
        SegmentLog open = logs.get(name);
        CompletableFuture<Void> closing = open == null ? CompletableFuture.completedFuture(null) : open.closeAsync();
        return closing.thenCompose(v -> run("delete log " + name, () -> {
            Path dir = root.resolve(name);
            if (Files.isDirectory(dir)) {
                for (String f : files.list(dir)) {
                    files.delete(dir.resolve(f));
                }
                Files.deleteIfExists(dir);
                files.forceDirectory(root);
            }
            return null;
        })).thenApply(o -> null);
    }

    void forget(SegmentLog log) {
        logs.remove(log.name(), log);
    }

    // ---- submission (caller threads) ------------------------------------------------------------------

    void checkOnline() {
        LogException f = failure;
        if (f != null) {
            throw new LogException(LogException.Kind.STORAGE_ERROR, f.getMessage(), f.getCause());
        }
        if (closed) {
            throw new LogException(LogException.Kind.CLOSED, "data directory " + root + " is closed");
        }
    }

    /** Reserves queue space for {@code bytes} in {@code appends} appends; false means back-pressure. */
    boolean tryReserve(long bytes, int appends) {
        while (true) {
            long b = inFlightBytes.get();
            if (b > 0 && b + bytes > config.maxQueuedBytes()) {
                return false;
            }
            if (inFlightBytes.compareAndSet(b, b + bytes)) {
                break;
            }
        }
        if (inFlightAppends.addAndGet(appends) > config.maxQueuedAppends() && inFlightAppends.get() != appends) {
            inFlightAppends.addAndGet(-appends);
            inFlightBytes.addAndGet(-bytes);
            return false;
        }
        return true;
    }

    void unreserve(long bytes, int appends) {
        inFlightBytes.addAndGet(-bytes);
        inFlightAppends.addAndGet(-appends);
    }

    void enqueue(IoTask task) {
        queue.add(task);
        if (stopped) {
            failQueued();
        }
    }

    /** Runs {@code action} on the I/O thread after everything queued so far is written and forced. */
    CompletableFuture<Object> run(String what, IoTask.IoAction action) {
        CompletableFuture<Object> f = new CompletableFuture<>();
        enqueue(new IoTask.Run(what, action, f));
        return f;
    }

    /**
     * Takes the directory offline because of {@code e}: the single place where an I/O error is handled.
     * Returns the exception for the caller to throw.
     */
    LogException ioFailure(Throwable e, String what) {
        synchronized (this) {
            if (failure == null) {
                failure = new LogException(LogException.Kind.STORAGE_ERROR,
                        "data directory " + root + " is offline after an I/O error while " + what + ": " + e, e);
                LOG.error("Data directory {} is offline: I/O error while {}", root, what, e);
            }
        }
        return failure;
    }

    // ---- the I/O thread -------------------------------------------------------------------------------

    private void runIoLoop() {
        List<IoTask> batch = new ArrayList<>();
        try {
            while (!stopRequested) {
                reapBackgroundForce();
                FlushPolicy.State state = flushState();
                long wait = config.flushPolicy().nanosUntilFlush(state);
                if (halted) {
                    return;
                }
                if (wait == 0) {
                    if (state.oldestFsyncWaitNanos() >= 0) {
                        flush();
                        continue;
                    }
                    // If one still runs, the disk is behind the writes: waiting for it is the back-pressure that
                    // keeps unsynced bytes within about twice the policy's threshold (one force in flight, one
                    // accumulating), as when forces blocked writes.
                    if (finishBackgroundForce()) {
                        startBackgroundForce();
                    }
                    continue;
                }
                IoTask first = wait == FlushPolicy.NEVER ? queue.take() : queue.poll(wait, TimeUnit.NANOSECONDS);
                if (halted) {
                    return;
                }
                if (first == null) {
                    continue;
                }
                batch.add(first);
                queue.drainTo(batch, 4096);
                for (IoTask t : batch) {
                    process(t);
                }
                batch.clear();
                try {
                    writeBuffered();
                } catch (IOException e) {
                    ioFailure(e, "writing to " + root);
                    failPending();
                }
                completeAcks(false);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (Throwable t) {
            ioFailure(t, "running the I/O loop");
        } finally {
            stopped = true;
            failPending();
            failQueued();
        }
    }

    private FlushPolicy.State flushState() {
        long now = System.nanoTime();
        return new FlushPolicy.State(unsyncedBytes,
                oldestFsyncWaitNanos < 0 ? -1 : now - oldestFsyncWaitNanos,
                oldestUnsyncedNanos < 0 ? -1 : now - oldestUnsyncedNanos,
                queue.isEmpty());
    }

    private void process(IoTask task) {
        if (task == WAKE) {
            return;
        }
        if (failure != null) {
            failTask(task);
            return;
        }
        try {
            if (task instanceof IoTask.Write w) {
                bufferWrite(w);
            } else if (task instanceof IoTask.Seal s) {
                long started = System.nanoTime();
                writeBuffered();
                awaitBackgroundForce();
                s.segment().seal();
                s.log().onSealed(s.recoveryPoint());
                LOG.debug("I/O thread of {}: rolling a segment file of {} took {} us", root, s.log().name(), (System.nanoTime() - started) / 1000);
            } else if (task instanceof IoTask.Offload o) {
                writeBuffered();
                offload(o);
            } else if (task instanceof IoTask.Run r) {
                long started = System.nanoTime();
                awaitOffloaded();
                writeBuffered();
                flush();
                long flushed = System.nanoTime();
                runAction(r.what(), r.action(), r.future());
                LOG.debug("I/O thread of {}: {} took {} us ({} us flushing the directory first)", root, r.what(),
                        (System.nanoTime() - started) / 1000, (flushed - started) / 1000);
            }
        } catch (IOException e) {
            ioFailure(e, "writing to " + root);
            failPending();
            failTask(task);
        }
    }

    private void bufferWrite(IoTask.Write w) throws IOException {
        int size = w.size();
        if (!buffered.isEmpty()) {
            IoTask.Write last = buffered.get(buffered.size() - 1);
            boolean contiguous = last.segment() == w.segment() && last.position() + last.size() == w.position();
            if (!contiguous || writeBuffer.remaining() < size) {
                writeBuffered();
            }
        }
        if (size > WRITE_BUFFER / 2) {
            w.segment().write(w.bytes().duplicate(), w.position());
            written(w);
            return;
        }
        writeBuffer.put(w.bytes().duplicate());
        buffered.add(w);
    }

    private void writeBuffered() throws IOException {
        if (buffered.isEmpty()) {
            return;
        }
        IoTask.Write first = buffered.get(0);
        writeBuffer.flip();
        first.segment().write(writeBuffer, first.position());
        writeBuffer.clear();
        for (IoTask.Write w : buffered) {
            written(w);
        }
        buffered.clear();
    }

    private void written(IoTask.Write w) {
        w.segment().onWritten(w.position(), w.size(), w.baseOffset(), w.nextOffset(), w.maxTimestamp());
        w.log().onWritten(w.nextOffset());
        dirtySegments.add(w.segment());
        dirtyLogs.add(w.log());
        unsyncedBytes += w.size();
        writtenBytes.add(w.size());
        long now = System.nanoTime();
        if (oldestUnsyncedNanos < 0) {
            oldestUnsyncedNanos = now;
        }
        if (w.durability() == Durability.FSYNC && oldestFsyncWaitNanos < 0) {
            oldestFsyncWaitNanos = w.enqueuedNanos();
        }
        unacked.add(w);
    }

    /** Forces {@code segments} on the force threads, all at once; completes when every one is forced. */
    private CompletableFuture<Void> forceAsync(List<Segment> segments) {
        CompletableFuture<?>[] each = new CompletableFuture<?>[segments.size()];
        for (int i = 0; i < each.length; i++) {
            Segment s = segments.get(i);
            each[i] = CompletableFuture.runAsync(() -> {
                try {
                    s.force();
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            }, forcers);
        }
        return CompletableFuture.allOf(each);
    }

    /**
     * Forces the directories a new segment file left unforced ({@link Segment#forceDirectoriesFirst}) on a force
     * thread, soon, so that its first flush seldom has to: its creator does not wait. An I/O error takes the
     * directory offline, as on the I/O thread. Skipped once the directory closes (a close forces them).
     */
    void forceDirectoriesSoon(Segment s) {
        try {
            forcers.execute(() -> {
                try {
                    s.forceDirectories();
                } catch (IOException e) {
                    if (!s.isDeleted()) {
                        ioFailure(e, "forcing the directory entries of " + s.logFile());
                    }
                }
            });
        } catch (java.util.concurrent.RejectedExecutionException e) {
            // Closing: the logs' close forces what is left.
        }
    }

    /** Waits for forces started by {@link #forceAsync}; the first I/O error among them is thrown here. */
    private static void join(CompletableFuture<Void> forces) throws IOException {
        try {
            forces.join();
        } catch (CompletionException e) {
            if (e.getCause() instanceof UncheckedIOException u) {
                throw u.getCause();
            }
            throw new IOException("force failed", e.getCause());
        }
    }

    /**
     * Hands the segments written since the last force to the force threads and goes on: page-cache appends
     * are acknowledged already, and nothing waits for these bytes but the logs' durable ends.
     */
    private void startBackgroundForce() {
        try {
            writeBuffered();
        } catch (IOException e) {
            ioFailure(e, "writing to " + root);
            failPending();
            return;
        }
        List<Segment> segments = List.copyOf(dirtySegments);
        Map<SegmentLog, Long> ends = new IdentityHashMap<>();
        for (SegmentLog log : dirtyLogs) {
            ends.put(log, log.writtenEndOffset());
        }
        dirtySegments.clear();
        dirtyLogs.clear();
        unsyncedBytes = 0;
        oldestUnsyncedNanos = -1;
        backgroundForce = forceAsync(segments).thenRun(() -> ends.forEach(SegmentLog::onDurable));
        backgroundForce.whenComplete((v, t) -> queue.add(WAKE));
    }

    /** Reaps a finished background force (see {@link #finishBackgroundForce}). */
    private void reapBackgroundForce() {
        if (backgroundForce != null && backgroundForce.isDone()) {
            finishBackgroundForce();
        }
    }

    /** Waits for the background force in flight, if any; false if it failed, which took the directory offline. */
    private boolean finishBackgroundForce() {
        try {
            awaitBackgroundForce();
            return true;
        } catch (IOException e) {
            ioFailure(e, "forcing segments in " + root);
            failPending();
            return false;
        }
    }

    /** Runs a task's action and completes its future; an I/O error takes the directory offline. */
    private void runAction(String what, IoTask.IoAction action, CompletableFuture<Object> future) {
        try {
            future.complete(action.run());
        } catch (IOException e) {
            future.completeExceptionally(ioFailure(e, what));
        } catch (Exception e) {
            future.completeExceptionally(e);
        }
    }

    /** Starts {@code o}'s action on a force thread (here once they are stopping), remembered for {@link #awaitOffloaded}. */
    private void offload(IoTask.Offload o) {
        long started = System.nanoTime();
        Runnable job = () -> {
            runAction(o.what(), o.action(), o.future());
            LOG.debug("Force thread of {}: {} took {} us after it was queued", root, o.what(), (System.nanoTime() - started) / 1000);
        };
        offloaded.removeIf(CompletableFuture::isDone);
        offloaded.add(o.future());
        try {
            forcers.execute(job);
        } catch (java.util.concurrent.RejectedExecutionException stopping) {
            job.run();
        }
    }

    /** Waits for every {@link IoTask.Offload} started (their failures are their callers'), before a {@link IoTask.Run}. */
    private void awaitOffloaded() {
        for (CompletableFuture<Object> f : offloaded) {
            try {
                f.join();
            } catch (CompletionException | java.util.concurrent.CancellationException e) {
                // reported to its caller
            }
        }
        offloaded.clear();
    }

    /** Waits for the background force in flight, if any; its I/O error is thrown here. */
    private void awaitBackgroundForce() throws IOException {
        CompletableFuture<Void> f = backgroundForce;
        if (f == null) {
            return;
        }
        backgroundForce = null;
        join(f);
    }

    /** Forces every dirty segment (after the background force in flight), then acknowledges every written append. */
    private void flush() {
        if (failure != null) {
            failPending(); // a force thread (a seal, a directory force) took the directory offline: nothing more is durable
            return;
        }
        try {
            awaitBackgroundForce();
            writeBuffered();
            long forceStart = System.nanoTime();
            if (dirtySegments.size() == 1) {
                dirtySegments.iterator().next().force();
            } else if (!dirtySegments.isEmpty()) {
                join(forceAsync(List.copyOf(dirtySegments)));
            }
            if (!dirtySegments.isEmpty()) {
                forceNanos.accept(System.nanoTime() - forceStart);
            }
        } catch (IOException e) {
            ioFailure(e, "forcing segments in " + root);
            failPending();
            return;
        }
        dirtySegments.clear();
        for (SegmentLog log : dirtyLogs) {
            log.onDurable();
        }
        dirtyLogs.clear();
        unsyncedBytes = 0;
        oldestUnsyncedNanos = -1;
        oldestFsyncWaitNanos = -1;
        completeAcks(true);
    }

    /** Completes written appends in order: page-cache ones at once, fsync ones only after a flush. */
    private void completeAcks(boolean synced) {
        if (failure != null) {
            failPending();
            return;
        }
        IoTask.Write w;
        while ((w = unacked.peek()) != null && (synced || w.durability() == Durability.PAGE_CACHE)) {
            unacked.poll();
            unreserve(w.size(), w.appends());
            if (w.future() != null) {
                w.future().complete(w.result());
            }
        }
    }

    private void failTask(IoTask task) {
        if (task == WAKE) {
            return;
        }
        LogException f = failure != null ? failure
                : new LogException(LogException.Kind.CLOSED, "data directory " + root + " is closed");
        if (task instanceof IoTask.Write w) {
            unreserve(w.size(), w.appends());
            if (w.future() != null) {
                w.future().completeExceptionally(f);
            }
        } else if (task instanceof IoTask.Run r) {
            r.future().completeExceptionally(f);
        } else if (task instanceof IoTask.Offload o) {
            o.future().completeExceptionally(f);
        }
    }

    private void failPending() {
        for (IoTask.Write w : buffered) {
            failTask(w);
        }
        buffered.clear();
        writeBuffer.clear();
        IoTask.Write w;
        while ((w = unacked.poll()) != null) {
            failTask(w);
        }
        dirtySegments.clear();
        dirtyLogs.clear();
        unsyncedBytes = 0;
        oldestUnsyncedNanos = -1;
        oldestFsyncWaitNanos = -1;
    }

    private void failQueued() {
        IoTask t;
        while ((t = queue.poll()) != null) {
            failTask(t);
        }
    }

    /** Closes every open log cleanly (flushed, indexes trimmed, clean-shutdown state written), then the thread. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        List<CompletableFuture<Void>> closing = new ArrayList<>();
        for (SegmentLog log : List.copyOf(logs.values())) {
            closing.add(log.closeAsync());
        }
        closed = true;
        for (CompletableFuture<Void> c : closing) {
            try {
                c.join();
            } catch (RuntimeException e) {
                LOG.warn("Closing a log in {} failed: {}", root, e.toString());
            }
        }
        stopRequested = true;
        queue.add(new IoTask.Run("wake up to stop", () -> null, new CompletableFuture<>()));
        stopThreads();
    }

    /** Joins the I/O thread, then lets a background force in flight finish (never interrupted: that would close its channel). */
    private void stopThreads() {
        try {
            ioThread.join(TimeUnit.SECONDS.toMillis(30));
            forcers.shutdown();
            if (!forcers.awaitTermination(30, TimeUnit.SECONDS)) {
                LOG.warn("A background force in {} did not finish in 30 s", root);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /**
     * Stops the I/O thread without flushing or closing anything, as a crash would (tests only): what was
     * not forced is left to the file layer.
     */
    void halt() {
        closed = true;
        halted = true;
        queue.add(new IoTask.Run("wake up to halt", () -> null, new CompletableFuture<>()));
        stopThreads();
    }
}
