package dev.segstore.engine.rocksdb;

import dev.segstore.adapter.StorageAdapter;
import dev.segstore.adapter.testkit.PersistentStorageAdapterConformance;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

class RocksDbEngineConformanceTest extends PersistentStorageAdapterConformance {
    @TempDir
    Path dir;

    @Override
    protected String storageType() {
        return RocksDbStorageAdapter.STORAGE_TYPE;
    }

    @Override
    protected StorageAdapter openAdapter() {
        return RocksDbStorageAdapter.open(RocksDbSettings.defaults(dir)); // the default: sync writes
    }

    @Override
    protected StorageAdapter reopenAdapter() {
        return RocksDbStorageAdapter.open(RocksDbSettings.defaults(dir));
    }
}
