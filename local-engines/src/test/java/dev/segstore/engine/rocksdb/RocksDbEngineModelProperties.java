package dev.segstore.engine.rocksdb;

import dev.segstore.adapter.StorageAdapter;
import dev.segstore.adapter.testkit.StorageAdapterModelProperties;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

class RocksDbEngineModelProperties extends StorageAdapterModelProperties {
    private Path dir;

    @Override
    protected StorageAdapter openAdapter() throws IOException {
        dir = Files.createTempDirectory("rocksdb-model");
        return RocksDbStorageAdapter.open(RocksDbSettings.defaults(dir).withSyncWrites(false));
    }

    @Override
    protected boolean supportsReopen() {
        return true;
    }

    @Override
    protected StorageAdapter reopenAdapter() {
        return RocksDbStorageAdapter.open(RocksDbSettings.defaults(dir).withSyncWrites(false));
    }
}
