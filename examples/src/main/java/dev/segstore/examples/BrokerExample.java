package dev.segstore.examples;

import dev.segstore.adapter.NewRecord;
import dev.segstore.adapter.StoredRecord;
import dev.segstore.adapter.ShardConfig;
import dev.segstore.adapter.StorageAdapter;
import dev.segstore.adapter.StorageDriverManager;
import dev.segstore.adapter.spi.EngineSettings;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A broker's use of the store, as the README shows it: three topics, one per engine, routed by their
 * {@code storage_type} through one {@link StorageDriverManager}; the same calls on each.
 *
 * <pre>java ... dev.segstore.examples.BrokerExample META_ADDRESSES [ROCKSDB_DIR]</pre>
 * META_ADDRESSES: the meta-service RPC addresses, comma-separated (the {@code segment} engine's only setting
 * that has no default).
 */
public final class BrokerExample {
    public static void main(String[] args) throws Exception {
        if (args.length < 1) {
            System.err.println("usage: BrokerExample META_ADDRESSES [ROCKSDB_DIR]");
            System.exit(2);
        }
        String metaAddresses = args[0];
        Path rocksDir = args.length > 1 ? Path.of(args[1]) : Files.createTempDirectory("broker-example-rocksdb");

        // The broker's topic configuration: which engine holds each topic.
        Map<String, String> topicTypes = Map.of("clicks", "memory", "invoices", "rocksdb", "orders", "segment");
        StorageDriverManager storage = StorageDriverManager.builder(topic -> Optional.ofNullable(topicTypes.get(topic)))
                .engineSettings(type -> switch (type) {
                    case "rocksdb" -> new EngineSettings(type, Map.of("data-dir", rocksDir.toString()));
                    case "segment" -> new EngineSettings(type, Map.of("meta.addresses", metaAddresses));
                    default -> EngineSettings.empty(type);
                })
                .build();
        try {
            for (String topic : List.of("clicks", "invoices", "orders")) {
                StorageAdapter adapter = storage.adapterFor(topic);
                String shard = topic + "-" + System.currentTimeMillis(); // a fresh shard on every run
                adapter.createShard(ShardConfig.of(shard, topicTypes.get(topic))).join();
                long offset = adapter.write(shard, NewRecord.of(System.currentTimeMillis(), bytes("hello from " + topic))
                        .withKey("customer-42").withTags("eu")).join();
                adapter.batchWrite(shard, List.of(NewRecord.of(System.currentTimeMillis(), bytes("second")),
                        NewRecord.of(System.currentTimeMillis(), bytes("third")).withKey("customer-42"))).join();
                List<StoredRecord> records = adapter.readByOffset(shard, offset, 100).join();
                StoredRecord latest = adapter.readByKey(shard, "customer-42").join().orElseThrow();
                adapter.deleteByOffset(shard, offset + 1).join();
                adapter.commitOffset("billing", shard, offset + 3).join();
                System.out.printf("%-8s (%s): wrote offsets %d..%d, read %s, newest customer-42 = '%s' at %d, "
                                + "after deleting %d: %s, group billing at %d%n",
                        topic, topicTypes.get(topic), offset, offset + 2, texts(records), text(latest), latest.offset(),
                        offset + 1, texts(adapter.readByOffset(shard, offset, 100).join()),
                        adapter.getOffsetByGroup("billing", shard).join().orElseThrow());
            }
        } finally {
            storage.close();
        }
    }

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    private static String text(StoredRecord r) {
        return new String(r.payload(), StandardCharsets.UTF_8);
    }

    private static List<String> texts(List<StoredRecord> rs) {
        return rs.stream().map(BrokerExample::text).toList();
    }
}
