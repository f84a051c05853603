package dev.segstore.meta.state;

import com.google.protobuf.ByteString;
import dev.segstore.protocol.meta.AppliedRequest;

import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Optional;

/**
 * The creates and deletes applied recently, by the client's request id, so that a retry of one whose answer was
 * lost (a timeout, a leader change between commit and answer) is answered as the first attempt was instead of
 * with {@code SHARD_EXISTS} or {@code SHARD_NOT_FOUND} for its own success. Part of the state machine: changed only
 * while applying commands, expired by command time and count (both the same on every replica), kept in snapshots.
 *
 * <p>A request is remembered for {@link #RETENTION_MS} of command time, far longer than a client retries one call
 * (its request deadline), and at most {@link #MAX_ENTRIES} of them (each is under 100 bytes).
 */
final class RecentRequests {
    static final long RETENTION_MS = 15 * 60 * 1000L;
    static final int MAX_ENTRIES = 100_000;

    /** In the order applied, so the oldest is first. */
    private final LinkedHashMap<ByteString, AppliedRequest> byId = new LinkedHashMap<>();

    /** The request applied under this id, if it is the same kind of request for the same name. */
    Optional<AppliedRequest> find(ByteString requestId, String name, boolean delete) {
        if (requestId.isEmpty()) {
            return Optional.empty();
        }
        AppliedRequest r = byId.get(requestId);
        return r != null && r.getName().equals(name) && r.getDelete() == delete ? Optional.of(r) : Optional.empty();
    }

    /** Whether any request was applied under this id. */
    boolean contains(ByteString requestId) {
        return !requestId.isEmpty() && byId.containsKey(requestId);
    }

    void record(ByteString requestId, long now, String name, long shardId, boolean delete) {
        if (requestId.isEmpty()) {
            return;
        }
        byId.put(requestId, AppliedRequest.newBuilder().setRequestId(requestId).setAppliedAtMs(now).setName(name)
                .setShardId(shardId).setDelete(delete).build());
        expire(now);
    }

    /** Forgets requests older than the retention at {@code now}, and the oldest beyond the count. */
    void expire(long now) {
        Iterator<AppliedRequest> it = byId.values().iterator();
        while (it.hasNext()) {
            AppliedRequest r = it.next();
            if (byId.size() <= MAX_ENTRIES && now - r.getAppliedAtMs() < RETENTION_MS) {
                break;
            }
            it.remove();
        }
    }

    List<AppliedRequest> snapshot() {
        return List.copyOf(byId.values());
    }

    void restore(List<AppliedRequest> requests) {
        byId.clear();
        requests.forEach(r -> byId.put(r.getRequestId(), r));
    }

    int size() {
        return byId.size();
    }
}
