package dev.segstore.adapter.spi;

import dev.segstore.adapter.StorageException;

import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;

/**
 * The configuration handed to an engine: string properties, as a broker's config file gives them
 * (for the rocksdb engine, for example, {@code data-dir}). Typed getters reject malformed values with an
 * {@link dev.segstore.adapter.ErrorCode#INVALID_ARGUMENT} that names the property.
 */
public record EngineSettings(String storageType, Map<String, String> properties) {
    public EngineSettings {
        properties = Map.copyOf(properties);
    }

    public static EngineSettings empty(String storageType) {
        return new EngineSettings(storageType, Map.of());
    }

    public Optional<String> get(String key) {
        return Optional.ofNullable(properties.get(key));
    }

    public String require(String key) {
        String v = properties.get(key);
        if (v == null || v.isBlank()) {
            throw StorageException.invalidArgument(name(key), "is required by the " + storageType + " engine", v);
        }
        return v;
    }

    public boolean getBoolean(String key, boolean defaultValue) {
        String v = properties.get(key);
        if (v == null) {
            return defaultValue;
        }
        return switch (v.trim().toLowerCase(java.util.Locale.ROOT)) {
            case "true" -> true;
            case "false" -> false;
            default -> throw StorageException.invalidArgument(name(key), "must be true or false", v);
        };
    }

    public long getLong(String key, long defaultValue, long min, long max) {
        String v = properties.get(key);
        if (v == null) {
            return defaultValue;
        }
        long parsed;
        try {
            parsed = Long.parseLong(v.trim());
        } catch (NumberFormatException e) {
            throw StorageException.invalidArgument(name(key), "must be a whole number", v);
        }
        if (parsed < min || parsed > max) {
            throw StorageException.invalidArgument(name(key), "must be in " + min + ".." + max, v);
        }
        return parsed;
    }

    private String name(String key) {
        return "setting " + storageType + "." + key;
    }

    @Override
    public String toString() {
        return "EngineSettings[" + storageType + ", " + new TreeMap<>(properties) + "]";
    }
}
