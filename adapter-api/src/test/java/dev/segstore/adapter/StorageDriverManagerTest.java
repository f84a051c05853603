package dev.segstore.adapter;

import dev.segstore.adapter.spi.EngineSettings;
import dev.segstore.adapter.spi.StorageEngineProvider;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(value = 60, unit = TimeUnit.SECONDS)
class StorageDriverManagerTest {
    private final Map<String, String> topicTypes = new ConcurrentHashMap<>();
    private final TopicConfigSource topics = t -> Optional.ofNullable(topicTypes.get(t));

    @BeforeEach
    void resetCounter() {
        PluginEngineProvider.CREATED.set(0);
    }

    @Test
    void aPluginListedOnlyInMetaInfServicesIsFoundAndUsed() throws Exception {
        topicTypes.put("orders", PluginEngineProvider.TYPE);
        try (StorageDriverManager manager = StorageDriverManager.builder(topics).build()) {
            assertTrue(manager.availableTypes().contains(PluginEngineProvider.TYPE), manager.availableTypes().toString());
            StorageAdapter adapter = manager.adapterFor("orders");
            assertInstanceOf(PluginEngineProvider.ShardNamesEngine.class, adapter);
            adapter.createShard(ShardConfig.of("orders-0", PluginEngineProvider.TYPE)).get(10, TimeUnit.SECONDS);
            assertEquals(List.of("orders-0"), adapter.listShards(ShardFilter.all()).get(10, TimeUnit.SECONDS)
                    .stream().map(ShardInfo::name).toList());
        }
    }

    @Test
    void anEngineIsCreatedOnceAndSharedEvenUnderConcurrentFirstUse() throws Exception {
        for (int i = 0; i < 32; i++) {
            topicTypes.put("topic-" + i, PluginEngineProvider.TYPE);
        }
        ExecutorService pool = Executors.newFixedThreadPool(8);
        try (StorageDriverManager manager = StorageDriverManager.builder(topics).build()) {
            CountDownLatch start = new CountDownLatch(1);
            List<Future<StorageAdapter>> results = new ArrayList<>();
            for (int i = 0; i < 32; i++) {
                String topic = "topic-" + i;
                results.add(pool.submit(() -> {
                    start.await();
                    return manager.adapterFor(topic);
                }));
            }
            start.countDown();
            Set<StorageAdapter> distinct = ConcurrentHashMap.newKeySet();
            for (Future<StorageAdapter> f : results) {
                distinct.add(f.get(10, TimeUnit.SECONDS));
            }
            assertEquals(1, distinct.size(), "one engine shared by every topic of the type");
            assertEquals(1, PluginEngineProvider.CREATED.get(), "created exactly once");
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void anUnknownTypeIsATypedErrorThatListsTheKnownTypes() {
        topicTypes.put("t", "no-such-engine");
        try (StorageDriverManager manager = StorageDriverManager.builder(topics).build()) {
            StorageException e = assertThrows(StorageException.class, () -> manager.adapterFor("t"));
            assertEquals(ErrorCode.UNKNOWN_STORAGE_TYPE, e.code());
            assertTrue(e.getMessage().contains("no-such-engine") && e.getMessage().contains(PluginEngineProvider.TYPE),
                    e.getMessage());
        }
    }

    @Test
    void aTopicWithoutTypeNeedsADefault() {
        try (StorageDriverManager manager = StorageDriverManager.builder(topics).build()) {
            assertEquals(ErrorCode.INVALID_ARGUMENT,
                    assertThrows(StorageException.class, () -> manager.adapterFor("untyped")).code());
        }
        try (StorageDriverManager manager = StorageDriverManager.builder(topics)
                .defaultStorageType(PluginEngineProvider.TYPE).build()) {
            assertInstanceOf(PluginEngineProvider.ShardNamesEngine.class, manager.adapterFor("untyped"));
        }
    }

    @Test
    void switchingATopicsTypeIsAConfigChange() {
        StorageEngineProvider second = new RenamedProvider("second");
        try (StorageDriverManager manager = StorageDriverManager.builder(topics).provider(second).build()) {
            topicTypes.put("t", PluginEngineProvider.TYPE);
            StorageAdapter first = manager.adapterFor("t");
            topicTypes.put("t", "second");
            StorageAdapter after = manager.adapterFor("t");
            assertNotSame(first, after);
            assertSame(manager.engine("second"), after);
            assertSame(first, manager.engine(PluginEngineProvider.TYPE), "the first engine lives on for other topics");
        }
    }

    @Test
    void aFailedCreationIsNotRememberedAndEngineSettingsReachTheProvider() {
        topicTypes.put("t", PluginEngineProvider.TYPE);
        AtomicBoolean fail = new AtomicBoolean(true);
        try (StorageDriverManager manager = StorageDriverManager.builder(topics)
                .engineSettings(type -> new EngineSettings(type, Map.of("fail", String.valueOf(fail.get()))))
                .build()) {
            assertEquals(ErrorCode.UNAVAILABLE, assertThrows(StorageException.class, () -> manager.adapterFor("t")).code());
            fail.set(false);
            assertInstanceOf(PluginEngineProvider.ShardNamesEngine.class, manager.adapterFor("t"));
        }
    }

    @Test
    void closeClosesEveryCreatedEngineAndRefusesLaterLookUps() {
        topicTypes.put("t", PluginEngineProvider.TYPE);
        StorageDriverManager manager = StorageDriverManager.builder(topics).build();
        PluginEngineProvider.ShardNamesEngine engine = (PluginEngineProvider.ShardNamesEngine) manager.adapterFor("t");
        manager.close();
        assertTrue(engine.closed);
        assertEquals(ErrorCode.CLOSED, assertThrows(StorageException.class, () -> manager.adapterFor("t")).code());
    }

    @Test
    void twoProvidersClaimingOneTypeAreRejected() {
        StorageException e = assertThrows(StorageException.class, () -> StorageDriverManager.builder(topics)
                .provider(new RenamedProvider(PluginEngineProvider.TYPE)).build());
        assertTrue(e.getMessage().contains("two engines claim"), e.getMessage());
    }

    @Test
    void engineSettingsRejectMalformedValuesByName() {
        EngineSettings s = new EngineSettings("x", Map.of("n", "abc", "b", "yes", "big", "99"));
        assertTrue(assertThrows(StorageException.class, () -> s.getLong("n", 1, 0, 10)).getMessage().contains("x.n"));
        assertThrows(StorageException.class, () -> s.getBoolean("b", true));
        assertThrows(StorageException.class, () -> s.getLong("big", 1, 0, 10));
        assertThrows(StorageException.class, () -> s.require("missing"));
        assertEquals(7, s.getLong("absent", 7, 0, 10));
    }

    /** A second provider class, registered on the builder, under a type of the test's choosing. */
    private static final class RenamedProvider implements StorageEngineProvider {
        private final String type;

        RenamedProvider(String type) {
            this.type = type;
        }

        @Override
        public String storageType() {
            return type;
        }

        @Override
        public StorageAdapter create(EngineSettings settings) {
            return new PluginEngineProvider().create(settings);
        }
    }
}
