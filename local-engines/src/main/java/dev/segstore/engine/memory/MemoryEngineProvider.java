package dev.segstore.engine.memory;

import dev.segstore.adapter.StorageAdapter;
import dev.segstore.adapter.spi.EngineSettings;
import dev.segstore.adapter.spi.StorageEngineProvider;

/** Provides {@code storage_type = memory}. It takes no settings. */
public final class MemoryEngineProvider implements StorageEngineProvider {
    @Override
    public String storageType() {
        return MemoryStorageAdapter.STORAGE_TYPE;
    }

    @Override
    public StorageAdapter create(EngineSettings settings) {
        return new MemoryStorageAdapter();
    }
}
