package dev.segstore.node.server;

import dev.segstore.log.DirectoryConfig;
import dev.segstore.log.LogConfig;
import dev.segstore.log.LogDirectory;
import dev.segstore.log.LogException;
import dev.segstore.log.SegmentLog;
import dev.segstore.log.io.LogFiles;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.function.LongSupplier;

/**
 * A storage node's data directories ({@code data.dirs}), each with its own {@link LogDirectory} (its I/O thread,
 * queue and flush policy). A replica's log lives in exactly one of them: the one it was found in at start, or,
 * for a new log, the online directory holding the fewest logs.
 *
 * <p>A directory fails on its own: an I/O error takes it offline (every call on its logs fails STORAGE_ERROR), or
 * it cannot be opened or listed at start. The node goes on serving the logs of the others, and reports the logs of
 * an offline directory to the controller ({@link #offlineLogs}, HeartbeatRequest.offline_segments), which takes
 * those replicas out of their ISRs and leaderships. Logs of a directory that is offline at start are not known: the
 * registration lists the logs the node holds ({@link #logNames}) and the controller marks every other assigned
 * replica offline (RegisterNodeRequest.held_segments). The first directory also holds the node's key and tag
 * index and the replicas' tombstones: when it fails the whole node is offline ({@link #indexDirectoryOnline}: the
 * controller fences it), and the node does not start without it.
 *
 * <p>A log name found in two directories at start is refused (the node does not start): one copy is stale, and which
 * one is for the operator to say.
 *
 * <p>Thread-safe: changes to the location map (placing, opening, deleting a log) are made under this object's monitor;
 * look-ups ({@link #holds}, {@link #onOfflineDirectory}) read the concurrent map without it. Opening a log forces
 * files and directories to disk, tens of milliseconds while many replicas are opened at once (1,000 shards created):
 * a follower's fetch loop, which asks {@link #onOfflineDirectory} every round, must not wait for that.
 */
