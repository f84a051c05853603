package dev.segstore.client;

import dev.segstore.adapter.StorageAdapter;
import dev.segstore.adapter.StorageException;
import dev.segstore.adapter.spi.EngineSettings;
import dev.segstore.adapter.spi.StorageEngineProvider;
import dev.segstore.protocol.meta.DurabilityMode;
import dev.segstore.protocol.rpc.TlsConfig;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

/**
 * Provides {@code storage_type = segment}. Settings (docs/configuration.md): {@code meta.addresses} (required,
 * comma-separated host:port of the meta-service nodes), {@code request.timeout.ms} (30000: the deadline of a
 * call, retries included), {@code call.timeout.ms} (5000: one attempt), {@code durability} ({@code fsync} or
 * {@code page-cache}, for shards this engine creates), and TLS ({@code tls.enabled}, {@code tls.ca.file},
 * {@code tls.cert.file}, {@code tls.key.file}, {@code tls.verify.hostname}: docs/security.md; relative paths are
 * taken from the working directory), and the coalescing of single-record writes ({@code write.coalesce.max.in.flight}
 * 8, 0 for none; {@code write.coalesce.max.records} 1000; {@code write.coalesce.max.bytes} 1048576).
 */
public final class SegmentEngineProvider implements StorageEngineProvider {
    @Override
    public String storageType() {
        return SegmentStorageAdapter.STORAGE_TYPE;
    }

    @Override
    public StorageAdapter create(EngineSettings settings) {
        List<String> addresses = Arrays.stream(settings.require("meta.addresses").split(","))
                .map(String::trim).filter(a -> !a.isEmpty()).toList();
        for (String a : addresses) {
            int colon = a.lastIndexOf(':');
            if (colon <= 0 || colon == a.length() - 1 || !a.substring(colon + 1).chars().allMatch(Character::isDigit)) {
                throw StorageException.invalidArgument("setting segment.meta.addresses", "must be host:port[,host:port...]", a);
            }
        }
        String durability = settings.get("durability").orElse("fsync").trim();
        DurabilityMode mode = switch (durability) {
            case "fsync" -> DurabilityMode.FSYNC;
            case "page-cache" -> DurabilityMode.PAGE_CACHE;
            default -> throw StorageException.invalidArgument("setting segment.durability", "must be fsync or page-cache", durability);
        };
        TlsConfig tls;
        try {
            tls = TlsConfig.fromSettings(k -> settings.get(k).orElse(null), Path.of("."), "segment engine settings");
            if (tls != null) {
                tls.clientContext(); // the files load: a bad one fails here, not at the first call
            }
        } catch (IllegalArgumentException e) {
            throw StorageException.invalidArgument("setting segment.tls.*", e.getMessage(), "");
        }
        SegmentStorageAdapter.WriteCoalescing d = SegmentStorageAdapter.WriteCoalescing.DEFAULT;
        SegmentStorageAdapter.WriteCoalescing coalescing = new SegmentStorageAdapter.WriteCoalescing(
                (int) settings.getLong("write.coalesce.max.in.flight", d.maxInFlight(), 0, 1_024),
                (int) settings.getLong("write.coalesce.max.records", d.maxRecords(), 1, dev.segstore.adapter.Limits.MAX_BATCH_RECORDS),
                settings.getLong("write.coalesce.max.bytes", d.maxBytes(), 1, dev.segstore.adapter.Limits.MAX_BATCH_BYTES));
        return new SegmentStorageAdapter(new SegmentStorageAdapter.Settings(addresses,
                settings.getLong("request.timeout.ms", 30_000, 100, 3_600_000),
                settings.getLong("call.timeout.ms", 5_000, 50, 600_000), mode, tls, coalescing));
    }
}
