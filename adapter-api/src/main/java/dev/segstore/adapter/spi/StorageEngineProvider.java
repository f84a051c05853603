package dev.segstore.adapter.spi;

import dev.segstore.adapter.StorageAdapter;

/**
 * Makes the engine of one {@code storage_type}. Engines are found with {@link java.util.ServiceLoader}:
 * a jar that lists its provider in {@code META-INF/services/dev.segstore.adapter.spi.StorageEngineProvider}
 * adds an engine, with no change to {@link dev.segstore.adapter.StorageDriverManager}.
 *
 * <p>Implementations need a public no-argument constructor. {@link #create} is called at most once per
 * manager, on first use of the type; it may block (open files, connect).
 */
public interface StorageEngineProvider {

    /** The {@code storage_type} this provider serves, for example {@code "rocksdb"}. */
    String storageType();

    /**
     * Opens the engine.
     *
     * @throws dev.segstore.adapter.StorageException if the settings are invalid or the engine cannot start
     */
    StorageAdapter create(EngineSettings settings);
}
