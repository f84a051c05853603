package dev.segstore.it;

import dev.segstore.adapter.NewRecord;
import dev.segstore.adapter.StoredRecord;
import dev.segstore.adapter.ShardConfig;
import dev.segstore.adapter.ShardFilter;
import dev.segstore.adapter.StorageAdapter;
import dev.segstore.adapter.StorageDriverManager;
import dev.segstore.adapter.spi.EngineSettings;
import dev.segstore.engine.memory.MemoryStorageAdapter;
import dev.segstore.engine.rocksdb.RocksDbSettings;
import dev.segstore.engine.rocksdb.RocksDbStorageAdapter;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

import static dev.segstore.adapter.testkit.Futures.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;

/** A broker's view: topics of different storage types side by side in one process, through the manager. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class MixedEnginesTest {
    @TempDir
    Path dataDir;

    private StorageDriverManager manager(Map<String, String> topicTypes) {
        return StorageDriverManager.builder(topic -> Optional.ofNullable(topicTypes.get(topic)))
                .engineSettings(type -> type.equals(RocksDbStorageAdapter.STORAGE_TYPE)
                        ? new EngineSettings(type, Map.of(RocksDbSettings.DATA_DIR, dataDir.toString()))
                        : EngineSettings.empty(type))
                .build();
    }

    @Test
    void memoryAndRocksDbTopicsLiveSideBySide() {
        Map<String, String> types = Map.of("fast", "memory", "durable", "rocksdb");
        try (StorageDriverManager manager = manager(types)) {
            StorageAdapter fast = manager.adapterFor("fast");
            StorageAdapter durable = manager.adapterFor("durable");
            assertInstanceOf(MemoryStorageAdapter.class, fast);
            assertInstanceOf(RocksDbStorageAdapter.class, durable);

            for (StorageAdapter a : List.of(fast, durable)) {
                await(a.createShard(ShardConfig.of("p0", "memory")));
            }
            await(fast.write("p0", NewRecord.of(1, bytes("in memory"))));
            await(durable.write("p0", NewRecord.of(1, bytes("on disk"))));
            assertEquals("in memory", text(await(fast.readByOffset("p0", 0, 10))));
            assertEquals("on disk", text(await(durable.readByOffset("p0", 0, 10))), "same shard name, separate engines");
        }
        // The rocksdb topic's records outlive the manager; the memory topic's do not.
        try (StorageDriverManager manager = manager(types)) {
            assertEquals("on disk", text(await(manager.adapterFor("durable").readByOffset("p0", 0, 10))));
            assertEquals(List.of(), await(manager.adapterFor("fast").listShards(ShardFilter.all())));
        }
    }

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    private static String text(List<StoredRecord> records) {
        assertEquals(1, records.size());
        return new String(records.get(0).payload(), StandardCharsets.UTF_8);
    }
}
