package dev.segstore.engine.memory;

import dev.segstore.adapter.StorageAdapter;
import dev.segstore.adapter.testkit.StorageAdapterModelProperties;

class MemoryEngineModelProperties extends StorageAdapterModelProperties {
    @Override
    protected StorageAdapter openAdapter() {
        return new MemoryStorageAdapter();
    }
}
