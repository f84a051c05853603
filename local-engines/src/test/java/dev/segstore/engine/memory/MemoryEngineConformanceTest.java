package dev.segstore.engine.memory;

import dev.segstore.adapter.StorageAdapter;
import dev.segstore.adapter.testkit.StorageAdapterConformance;

class MemoryEngineConformanceTest extends StorageAdapterConformance {
    @Override
    protected StorageAdapter openAdapter() {
        return new MemoryStorageAdapter();
    }
}
