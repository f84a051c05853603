package dev.segstore.node.server;

import dev.segstore.log.io.LogFiles;
import dev.segstore.log.io.RealLogFiles;

import java.io.IOException;
import java.io.Reader;
import java.lang.reflect.InvocationTargetException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Properties;

/**
 * The test-only hook {@code test.log.files.class} (docs/configuration.md): the segment logs' file layer a storage
 * node process runs on. Absent (production): the real file system. Set, it names a {@link LogFiles}
 * implementation on the class path (a fault-injecting layer of the tests) with a public constructor taking the
 * node's data directory ({@code java.nio.file.Path}) or none.
 */
public final class TestLogFiles {
    public static final String KEY = "test.log.files.class";

    private TestLogFiles() {
    }

    /** The file layer {@code configFile} asks for (see the class comment); the real one when it names none. */
    public static LogFiles fromSettings(Path configFile, Path dataDir) throws IOException {
        Properties p = new Properties();
        try (Reader r = Files.newBufferedReader(configFile)) {
            p.load(r);
        }
        String name = p.getProperty(KEY);
        return name == null || name.isBlank() ? RealLogFiles.INSTANCE : load(name.trim(), dataDir);
    }

    static LogFiles load(String name, Path dataDir) {
        Class<?> type;
        try {
            type = Class.forName(name);
        } catch (ClassNotFoundException | LinkageError e) {
            throw new IllegalArgumentException(KEY + " = " + name + ": no such class on the class path (a test-only setting)");
        }
        if (!LogFiles.class.isAssignableFrom(type)) {
            throw new IllegalArgumentException(KEY + " = " + name + " does not implement " + LogFiles.class.getName());
        }
        try {
            try {
                return (LogFiles) type.getConstructor(Path.class).newInstance(dataDir);
            } catch (NoSuchMethodException e) {
                return (LogFiles) type.getConstructor().newInstance();
            }
        } catch (NoSuchMethodException e) {
            throw new IllegalArgumentException(KEY + " = " + name + " has no public constructor taking the data directory (Path) or nothing");
        } catch (InvocationTargetException e) {
            throw new IllegalArgumentException(KEY + " = " + name + ": its constructor failed: " + e.getCause());
        } catch (ReflectiveOperationException e) {
            throw new IllegalArgumentException(KEY + " = " + name + ": cannot be made: " + e);
        }
    }
}
