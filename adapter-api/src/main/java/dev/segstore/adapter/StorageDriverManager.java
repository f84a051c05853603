package dev.segstore.adapter;

import dev.segstore.adapter.spi.EngineSettings;
import dev.segstore.adapter.spi.StorageEngineProvider;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.ServiceLoader;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Function;

/**
 * Routes each topic to the engine of its {@code storage_type}.
 *
 * <p>Engines are found through {@link ServiceLoader} (every {@link StorageEngineProvider} on the class
 * path) plus any provider registered on the builder; a new engine is a jar, not a change here. Each
 * type's engine is created once, lazily, on first use, even when many threads ask at once, and shared by
 * all topics of that type. Several types live side by side in one manager.
 *
 * <p>Thread-safe. {@link #close()} closes every engine the manager created.
 */
public final class StorageDriverManager implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(StorageDriverManager.class);

    private final TopicConfigSource topics;
    private final Optional<String> defaultStorageType;
    private final Function<String, EngineSettings> settings;
    private final Map<String, StorageEngineProvider> providers;
    private final ConcurrentHashMap<String, EngineSlot> engines = new ConcurrentHashMap<>();
    private volatile boolean closed;

    private StorageDriverManager(Builder b) {
        this.topics = Objects.requireNonNull(b.topics, "topic config source");
        this.defaultStorageType = Optional.ofNullable(b.defaultStorageType);
        this.settings = b.settings;
        Map<String, StorageEngineProvider> found = new HashMap<>();
        List<StorageEngineProvider> all = new ArrayList<>(b.providers);
        ServiceLoader.load(StorageEngineProvider.class, b.classLoader).forEach(all::add);
        for (StorageEngineProvider p : all) {
            Validation.storageType("storage type of provider " + p.getClass().getName(), p.storageType());
            StorageEngineProvider previous = found.putIfAbsent(p.storageType(), p);
            if (previous != null && previous.getClass() != p.getClass()) {
                throw new StorageException(ErrorCode.INVALID_ARGUMENT, "two engines claim storage_type '"
                        + p.storageType() + "': " + previous.getClass().getName() + " and " + p.getClass().getName());
            }
        }
        this.providers = Map.copyOf(found);
        LOG.info("storage engines available: {}", new TreeSet<>(providers.keySet()));
    }

    public static Builder builder(TopicConfigSource topics) {
        return new Builder(topics);
    }

    /**
     * The engine that stores this topic, created on first use.
     *
     * @throws StorageException {@link ErrorCode#UNKNOWN_STORAGE_TYPE} if no engine serves the topic's type,
     *                          {@link ErrorCode#INVALID_ARGUMENT} if the topic has no type and there is no
     *                          default, {@link ErrorCode#CLOSED} after {@link #close()}, or whatever the
     *                          engine's provider failed with
     */
    public StorageAdapter adapterFor(String topic) {
        Objects.requireNonNull(topic, "topic");
        String type = topics.storageType(topic).or(() -> defaultStorageType).orElseThrow(() ->
                StorageException.invalidArgument("topic", "has no storage_type and the manager has no default",
                        topic));
        return engine(type);
    }

    /** The engine of a storage type, created on first use. */
    public StorageAdapter engine(String storageType) {
        if (closed) {
            throw new StorageException(ErrorCode.CLOSED, "storage driver manager is closed");
        }
        StorageEngineProvider provider = providers.get(storageType);
        if (provider == null) {
            throw new StorageException(ErrorCode.UNKNOWN_STORAGE_TYPE, "no engine provides storage_type '"
                    + storageType + "'; available: " + new TreeSet<>(providers.keySet()));
        }
        return engines.computeIfAbsent(storageType, t -> new EngineSlot(provider)).get();
    }

    /** The storage types that engines on the class path (or registered) provide. */
    public Set<String> availableTypes() {
        return new TreeSet<>(providers.keySet());
    }

    /** Closes every engine created so far. Later look-ups fail with {@link ErrorCode#CLOSED}. */
    @Override
    public void close() {
        closed = true;
        for (EngineSlot slot : engines.values()) {
            slot.close();
        }
    }

    /** Creates one engine at most once; a failed creation is not remembered, so the next look-up retries. */
    private final class EngineSlot {
        private final StorageEngineProvider provider;
        private StorageAdapter adapter;

        EngineSlot(StorageEngineProvider provider) {
            this.provider = provider;
        }

        synchronized StorageAdapter get() {
            if (closed) {
                throw new StorageException(ErrorCode.CLOSED, "storage driver manager is closed");
            }
            if (adapter == null) {
                String type = provider.storageType();
                adapter = Objects.requireNonNull(provider.create(settings.apply(type)),
                        () -> provider.getClass().getName() + " created no engine");
                LOG.info("started storage engine '{}' ({})", type, adapter.getClass().getName());
            }
            return adapter;
        }

        synchronized void close() {
            if (adapter != null) {
                adapter.close();
                adapter = null;
            }
        }
    }

    public static final class Builder {
        private final TopicConfigSource topics;
        private final List<StorageEngineProvider> providers = new ArrayList<>();
        private String defaultStorageType;
        private Function<String, EngineSettings> settings = EngineSettings::empty;
        private ClassLoader classLoader = Thread.currentThread().getContextClassLoader();

        private Builder(TopicConfigSource topics) {
            this.topics = topics;
        }

        /** The type of topics whose configuration names none. Without it such topics are an error. */
        public Builder defaultStorageType(String type) {
            Validation.storageType("defaultStorageType", type);
            this.defaultStorageType = type;
            return this;
        }

        /** Settings for each type's engine (by default none). */
        public Builder engineSettings(Function<String, EngineSettings> settingsByType) {
            this.settings = Objects.requireNonNull(settingsByType);
            return this;
        }

        /** Adds a provider beside those {@link ServiceLoader} finds (useful when the class path is not yours). */
        public Builder provider(StorageEngineProvider provider) {
            providers.add(Objects.requireNonNull(provider));
            return this;
        }

        /** The class loader searched for providers (default: the thread's context class loader). */
        public Builder classLoader(ClassLoader loader) {
            this.classLoader = Objects.requireNonNull(loader);
            return this;
        }

        public StorageDriverManager build() {
            return new StorageDriverManager(this);
        }
    }
}