final class DataDirectories implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(DataDirectories.class);

    /** One configured directory: its log directory, or null when it could not be opened at start. */
    record Dir(Path root, LogDirectory logs, String startFailure) {
        boolean isOnline() {
            return logs != null && logs.isOnline();
        }

        /** Why it is offline (null while online). */
        String failure() {
            if (logs == null) {
                return startFailure;
            }
            LogException f = logs.failure();
            return f == null ? (logs.isOnline() ? null : "closed") : f.getMessage();
        }
    }

    private final List<Dir> dirs;
    /** Where each log known to this node lives (found at start or placed since). */
    private final Map<String, Dir> located = new java.util.concurrent.ConcurrentHashMap<>();

    private DataDirectories(List<Dir> dirs) {
        this.dirs = List.copyOf(dirs);
    }

    /**
     * Opens each of {@code roots} ({@code <root>/logs} holds its logs) and finds the logs in each. A directory that
     * cannot be opened or listed is offline from the start; when the first one is not online the node cannot start
     * (throws).
     */
    static DataDirectories open(List<Path> roots, DirectoryConfig config, LogFiles files, LongSupplier wallMs) {
        List<Dir> dirs = new ArrayList<>();
        LogException first = null;
        for (Path root : roots) {
            try {
                dirs.add(new Dir(root, LogDirectory.open(root.resolve("logs"), config, files, wallMs), null));
            } catch (LogException e) {
                LOG.error("Data directory {} cannot be opened ({}): it is offline; the node serves its other directories", root, e.getMessage());
                dirs.add(new Dir(root, null, e.getMessage()));
                first = first == null ? e : first;
            }
        }
        DataDirectories d = new DataDirectories(dirs);
        try {
            d.locateLogs();
        } catch (RuntimeException e) {
            d.close();
            throw e;
        }
        if (!d.indexDirectoryOnline()) {
            d.close();
            throw first != null ? first : new LogException(LogException.Kind.STORAGE_ERROR, "the first data directory " + roots.get(0)
                    + " (it holds the node's index) is offline");
        }
        return d;
    }

    private synchronized void locateLogs() {
        for (Dir d : dirs) {
            if (!d.isOnline()) {
                continue;
            }
            List<String> names;
            try {
                names = d.logs().logNames();
            } catch (LogException e) {
                LOG.error("Data directory {} cannot be listed ({}): it is offline", d.root(), e.getMessage());
                continue; // listing failed: the directory went offline
            }
            for (String name : names) {
                Dir other = located.putIfAbsent(name, d);
                if (other != null) {
                    throw new IllegalStateException("log " + name + " is in two data directories, " + other.root() + " and " + d.root()
                            + ": one copy is stale; move the one to drop out of data.dirs (the node then fetches what it lacks)");
                }
            }
        }
    }

    /** Every configured directory, in configuration order. */
    List<Dir> all() {
        return dirs;
    }

    /** The directories online now. */
    List<Dir> online() {
        return dirs.stream().filter(Dir::isOnline).toList();
    }

    boolean anyOnline() {
        return dirs.stream().anyMatch(Dir::isOnline);
    }

    /** Whether the first directory, which also holds the node's index and tombstones, is online: else the node is offline. */
    boolean indexDirectoryOnline() {
        return dirs.get(0).isOnline();
    }

    boolean allOnline() {
        return dirs.stream().allMatch(Dir::isOnline);
    }

    /**
     * The page cache identity ({@link LogDirectory#pageCacheIdAfterForcing}) once every online directory forced the
     * newest segment of each of its logs; {@code ""} (unknown) if any of them cannot say.
     */
    String pageCacheIdAfterForcing() {
        String id = null;
        for (Dir d : online()) {
            String each = d.logs().pageCacheIdAfterForcing();
            if (each.isEmpty() || (id != null && !id.equals(each))) {
                return "";
            }
            id = each;
        }
        return id == null ? "" : id;
    }

    /** Whether the node holds log {@code name} on an online directory. */
    boolean holds(String name) {
        Dir d = located.get(name);
        return d != null && d.isOnline();
    }

    /** Whether log {@code name} is known to be on a directory that is offline now. */
    boolean onOfflineDirectory(String name) {
        Dir d = located.get(name);
        return d != null && !d.isOnline();
    }

    /** The logs this node holds on online directories. */
    synchronized List<String> logNames() {
        return located.entrySet().stream().filter(e -> e.getValue().isOnline()).map(Map.Entry::getKey).sorted().toList();
    }

    /** The logs known to be on directories that are offline now. */
    synchronized List<String> offlineLogs() {
        return located.entrySet().stream().filter(e -> !e.getValue().isOnline()).map(Map.Entry::getKey).sorted().toList();
    }

    /**
     * Opens log {@code name} where it is, or creates it on the online directory holding the fewest logs. Fails
     * (STORAGE_ERROR) when it is on an offline directory: it is not created anew elsewhere, which would leave two
     * copies once that directory is back.
     */
    SegmentLog openLog(String name, LogConfig config, long initialOffset) {
        CompletableFuture<Void> deleting = this.deleting.get(name);
        if (deleting != null) {
            // Its files are still to be unlinked: opening them now would give a log whose files vanish under it.
            try {
                deleting.join();
            } catch (java.util.concurrent.CompletionException | java.util.concurrent.CancellationException e) {
                throw new LogException(LogException.Kind.STORAGE_ERROR, "log " + name + " could not be deleted before it is made again: " + e.getCause());
            }
        }
        return openLocated(name, config, initialOffset);
    }

    /**
     * As {@link #openLog}, a new log made on the directory of log {@code beside} if that one is on an online directory
     * (so a failure of that directory takes both offline together).
     */
    SegmentLog openLogBeside(String name, String beside, LogConfig config, long initialOffset) {
        synchronized (this) {
            Dir d = located.get(beside);
            if (!located.containsKey(name) && d != null && d.isOnline() && !deleting.containsKey(name)) {
                located.put(name, d); // where openLog makes it
            }
        }
        return openLog(name, config, initialOffset);
    }

    private synchronized SegmentLog openLocated(String name, LogConfig config, long initialOffset) {
        if (deleting.containsKey(name)) {
            throw new LogException(LogException.Kind.ILLEGAL_STATE, "log " + name + " is being deleted again");
        }
        Dir d = located.get(name);
        if (d == null) {
            d = placeNew();
        } else if (!d.isOnline()) {
            throw new LogException(LogException.Kind.STORAGE_ERROR, "log " + name + " is on data directory " + d.root()
                    + ", which is offline (" + d.failure() + ")");
        }
        SegmentLog log = d.logs().openLog(name, config, initialOffset);
        located.put(name, d);
        return log;
    }

    private Dir placeNew() {
        Map<Dir, Integer> counts = new HashMap<>();
        located.values().forEach(d -> counts.merge(d, 1, Integer::sum));
        Dir best = null;
        for (Dir d : online()) {
            if (best == null || counts.getOrDefault(d, 0) < counts.getOrDefault(best, 0)) {
                best = d;
            }
        }
        if (best == null) {
            throw new LogException(LogException.Kind.STORAGE_ERROR, "no data directory is online");
        }
        return best;
    }

    /** Deletes log {@code name} where it is (on an offline directory it is only forgotten: nothing can be done there). */
    synchronized CompletableFuture<Void> deleteLog(String name) {
        Dir d = located.remove(name);
        if (d == null) {
            return CompletableFuture.completedFuture(null);
        }
        if (!d.isOnline()) {
            LOG.warn("Log {} is on offline data directory {}: forgotten, not deleted (delete it by hand if the directory comes back)",
                    name, d.root());
            return CompletableFuture.completedFuture(null);
        }
        CompletableFuture<Void> f = d.logs().deleteLog(name);
        deleting.put(name, f);
        f.whenComplete((v, e) -> deleting.remove(name, f));
        return f;
    }

    /** Deletes under way (by name): until one ends, the name is not opened again ({@link #openLog} waits for it). */
    private final Map<String, CompletableFuture<Void>> deleting = new java.util.concurrent.ConcurrentHashMap<>();

    @Override
    public void close() {
        for (Dir d : dirs) {
            if (d.logs() != null) {
                d.logs().close();
            }
        }
    }
}
