package dev.segstore.engine.rocksdb;

import dev.segstore.adapter.StorageAdapter;
import dev.segstore.adapter.spi.EngineSettings;
import dev.segstore.adapter.spi.StorageEngineProvider;

/** Provides {@code storage_type = rocksdb}; settings in {@link RocksDbSettings}. */
public final class RocksDbEngineProvider implements StorageEngineProvider {
    @Override
    public String storageType() {
        return RocksDbStorageAdapter.STORAGE_TYPE;
    }

    @Override
    public StorageAdapter create(EngineSettings settings) {
        return RocksDbStorageAdapter.open(RocksDbSettings.from(settings));
    }
}
