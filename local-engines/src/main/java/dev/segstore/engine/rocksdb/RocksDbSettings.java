package dev.segstore.engine.rocksdb;

import dev.segstore.adapter.StorageException;
import dev.segstore.adapter.spi.EngineSettings;

import java.nio.file.Path;

/**
 * Settings of the rocksdb engine, from the engine properties of {@code storage_type = rocksdb}:
 * <table>
 *   <tr><th>property</th><th>default</th><th>meaning</th></tr>
 *   <tr><td>{@code data-dir}</td><td>(required)</td><td>directory of the RocksDB files; created if missing</td></tr>
 *   <tr><td>{@code sync-writes}</td><td>{@code true}</td><td>fsync the write-ahead log before a write
 *       completes; {@code false} survives a process crash but may lose the last writes on power loss</td></tr>
 *   <tr><td>{@code threads}</td><td>number of cores, at least 2</td><td>shard owner threads (1..256)</td></tr>
 * </table>
 */
public record RocksDbSettings(Path dataDir, boolean syncWrites, int threads) {
    public static final String DATA_DIR = "data-dir";
    public static final String SYNC_WRITES = "sync-writes";
    public static final String THREADS = "threads";

    public RocksDbSettings {
        if (dataDir == null) {
            throw StorageException.invalidArgument("rocksdb data-dir", "is required", null);
        }
        if (threads < 1 || threads > 256) {
            throw StorageException.invalidArgument("rocksdb threads", "must be in 1..256", threads);
        }
    }

    public static RocksDbSettings defaults(Path dataDir) {
        return new RocksDbSettings(dataDir, true, defaultThreads());
    }

    public RocksDbSettings withSyncWrites(boolean sync) {
        return new RocksDbSettings(dataDir, sync, threads);
    }

    public static RocksDbSettings from(EngineSettings s) {
        return new RocksDbSettings(Path.of(s.require(DATA_DIR)), s.getBoolean(SYNC_WRITES, true),
                (int) s.getLong(THREADS, defaultThreads(), 1, 256));
    }

    private static int defaultThreads() {
        return Math.max(2, Runtime.getRuntime().availableProcessors());
    }
}
