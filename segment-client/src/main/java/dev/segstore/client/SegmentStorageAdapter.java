package dev.segstore.client;

import com.google.protobuf.Message;
import com.google.protobuf.Parser;
import dev.segstore.adapter.AbstractStorageAdapter;
import dev.segstore.adapter.ErrorCode;
import dev.segstore.adapter.Header;
import dev.segstore.adapter.NewRecord;
import dev.segstore.adapter.StoredRecord;
import dev.segstore.adapter.ShardConfig;
import dev.segstore.adapter.ShardFilter;
import dev.segstore.adapter.ShardInfo;
import dev.segstore.adapter.StorageException;
import dev.segstore.protocol.NodeMethods;
import dev.segstore.protocol.meta.DurabilityMode;
import dev.segstore.protocol.meta.GroupOffset;
import dev.segstore.protocol.meta.Segment;
import dev.segstore.protocol.meta.SegmentStatus;
import dev.segstore.protocol.meta.Shard;
import dev.segstore.protocol.meta.ShardRoute;
import dev.segstore.protocol.meta.ShardSettings;
import dev.segstore.protocol.node.DeleteRequest;
import dev.segstore.protocol.node.DeleteResponse;
import dev.segstore.protocol.node.FetchRequest;
import dev.segstore.protocol.node.FetchResponse;
import dev.segstore.protocol.node.IndexReadRequest;
import dev.segstore.protocol.node.ProduceRequest;
import dev.segstore.protocol.node.ProduceResponse;
import dev.segstore.protocol.node.SegmentRef;
import dev.segstore.protocol.node.TimestampRequest;
import dev.segstore.protocol.node.TimestampResponse;
import dev.segstore.protocol.rpc.Frames;
import dev.segstore.protocol.rpc.TlsConfig;
import dev.segstore.protocol.rpc.RpcClient;
import dev.segstore.protocol.rpc.RpcException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.function.IntFunction;
import java.util.function.Predicate;
import java.util.function.Supplier;

/**
 * The {@code segment} engine: the replicated cluster behind {@link dev.segstore.adapter.StorageAdapter}.
 *
 * <ul>
 *   <li><b>Routes.</b> A shard's route (its segments, their offset ranges, leaders and epochs) comes from the
 *       meta-service and is cached here; it is dropped and fetched again when a node answers NOT_LEADER,
 *       FENCED_EPOCH or "no replica here", and storage-node addresses are learnt from the meta-service too; a
 *       write refused by a roll whose answer names the next segment (rpc.proto, {@code Error.next_segment}) keeps
 *       it and takes that segment into it instead ({@link RouteCache#adoptNext}). A route
 *       is also known old when a node says that the segment the route calls open is sealed (node.proto,
 *       {@code sealed}): then no read, look-up or delete answers from it; a fresh route is read and the operation
 *       goes on in the later segments ({@link RouteCache#past}).</li>
 *   <li><b>Writes</b> go to the leader of the open segment with a producer id and a sequence per shard
 *       ({@link ProducerSequence}: a fresh id before the int32 sequences would wrap); a retry re-sends the same
 *       id and sequence, so the leader (or a new leader, which learnt the producer state by replication) answers
 *       it with the original offsets instead of appending again.</li>
 *   <li><b>Retries.</b> Retriable errors (not leader, stale epoch, not enough replicas, unavailable, timeout,
 *       overloaded) are retried with a growing pause until {@code request.timeout.ms}; then the last error is
 *       returned.</li>
 *   <li><b>Close</b> waits for operations in flight up to one call timeout ({@code call.timeout.ms}); retries
 *       waiting for their pause are not sent. Every operation's future completes: with its outcome if it came
 *       within that grace, else with CLOSED, or OUTCOME_UNKNOWN for a write an attempt of which went out.</li>
 *   <li><b>Reads</b> walk the segments in offset order; a sealed segment is read from a random member of its
 *       ISR (spreading reads), the open one from its leader; a member behind the seal (high watermark below the
 *       sealed end) that cannot answer in full is followed by a read from the route's leader, then from the other
 *       ISR members; if none can, the read is retried with a fresh route. Nodes skip deleted records and say
 *       where to go on.</li>
 * </ul>
 * docs/architecture.md ("The segment engine") has the whole picture.
 */
public final class SegmentStorageAdapter extends AbstractStorageAdapter {
    private static final Logger LOG = LoggerFactory.getLogger(SegmentStorageAdapter.class);
    public static final String STORAGE_TYPE = "segment";
    private static final int READ_MAX_BYTES = 4 << 20;
    private static final SecureRandom PRODUCER_IDS = new SecureRandom();

    /** The engine's settings (from the broker's configuration, see docs/configuration.md). */
    public record Settings(List<String> metaAddresses, long requestTimeoutMs, long callTimeoutMs, DurabilityMode durability,
                           TlsConfig tls, WriteCoalescing coalescing) {
        public Settings {
            metaAddresses = List.copyOf(metaAddresses);
            if (metaAddresses.isEmpty()) {
                throw StorageException.invalidArgument("setting segment.meta.addresses", "needs at least one host:port", "");
            }
            if (coalescing == null) {
                coalescing = WriteCoalescing.DEFAULT;
            }
        }

        /** With the default write coalescing. */
        public Settings(List<String> metaAddresses, long requestTimeoutMs, long callTimeoutMs, DurabilityMode durability, TlsConfig tls) {
            this(metaAddresses, requestTimeoutMs, callTimeoutMs, durability, tls, WriteCoalescing.DEFAULT);
        }

        /** Without TLS. */
        public Settings(List<String> metaAddresses, long requestTimeoutMs, long callTimeoutMs, DurabilityMode durability) {
            this(metaAddresses, requestTimeoutMs, callTimeoutMs, durability, null);
        }

        /** These settings, calling the cluster over TLS with {@code tls} (null: plain TCP; docs/security.md). */
        public Settings withTls(TlsConfig tls) {
            return new Settings(metaAddresses, requestTimeoutMs, callTimeoutMs, durability, tls, coalescing);
        }

        /** These settings with {@code coalescing} of single-record writes. */
        public Settings withCoalescing(WriteCoalescing coalescing) {
            return new Settings(metaAddresses, requestTimeoutMs, callTimeoutMs, durability, tls, coalescing);
        }

        public static Settings of(String... metaAddresses) {
            return new Settings(List.of(metaAddresses), 30_000, 5_000, DurabilityMode.FSYNC);
        }
    }

    /**
     * How concurrent single-record writes to one shard are coalesced into batches ({@link WriteCoalescer};
     * {@code segment.write.coalesce.*} settings, docs/configuration.md).
     *
     * @param maxInFlight batches of one shard out at once before writes wait to be coalesced; 0: every write is
     *                    its own request
     * @param maxRecords  records in one coalesced batch at most
     * @param maxBytes    record bytes in one coalesced batch at most (a larger single record goes alone)
     */
    public record WriteCoalescing(int maxInFlight, int maxRecords, long maxBytes) {
        /** 8 batches out, each up to 1,000 records and 1 MiB. */
        public static final WriteCoalescing DEFAULT = new WriteCoalescing(8, 1_000, 1 << 20);
        /** Off: every write is a request of its own. */
        public static final WriteCoalescing OFF = new WriteCoalescing(0, 1, 1);

        public WriteCoalescing {
            if (maxInFlight < 0 || maxRecords < 1 || maxRecords > dev.segstore.adapter.Limits.MAX_BATCH_RECORDS || maxBytes < 1
                    || maxBytes > dev.segstore.adapter.Limits.MAX_BATCH_BYTES) {
                throw StorageException.invalidArgument("setting segment.write.coalesce.*", "max.in.flight >= 0, max.records in 1.."
                        + dev.segstore.adapter.Limits.MAX_BATCH_RECORDS + ", max.bytes in 1.." + dev.segstore.adapter.Limits.MAX_BATCH_BYTES,
                        maxInFlight + ", " + maxRecords + ", " + maxBytes);
            }
        }
    }

    private final Settings settings;
    private final MetaClient meta;
    /** Per shard name, the coalescer of its single-record writes. */
    private final Map<String, WriteCoalescer> coalescers = new ConcurrentHashMap<>();
    private final RpcClient nodes;
    /** The cached routes of shards. */
    private final RouteCache routes;
    private final Map<Integer, String> nodeAddresses = new ConcurrentHashMap<>();
    /** Connections kept open to the replicas of the open segments in {@link #routes}. */
    private final ReplicaConnections replicaConnections;
    /** Per shard name, the producer id and next sequence of new batches. */
    private final Map<String, ProducerSequence> producers = new ConcurrentHashMap<>();
    private final int firstSequence;
    private final RetryScheduler retries = new RetryScheduler("segment-client-retry");
    private final InFlightOperations operations = new InFlightOperations();

    public SegmentStorageAdapter(Settings settings) {
        this(settings, 0);
    }

    /** As above, each shard's first producer id starting at sequence {@code firstSequence}: tests start near the wrap. */
    SegmentStorageAdapter(Settings settings, int firstSequence) {
        super(STORAGE_TYPE);
        this.firstSequence = firstSequence;
        this.settings = settings;
        this.meta = new MetaClient(settings.metaAddresses(), settings.callTimeoutMs(), settings.requestTimeoutMs(), settings.tls());
        this.nodes = new RpcClient(2, Frames.DEFAULT_MAX_FRAME_BYTES, settings.tls());
        this.replicaConnections = new ReplicaConnections(nodes, this::address, System::nanoTime);
        this.routes = new RouteCache(meta, replicaConnections);
    }

    // ---- shards --------------------------------------------------------------------------------------------

    @Override
    protected CompletableFuture<Void> doCreateShard(ShardConfig config) {
        ShardSettings s = ShardSettings.newBuilder().setReplicaCount(config.replicaCount())
                .setMinInSyncReplicas(config.minInSyncReplicas()).setSegmentBytes(config.segmentBytes())
                .setRetentionMs(config.retentionMs()).setDurability(settings.durability()).build();
        return tracked("createShard('" + config.name() + "')", meta.createShard(config.name(), s).handle((route, e) -> {
            if (e != null) {
                throw storageError(e);
            }
            if (route.getSegmentsCount() > 0) {
                // A retried create that was applied, its shard deleted since, answers a route of nothing: not cached.
                routes.created(config.name(), route);
            }
            return null;
        }));
    }

    @Override
    protected CompletableFuture<Void> doDeleteShard(String shard) {
        return tracked("deleteShard('" + shard + "')", meta.deleteShard(shard).handle((r, e) -> {
            routes.drop(shard);
            producers.remove(shard);
            if (e != null) {
                throw storageError(e);
            }
            return null;
        }));
    }

    @Override
    protected CompletableFuture<List<ShardInfo>> doListShards(ShardFilter filter) {
        return tracked("listShards", meta.listShards(filter.namePrefix()).handle((r, e) -> {
            if (e != null) {
                throw storageError(e);
            }
            return r.getShardsList();
        }).thenCompose(shards -> {
            List<CompletableFuture<Optional<ShardInfo>>> infos = new ArrayList<>();
            for (Shard s : shards) {
                infos.add(shardInfo(s));
            }
            return CompletableFuture.allOf(infos.toArray(CompletableFuture[]::new)).thenApply(v -> infos.stream()
                    .map(CompletableFuture::join).flatMap(Optional::stream).sorted(Comparator.comparing(ShardInfo::name)).toList());
        }));
    }

    /**
     * What listShards says of a shard the meta-service listed: its config from its route, and its log end. Empty
     * when the shard was deleted after the list was read (its route is gone): the list leaves it out, as a list
     * read after the delete would. The list and the routes are separate meta-service reads, so a list is not a
     * snapshot: a shard created meanwhile is missing, one re-created meanwhile is shown as it is now. The settings
     * are the list's (a cached route may be older than an alter-shard), unless the route names a newer shard.
     */
    private CompletableFuture<Optional<ShardInfo>> shardInfo(Shard listed) {
        String shard = listed.getName();
        return withRoute("listShards", shard, route -> logEndOffset(shard, route).thenApply(end -> {
            Shard s = route.getShard().getShardId() == listed.getShardId() ? listed : route.getShard();
            return Optional.of(new ShardInfo(config(s), s.getCreatedAtMs(), end));
        }))
                .exceptionally(e -> {
                    StorageException se = storageError(e);
                    if (se.code() == ErrorCode.SHARD_NOT_FOUND) {
                        return Optional.empty();
                    }
                    throw se;
                });
    }

    private static ShardConfig config(Shard s) {
        ShardSettings st = s.getSettings();
        return new ShardConfig(s.getName(), st.getReplicaCount(), st.getMinInSyncReplicas(), st.getSegmentBytes(),
                st.getRetentionMs(), STORAGE_TYPE);
    }

    /** The shard's log end: the high watermark of its open segment. */
    private CompletableFuture<Long> logEndOffset(String shard, ShardRoute route) {
        Segment open = openSegment(route);
        return callNode(open.getLeader(), NodeMethods.FETCH, FetchRequest.newBuilder().setSegment(ref(open)).setReplicaId(-1)
                .setOffset(open.getStartOffset()).setMaxRecords(1).setMaxBytes(1).build(), FetchResponse.parser())
                .thenCompose(r -> r.getSealed() // the route is older than the roll that sealed it: the end is further on
                        ? routes.past(shard, open.getSequence()).thenCompose(fresh -> logEndOffset(shard, fresh))
                        : CompletableFuture.completedFuture(r.getHighWatermark()));
    }

    // ---- writes --------------------------------------------------------------------------------------------

    @Override
    protected CompletableFuture<Long> doWrite(String shard, NewRecord record) {
        if (settings.coalescing().maxInFlight() == 0) {
            return super.doWrite(shard, record);
        }
        return coalescers.computeIfAbsent(shard, k -> new WriteCoalescer(settings.coalescing(), records -> doBatchWrite(shard, records)))
                .write(record);
    }

    @Override
    protected CompletableFuture<List<Long>> doBatchWrite(String shard, List<NewRecord> records) {
        replicaConnections.maybeCheck(routes.all());
        // The batch is encoded here, once, in the log's format: the leader checks it, stamps offsets and the
        // producer fields into it and stores these bytes (node.proto, ProduceRequest.batch).
        java.nio.ByteBuffer encoded;
        try {
            encoded = dev.segstore.log.format.RecordBatch.encode(0, 0, -1, -1, records.stream().map(SegmentStorageAdapter::toLog).toList());
        } catch (IllegalArgumentException e) {
            return CompletableFuture.failedFuture(new StorageException(ErrorCode.RECORD_TOO_LARGE, e.getMessage()));
        }
        // Producer id and base sequence are stamped when the batch first goes out (base sequence -1: not yet).
        ProduceRequest.Builder b = ProduceRequest.newBuilder().setBaseSequence(-1)
                .setBatch(com.google.protobuf.UnsafeByteOperations.unsafeWrap(encoded));
        boolean[] mayBeApplied = {false};
        boolean[] onTheWire = {false}; // an attempt was sent and is not answered yet
        long[] mayBeIn = {-1}; // the segment an attempt that may have been applied went to
        long[] mayBeShard = {0}; // and the id of its shard
        Function<StorageException, StorageException> closing = last -> {
            synchronized (b) {
                if (!mayBeApplied[0] && !onTheWire[0]) {
                    return closedBefore("batchWrite on shard '" + shard + "'", last); // no attempt may have been stored
                }
                return new StorageException(ErrorCode.OUTCOME_UNKNOWN, "shard '" + shard + "': the segment engine was closed"
                        + " before a write (producer " + b.getProducerId() + ", sequence " + b.getBaseSequence() + ") was answered:"
                        + " it may or may not have been stored" + (last == null ? "" : " (last error: " + last.getMessage() + ")"), last);
            }
        };
        return withRoute(shard, route -> {
            Segment open = openSegment(route);
            synchronized (b) {
                if (mayBeApplied[0] && mayBeShard[0] != open.getShardId()) {
                    // The shard an earlier attempt may have reached was deleted since (the name is another shard
                    // now): whatever that attempt stored went with it, so the batch is new to this shard.
                    mayBeApplied[0] = false;
                    mayBeIn[0] = -1;
                    b.setBaseSequence(-1).setMayBeDuplicate(false);
                }
            }
            Segment earlier = earlierSegment(shard, route, open, b, mayBeIn);
            if (earlier != null) {
                // That segment was sealed since: ask its leader whether the batch is there before writing it anew.
                // A "not found" is final (a sealed segment takes no writes); the retry loop then sends the batch
                // to the open segment under a new sequence.
                ProduceRequest probe;
                synchronized (b) {
                    probe = b.setSegment(ref(earlier)).setOnlyIfDuplicate(true).build();
                    b.setOnlyIfDuplicate(false);
                }
                return callNode(earlier.getLeader(), NodeMethods.PRODUCE, probe, ProduceResponse.parser()).thenCompose(r -> {
                    LOG.info("Shard {}: a retried batch (producer {}, sequence {}) {} sealed segment {}", shard, probe.getProducerId(),
                            probe.getBaseSequence(), r.getNotFound() ? "is not in" : "was found in", earlier.getSequence());
                    if (!r.getNotFound()) {
                        return CompletableFuture.completedFuture(r);
                    }
                    synchronized (b) {
                        // Not there, and the segment takes no writes: the batch was never applied anywhere.
                        mayBeApplied[0] = false;
                        mayBeIn[0] = -1;
                        b.setBaseSequence(-1).setMayBeDuplicate(false);
                    }
                    return CompletableFuture.failedFuture(new StorageException(ErrorCode.NOT_LEADER,
                            "the batch is not in sealed segment " + earlier.getSequence() + ": writing it to the open segment"));
                });
            }
            ProducerSequence producer = producers.computeIfAbsent(shard, k -> new ProducerSequence(
                    () -> PRODUCER_IDS.nextLong() & Long.MAX_VALUE, firstSequence));
            CompletableFuture<ProduceResponse> sent;
            synchronized (producer) {
                // The id and sequence are taken as the batch goes out, under the shard's lock, so new batches reach
                // the leader in sequence order; retries keep theirs, the id included when the shard has rolled to
                // a new id since (the leader accepts some disorder among recent batches: ProducerStateTable).
                ProduceRequest request;
                synchronized (b) {
                    if (b.getBaseSequence() < 0) {
                        ProducerSequence.Stamp stamp = producer.take(records.size());
                        b.setProducerId(stamp.producerId()).setBaseSequence(stamp.baseSequence());
                    }
                    request = b.setSegment(ref(open)).build();
                    onTheWire[0] = true;
                }
                sent = untilLeaderMoves(shard, open, callNode(open.getLeader(), NodeMethods.PRODUCE, request, ProduceResponse.parser()));
            }
            return sent.whenComplete((r, e) -> {
                        synchronized (b) {
                            onTheWire[0] = false;
                            if (e != null && !mayBeApplied[0] && notApplied(e)) {
                                // Every attempt so far was refused before it was written: the retry goes out as a new
                                // batch with a new sequence, in order with the batches sent meanwhile.
                                b.setBaseSequence(-1);
                            } else if (e != null) {
                                mayBeApplied[0] = true; // from now on only the same sequence is safe
                                mayBeIn[0] = open.getSequence();
                                mayBeShard[0] = open.getShardId();
                                // The leader then looks for it in all its log, not only in the producer state it
                                // read back from the log's tail after a restart (node.proto).
                                b.setMayBeDuplicate(true);
                            }
                        }
                    });
        }, closing).thenApply(r -> {
            List<Long> offsets = new ArrayList<>(records.size());
            for (long o = r.getBaseOffset(); o <= r.getLastOffset(); o++) {
                offsets.add(o);
            }
            return offsets;
        });
    }

    /** How long a write waits at a leader before the client checks whether the leadership moved meanwhile. */
    static final long LEADER_CHECK_MS = 500;

    /**
     * {@code call} to segment {@code seg}'s leader, given up (failed TIMEOUT, an unknown outcome, retried as one) once
     * the meta-service's route says the segment has another leader epoch or is no longer open: a leader that is
     * paused or cut off answers nothing until the call's timeout ({@code callTimeoutMs}, seconds), while the
     * controller may have moved its leadership within about two seconds (followers report a silent leader). Checked
     * every {@link #LEADER_CHECK_MS} while the call waits, so a call answered in time costs no meta read. Giving up
     * early is as safe as a timeout: the retry carries the same producer id and sequence, and the deposed leader can
     * acknowledge nothing (its followers fetch from the new one).
     */
    private <R> CompletableFuture<R> untilLeaderMoves(String shard, Segment seg, CompletableFuture<R> call) {
        CompletableFuture<R> out = new CompletableFuture<>();
        call.whenComplete((r, e) -> {
            if (e != null) {
                out.completeExceptionally(e);
            } else {
                out.complete(r);
            }
        });
        checkLeaderLater(shard, seg, out);
        return out;
    }

    private void checkLeaderLater(String shard, Segment seg, CompletableFuture<?> waiting) {
        retries.schedule(() -> {
            if (waiting.isDone() || isClosed()) {
                return; // answered; or closing, which fails the call itself
            }
            meta.route(shard).whenComplete((route, e) -> {
                if (waiting.isDone()) {
                    return;
                }
                Segment now = e != null ? null : route.getSegmentsList().stream().filter(x -> x.getSequence() == seg.getSequence()).findFirst().orElse(null);
                boolean moved = e == null && (now == null || now.getStatus() != SegmentStatus.OPEN || now.getLeaderEpoch() != seg.getLeaderEpoch());
                if (moved) {
                    waiting.completeExceptionally(new RpcException(ErrorCode.TIMEOUT.code(), "shard '" + shard + "': segment " + seg.getSequence()
                            + " is no longer led by node " + seg.getLeader() + " in epoch " + seg.getLeaderEpoch() + " (now: "
                            + (now == null ? "gone" : now.getStatus() + ", node " + now.getLeader() + " in epoch " + now.getLeaderEpoch())
                            + "); the write sent there is given up, its outcome unknown, and retried"));
                } else {
                    checkLeaderLater(shard, seg, waiting);
                }
            });
        }, LEADER_CHECK_MS);
    }

    /**
     * The sealed segment an earlier attempt of this batch may have been appended to, when that is no longer the
     * open one (a retry to the open segment would append it a second time: producer state is per segment), or
     * null. Fails OUTCOME_UNKNOWN (not retriable) when retention has dropped that segment: whether the batch was
     * stored can no longer be told, and writing it again could store it twice. Fails UNAVAILABLE (retried with
     * a fresh route) when the route is older than that segment.
     */
    private Segment earlierSegment(String shard, ShardRoute route, Segment open, ProduceRequest.Builder b, long[] mayBeIn) {
        long sequence;
        long producerId;
        int baseSequence;
        synchronized (b) {
            sequence = mayBeIn[0];
            producerId = b.getProducerId();
            baseSequence = b.getBaseSequence();
        }
        if (sequence < 0 || sequence == open.getSequence()) {
            return null;
        }
        if (sequence > open.getSequence()) {
            throw new StorageException(ErrorCode.UNAVAILABLE, "shard '" + shard + "': the route ends at segment " + open.getSequence()
                    + ", older than segment " + sequence + " which an earlier attempt of the write went to");
        }
        return route.getSegmentsList().stream().filter(s -> s.getSequence() == sequence).findFirst().orElseThrow(() ->
                new StorageException(ErrorCode.OUTCOME_UNKNOWN, "shard '" + shard + "': the outcome of the write is unknown: an earlier"
                        + " attempt (producer " + producerId + ", sequence " + baseSequence + ") may have been stored in segment "
                        + sequence + ", which retention has dropped since; it is not written again, as it could be stored twice"));
    }

    // ---- reads ---------------------------------------------------------------------------------------------

    @Override
    protected CompletableFuture<List<StoredRecord>> doReadByOffset(String shard, long offset, int limit) {
        // Below the oldest segment retention left, records are gone: the read starts at the oldest one kept.
        return withRoute("readByOffset", shard,
                route -> readFrom(route, Math.max(offset, route.getSegments(0).getStartOffset()), limit, new ArrayList<>()));
    }

    /** Reads segment after segment from {@code offset} until {@code limit} records or the end. */
    private CompletableFuture<List<StoredRecord>> readFrom(ShardRoute route, long offset, int limit, List<StoredRecord> out) {
        Segment seg = segmentFor(route, offset);
        if (seg == null || out.size() >= limit) {
            return CompletableFuture.completedFuture(out);
        }
        boolean sealed = seg.getStatus() == SegmentStatus.SEALED;
        FetchRequest req = FetchRequest.newBuilder().setSegment(ref(seg)).setReplicaId(-1).setOffset(offset)
                .setMaxRecords(limit - out.size()).setMaxBytes(READ_MAX_BYTES).build();
        CompletableFuture<ConsumerFetch> fetched;
        if (sealed) {
            // A replica that has not caught up with the seal yet stops short, or refuses an offset above its
            // high watermark: another member that has it all answers (see fromSealed).
            fetched = fromSealed(seg, "offset " + offset, node -> fetchFrom(node, req),
                    r -> r.nextOffset() > offset || r.highWatermark() >= seg.getEndOffset());
        } else {
            fetched = fetchFrom(seg.getLeader(), req);
            // Past the high watermark of the open segment: the end of the shard, an empty read.
            fetched = fetched.exceptionally(e -> {
                if (storageError(e).code() == ErrorCode.OFFSET_OUT_OF_RANGE) {
                    return new ConsumerFetch(List.of(), offset, offset, -1);
                }
                throw storageError(e);
            });
        }
        return fetched.thenCompose(r -> {
            r.records().forEach(rec -> out.add(fromLog(rec)));
            long next = r.nextOffset();
            if (out.size() >= limit) {
                return CompletableFuture.completedFuture(out);
            }
            if (!sealed && r.sealedEnd() >= 0 && next >= r.sealedEnd()) {
                // The end of what the route calls the open segment, but the node says it was sealed there: the
                // route is older than the roll, and the records go on in a later segment. Not the end of the shard.
                return routes.past(route.getShard().getName(), seg.getSequence()).thenCompose(fresh -> readFrom(fresh, next, limit, out));
            }
            if (next == offset) {
                return CompletableFuture.completedFuture(out); // nothing further here: the end
            }
            return readFrom(route, next, limit, out); // past deleted records, or on into the next segment
        });
    }

    @Override
    protected CompletableFuture<List<StoredRecord>> doReadByTag(String shard, String tag, long offset, int limit) {
        return withRoute("readByTag", shard, route -> tagRead(shard, route, -1, tag, offset, limit, new ArrayList<>()));
    }

    /** Segment after segment (those after sequence {@code after} that may hold {@code offset} or later). */
    private CompletableFuture<List<StoredRecord>> tagRead(String shard, ShardRoute route, long after, String tag, long offset, int limit,
                                                    List<StoredRecord> out) {
        Segment seg = route.getSegmentsList().stream().filter(s -> s.getSequence() > after)
                .filter(s -> s.getStatus() != SegmentStatus.SEALED || s.getEndOffset() > offset).findFirst().orElse(null);
        if (seg == null || out.size() >= limit) {
            return CompletableFuture.completedFuture(out);
        }
        int want = limit - out.size();
        IndexReadRequest req = IndexReadRequest.newBuilder().setSegment(ref(seg)).setTerm(tag).setFromOffset(offset).setLimit(want).build();
        return indexRead(seg, NodeMethods.READ_BY_TAG, req, want).thenCompose(r -> {
            r.getRecordsList().forEach(w -> out.add(fromWire(w)));
            if (r.getSealed() && seg.getStatus() != SegmentStatus.SEALED && out.size() < limit) {
                // The route calls it open, the node says sealed: later segments exist that the route does not list.
                return routes.past(shard, seg.getSequence()).thenCompose(fresh -> tagRead(shard, fresh, seg.getSequence(), tag, offset, limit, out));
            }
            return tagRead(shard, route, seg.getSequence(), tag, offset, limit, out);
        });
    }

    /**
     * An index read of one segment: a sealed one from a random ISR member, the open one from its leader. A member
     * whose high watermark is below the sealed end (it has not caught up with the seal yet) answers only for what
     * it holds: when that answer has fewer than {@code want} records, or the member fails, another member is asked
     * ({@link #fromSealed}), so a read never goes on into the next segment past records the member lacks.
     */
    private CompletableFuture<FetchResponse> indexRead(Segment seg, String method, IndexReadRequest req, int want) {
        if (seg.getStatus() != SegmentStatus.SEALED) {
            return callNode(seg.getLeader(), method, req, FetchResponse.parser());
        }
        return fromSealed(seg, "'" + req.getTerm() + "' from offset " + req.getFromOffset(),
                node -> callNode(node, method, req, FetchResponse.parser()),
                r -> r.getRecordsCount() >= want || r.getHighWatermark() >= seg.getEndOffset());
    }

    /**
     * Asks the members of a sealed segment in turn until one answers in full ({@code complete}): a random ISR
     * member first (reads spread over the ISR), then the route's leader, then the other ISR members. A member that
     * has not caught up with the seal yet (its high watermark below the sealed end: a follower still fetching, or a
     * replica that restarted or came back after losing the lead) answers only for what it holds, or refuses an
     * offset above its watermark; taken as the answer, that would end a read short or skip records into the next
     * segment. The route's leader may be such a replica (the route is older than a leader change), so it is not
     * taken on trust either. When no member answers in full the read fails UNAVAILABLE and is retried with a
     * fresh route. Any error other than "behind" or a retriable one is final.
     */
    private <R> CompletableFuture<R> fromSealed(Segment seg, String what, IntFunction<CompletableFuture<R>> ask, Predicate<R> complete) {
        List<Integer> order = new ArrayList<>();
        order.add(anyInSync(seg));
        if (seg.getLeader() >= 0 && !order.contains(seg.getLeader())) {
            order.add(seg.getLeader());
        }
        seg.getIsrList().stream().filter(n -> !order.contains(n)).forEach(order::add);
        return askInTurn(seg, what, order, 0, ask, complete, null);
    }

    private <R> CompletableFuture<R> askInTurn(Segment seg, String what, List<Integer> order, int i, IntFunction<CompletableFuture<R>> ask,
                                               Predicate<R> complete, StorageException last) {
        if (i == order.size()) {
            return CompletableFuture.failedFuture(new StorageException(ErrorCode.UNAVAILABLE, "shard '" + seg.getShard() + "': no member "
                    + order + " of sealed segment " + seg.getSequence() + " could answer for " + what + " up to its end "
                    + seg.getEndOffset() + " yet" + (last == null ? "" : " (last error: " + last.getMessage() + ")") + "; retry"));
        }
        return ask.apply(order.get(i)).handle((r, e) -> {
            if (e == null && complete.test(r)) {
                return CompletableFuture.completedFuture(r);
            }
            StorageException se = e == null ? last : storageError(e);
            if (e != null && !se.retriable() && se.code() != ErrorCode.OFFSET_OUT_OF_RANGE) {
                return CompletableFuture.<R>failedFuture(se);
            }
            return askInTurn(seg, what, order, i + 1, ask, complete, se);
        }).thenCompose(x -> x);
    }

    @Override
    protected CompletableFuture<Optional<StoredRecord>> doReadByKey(String shard, String key) {
        return withRoute("readByKey", shard, route -> keyRead(shard, route, route.getSegmentsCount() - 1, key));
    }

    /**
     * Newest segment first: the first that has a live record with the key holds the newest one. A sealed segment
     * is asked as for other reads ({@link #fromSealed}): "no such key" counts only from a member holding all of it.
     * If the segment the
     * route calls open says it is sealed, later segments exist that may hold newer records: the read starts again
     * from the newest segment of a fresh route.
     */
    private CompletableFuture<Optional<StoredRecord>> keyRead(String shard, ShardRoute route, int i, String key) {
        if (i < 0) {
            return CompletableFuture.completedFuture(Optional.empty());
        }
        Segment seg = route.getSegments(i);
        IndexReadRequest req = IndexReadRequest.newBuilder().setSegment(ref(seg)).setTerm(key).setNewestOnly(true).setLimit(1).build();
        CompletableFuture<FetchResponse> f = seg.getStatus() != SegmentStatus.SEALED
                ? callNode(seg.getLeader(), NodeMethods.READ_BY_KEY, req, FetchResponse.parser())
                : fromSealed(seg, "key '" + key + "'", node -> callNode(node, NodeMethods.READ_BY_KEY, req, FetchResponse.parser()),
                        r -> r.getRecordsCount() > 0 || r.getHighWatermark() >= seg.getEndOffset());
        return f.thenCompose(r -> {
            if (r.getSealed() && seg.getStatus() != SegmentStatus.SEALED) {
                return routes.past(shard, seg.getSequence()).thenCompose(fresh -> keyRead(shard, fresh, fresh.getSegmentsCount() - 1, key));
            }
            return r.getRecordsCount() > 0
                    ? CompletableFuture.completedFuture(Optional.of(fromWire(r.getRecords(r.getRecordsCount() - 1))))
                    : keyRead(shard, route, i - 1, key);
        });
    }

    @Override
    protected CompletableFuture<OptionalLong> doGetOffsetByTimestamp(String shard, long timestamp) {
        return withRoute("getOffsetByTimestamp", shard, route -> timestampRead(shard, route, -1, timestamp));
    }

    /**
     * Oldest segment first (after sequence {@code after}): the first that has a record at or after the time holds
     * the answer. A sealed segment is asked of a random ISR member, and of other members when that one found
     * nothing below a high watermark short of the sealed end (or failed): see {@link #fromSealed}. When the segment
     * the route calls open says it is sealed, the look-up goes on in the segments of a fresh route.
     */
    private CompletableFuture<OptionalLong> timestampRead(String shard, ShardRoute route, long after, long timestamp) {
        Segment seg = route.getSegmentsList().stream().filter(s -> s.getSequence() > after).findFirst().orElse(null);
        if (seg == null) {
            return CompletableFuture.completedFuture(OptionalLong.empty());
        }
        TimestampRequest req = TimestampRequest.newBuilder().setSegment(ref(seg)).setTimestamp(timestamp).build();
        CompletableFuture<TimestampResponse> f = seg.getStatus() != SegmentStatus.SEALED
                ? callNode(seg.getLeader(), NodeMethods.OFFSET_FOR_TIMESTAMP, req, TimestampResponse.parser())
                : fromSealed(seg, "timestamp " + timestamp, node -> callNode(node, NodeMethods.OFFSET_FOR_TIMESTAMP, req, TimestampResponse.parser()),
                        r -> r.getFound() || r.getHighWatermark() >= seg.getEndOffset());
        return f.thenCompose(r -> {
            if (r.getFound()) {
                return CompletableFuture.completedFuture(OptionalLong.of(r.getOffset()));
            }
            if (r.getSealed() && seg.getStatus() != SegmentStatus.SEALED) {
                return routes.past(shard, seg.getSequence()).thenCompose(fresh -> timestampRead(shard, fresh, seg.getSequence(), timestamp));
            }
            return timestampRead(shard, route, seg.getSequence(), timestamp);
        });
    }

    // ---- deletes -------------------------------------------------------------------------------------------

    @Override
    protected CompletableFuture<Boolean> doDeleteByOffset(String shard, long offset) {
        // An attempt that failed after it may have reached the leader may have deleted the record: a later attempt
        // then finds it deleted and cannot tell by whom, so "false" (already deleted) would not be known.
        java.util.concurrent.atomic.AtomicBoolean mayHaveDeleted = new java.util.concurrent.atomic.AtomicBoolean();
        return withRoute("deleteByOffset", shard, route -> deleteAt(shard, route, offset).whenComplete((r, e) -> {
            if (e != null && !notApplied(e)) {
                mayHaveDeleted.set(true);
            }
        })).handle((r, e) -> {
            if (e != null) {
                StorageException se = storageError(e);
                if (se.code() == ErrorCode.OFFSET_OUT_OF_RANGE) {
                    throw new StorageException(ErrorCode.OFFSET_OUT_OF_RANGE, "shard '" + shard + "' holds no record at offset "
                            + offset + " (" + se.getMessage() + ")");
                }
                throw se;
            }
            if (r.getDeleted() == 0 && mayHaveDeleted.get()) {
                throw new StorageException(ErrorCode.OUTCOME_UNKNOWN, "shard '" + shard + "': the record at offset " + offset
                        + " is deleted, but whether by this call is unknown: an earlier attempt, whose answer was lost, may have deleted it");
            }
            return r.getDeleted() > 0;
        });
    }

    private CompletableFuture<DeleteResponse> deleteAt(String shard, ShardRoute route, long offset) {
        if (offset < route.getSegments(0).getStartOffset()) {
            // dropped by retention with its segment: nothing live there to delete
            return CompletableFuture.completedFuture(DeleteResponse.newBuilder().setDeleted(0).build());
        }
        Segment found = segmentFor(route, offset);
        Segment seg = found != null ? found : openSegment(route); // at or past the end: the open segment's leader says so
        DeleteRequest req = DeleteRequest.newBuilder().setSegment(ref(seg)).addOffsets(offset).build();
        return callNode(seg.getLeader(), NodeMethods.DELETE, req, DeleteResponse.parser()).thenCompose(r -> {
            if (r.getSealed() && r.getDeleted() == 0 && offset >= r.getSealedEnd() && seg.getStatus() != SegmentStatus.SEALED) {
                // The route calls the segment open, but it was sealed below the offset: the offset is in a later one.
                return routes.past(shard, seg.getSequence()).thenCompose(fresh -> deleteAt(shard, fresh, offset));
            }
            return CompletableFuture.completedFuture(r);
        });
    }

    @Override
    protected CompletableFuture<Long> doDeleteByKey(String shard, String key) {
        // One delete per segment. A segment that answered is not asked again when another one failed and the
        // attempt is retried (its answer would then be 0, its records being deleted already): answers are kept
        // by segment sequence across attempts.
        // A segment whose attempt failed after it may have reached the leader may have deleted records then: its
        // later answer does not count those, so the total would not be known.
        Map<Long, Long> deleted = new ConcurrentHashMap<>();
        java.util.Set<Long> uncertain = ConcurrentHashMap.newKeySet();
        return withRoute("deleteByKey", shard, route -> deleteKeyIn(shard, route, key, deleted, uncertain)).thenApply(v -> {
            if (!uncertain.isEmpty()) {
                throw new StorageException(ErrorCode.OUTCOME_UNKNOWN, "shard '" + shard + "': key '" + key + "' is deleted, but how"
                        + " many records this call deleted is unknown: an earlier attempt in segment(s) " + uncertain
                        + ", whose answer was lost, may have deleted some");
            }
            return deleted.values().stream().mapToLong(Long::longValue).sum();
        });
    }

    /**
     * Deletes the key in every segment of {@code route} not answered yet; when the segment the route calls open
     * says it is sealed, goes on with the later segments of a fresh route.
     */
    private CompletableFuture<Void> deleteKeyIn(String shard, ShardRoute route, String key, Map<Long, Long> deleted, java.util.Set<Long> uncertain) {
        Segment open = openSegment(route);
        java.util.concurrent.atomic.AtomicBoolean stale = new java.util.concurrent.atomic.AtomicBoolean();
        List<CompletableFuture<Void>> parts = new ArrayList<>();
        for (Segment seg : route.getSegmentsList()) {
            if (deleted.containsKey(seg.getSequence())) {
                continue;
            }
            parts.add(callNode(seg.getLeader(), NodeMethods.DELETE, DeleteRequest.newBuilder().setSegment(ref(seg))
                    .setByKey(true).setKey(key).build(), DeleteResponse.parser()).whenComplete((r, e) -> {
                        if (e != null && !notApplied(e)) {
                            uncertain.add(seg.getSequence());
                        }
                    }).thenAccept(r -> {
                        deleted.put(seg.getSequence(), r.getDeleted());
                        if (r.getSealed() && seg.getStatus() != SegmentStatus.SEALED) {
                            stale.set(true);
                        }
                    }));
        }
        return CompletableFuture.allOf(parts.toArray(CompletableFuture[]::new)).thenCompose(v -> stale.get()
                ? routes.past(shard, open.getSequence()).thenCompose(fresh -> deleteKeyIn(shard, fresh, key, deleted, uncertain))
                : CompletableFuture.completedFuture(null));
    }

    // ---- consumer groups -----------------------------------------------------------------------------------

    @Override
    protected CompletableFuture<OptionalLong> doGetOffsetByGroup(String group, String shard) {
        return tracked("getOffsetByGroup('" + group + "', '" + shard + "')", meta.offset(group, shard).handle((r, e) -> {
            if (e != null) {
                throw storageError(e);
            }
            return r.getFound() ? OptionalLong.of(r.getOffset()) : OptionalLong.empty();
        }));
    }

    @Override
    protected CompletableFuture<Void> doCommitOffset(String group, String shard, long offset) {
        // With the id of the shard this adapter's route names, when it has one: an offset read from a shard that
        // was deleted since must not land in a new shard of the same name (the meta-service refuses it then).
        // The id is the one of the last route read for this name, kept after the route is dropped: a retry of a
        // refused commit is refused again, until a read or write of this adapter has read the new shard's route.
        CompletableFuture<ShardRoute> cached = routes.cached(shard);
        long shardId = routes.knownShardId(shard);
        return tracked("commitOffset('" + group + "', '" + shard + "')", meta.commitOffsets(List.of(GroupOffset.newBuilder()
                .setGroup(group).setShard(shard).setShardId(shardId).setOffset(offset).build())).handle((r, e) -> {
                    if (e != null) {
                        StorageException se = storageError(e);
                        if (se.code() == ErrorCode.SHARD_NOT_FOUND && cached != null) {
                            routes.drop(shard, cached); // the next operation reads the current shard's route
                        }
                        throw se;
                    }
                    return null;
                }));
    }

    /**
     * Waits for the operations in flight, a bounded time, then completes every one still pending (the contract:
     * close waits for operations in flight, and no future is left incomplete):
     * <ol>
     *   <li>retries waiting for their pause run now and, seeing the adapter closed, send nothing: their
     *       operations fail with their closing error ({@link #closedBefore}; OUTCOME_UNKNOWN for a write that
     *       may have been stored). An attempt that fails from now on is not retried either;</li>
     *   <li>attempts on the wire get one call timeout ({@code call.timeout.ms}) to be answered: their real
     *       outcome;</li>
     *   <li>then the connections and the meta-service client close, failing what is still out, and whatever
     *       is left completes with its closing error.</li>
     * </ol>
     */
    @Override
    protected void doClose() {
        retries.close();
        operations.awaitAll(settings.callTimeoutMs());
        nodes.close();
        meta.close();
        operations.completeAll();
    }

    /** Tracks an operation until it completes; pending when the adapter closes, it fails CLOSED. */
    private <T> CompletableFuture<T> tracked(String what, CompletableFuture<T> operation) {
        return operations.track(operation, () -> closedBefore(what, null));
    }

    /** The error of an operation that the adapter's close ended ({@code last}: its last failure, or null). */
    private static StorageException closedBefore(String what, StorageException last) {
        return new StorageException(ErrorCode.CLOSED, "the segment engine was closed before " + what + " completed"
                + (last == null ? "" : " (last error: " + last.getMessage() + ")"), last);
    }

    // ---- retries (routes: RouteCache) ------------------------------------------------------------------------

    /** As below, for operation {@code what} (named in its error if the adapter closes first: CLOSED). */
    private <T> CompletableFuture<T> withRoute(String what, String shard, Function<ShardRoute, CompletableFuture<T>> attempt) {
        return withRoute(shard, attempt, last -> closedBefore(what + " on shard '" + shard + "'", last));
    }

    /**
     * Runs {@code attempt} against the shard's route, retrying retriable failures with a fresh route until the
     * request deadline. Every attempt of a write sends the same producer id and sequence. Once the adapter is
     * closed nothing is retried: the operation fails with {@code closing} (given its last error, or null), as it
     * does if it is still pending when the close grace ends.
     */
    private <T> CompletableFuture<T> withRoute(String shard, Function<ShardRoute, CompletableFuture<T>> attempt,
                                               Function<StorageException, StorageException> closing) {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(settings.requestTimeoutMs());
        CompletableFuture<T> result = operations.track(new CompletableFuture<>(), () -> closing.apply(null));
        attempt(shard, attempt, closing, deadline, 0, 0, false, result);
        return result;
    }

    /**
     * How many refusals that come from a segment roll (rpc.proto, {@code Error.rolling}) or a moving leadership
     * ({@link #leadershipMoving}) an operation retries
     * after {@link #ROLLING_RETRY_PAUSE_MS} rather than after the growing pause; after that many (a roll takes
     * tens of ms, so something else is wrong) they count as other retriable failures.
     */
    static final int MAX_ROLLING_RETRIES = 40;
    /** The pause before retrying a refusal that comes from a segment roll (plus up to as much again of jitter). */
    static final long ROLLING_RETRY_PAUSE_MS = 5;
    /** How long an operation refused by a roll waits for the shard's probe at most ({@link RollingRetryGate}). */
    static final long ROLLING_RETRY_MAX_HOLD_MS = 100;

    /** Per shard name, the pacing of retries refused by a roll: one probe, the others wait for it. */
    private final Map<String, RollingRetryGate> rollingRetries = new ConcurrentHashMap<>();

    private RollingRetryGate rollingRetries(String shard) {
        return rollingRetries.computeIfAbsent(shard, s -> new RollingRetryGate(retries, ROLLING_RETRY_MAX_HOLD_MS));
    }

    /**
     * The pause before the next attempt: none for a shard found deleted on the first try (read the route again);
     * a short one for a refusal from a segment roll (the next segment takes writes within milliseconds: a growing
     * pause would stall writes after it, by up to 80-160 ms at each roll); else growing with {@code tries}, the
     * retries so far that were not for a roll (20, 40, 80, ... ms, at most 500), plus up to 10 ms of jitter.
     */
    static long retryPauseMs(boolean shardGone, boolean rolling, int tries, int rollingTries) {
        if (shardGone && tries + rollingTries == 0) {
            return 0;
        }
        if (rolling && rollingTries < MAX_ROLLING_RETRIES) {
            return ROLLING_RETRY_PAUSE_MS + ThreadLocalRandom.current().nextLong(ROLLING_RETRY_PAUSE_MS + 1);
        }
        return Math.min(500, 20L << Math.min(tries, 5)) + ThreadLocalRandom.current().nextLong(10);
    }

    private <T> void attempt(String shard, Function<ShardRoute, CompletableFuture<T>> attempt,
                             Function<StorageException, StorageException> closing, long deadline, int tries, int rollingTries,
                             boolean probe, CompletableFuture<T> result) {
        if (isClosed()) {
            result.completeExceptionally(closing.apply(null)); // a retry the close ran early: nothing is sent
            return;
        }
        CompletableFuture<T> f;
        boolean[] routed = {false};
        try {
            f = routes.getOrRead(shard).thenCompose(r -> {
                routed[0] = true;
                return attempt.apply(r);
            });
        } catch (RuntimeException e) {
            f = CompletableFuture.failedFuture(e);
        }
        f.whenComplete((v, e) -> {
            boolean stillProbing = false;
            try {
                stillProbing = retryOrComplete(shard, attempt, closing, deadline, tries, rollingTries, probe, result, v, e, routed[0]);
            } finally {
                if (probe && !stillProbing) {
                    rollingRetries(shard).probeDone(); // the shard serves again, or the probe ended: the others go
                }
            }
        });
    }

    /**
     * How an attempt came back: completes {@code result}, or schedules a retry. Returns whether the retry goes through
     * the shard's {@link RollingRetryGate} (then an operation that was the probe stays the probe).
     */
    private <T> boolean retryOrComplete(String shard, Function<ShardRoute, CompletableFuture<T>> attempt,
                                        Function<StorageException, StorageException> closing, long deadline, int tries,
                                        int rollingTries, boolean probe, CompletableFuture<T> result, T v, Throwable e,
                                        boolean routed) {
        if (e == null) {
            result.complete(v);
            return false;
        }
        StorageException se = storageError(e);
        // SHARD_NOT_FOUND after the route was read came from a storage node (or a fresher route): the shard the
        // route names was deleted. Final only if the meta-service says the name is gone too; if the name is a
        // new shard now, the operation goes on there (it was made after the delete).
        boolean shardGone = se.code() == ErrorCode.SHARD_NOT_FOUND && routed;
        if (isClosed() && (se.retriable() || shardGone || se.code() == ErrorCode.CLOSED)) {
            result.completeExceptionally(closing.apply(se)); // it would be retried, but the adapter is closed
            return false;
        }
        if (!se.retriable() && !shardGone) {
            result.completeExceptionally(se);
            return false;
        }
        if (unwrap(e) instanceof RpcException re && re.rolling() && re.nextSegment() != null && routes.adoptNext(shard, re.nextSegment())
                && rollingTries < MAX_ROLLING_RETRIES && System.nanoTime() < deadline) {
            // The leader that rolled named the next segment, from the controller's committed answer: write there now.
            LOG.debug("Shard {}: segment {} rolled; retrying in segment {} at once ({})", shard, re.nextSegment().getSequence() - 1,
                    re.nextSegment().getSequence(), se.getMessage());
            retries.schedule(() -> attempt(shard, attempt, closing, deadline, tries, rollingTries + 1, false, result), 0);
            return false;
        }
        routes.drop(shard); // the route may be stale: ask the meta-service again
        if (se.code() == ErrorCode.UNAVAILABLE || se.code() == ErrorCode.TIMEOUT) {
            nodeAddresses.clear(); // a node may have come back on another address: ask again too
        }
        boolean rolling = unwrap(e) instanceof RpcException re && (re.rolling() || leadershipMoving(re)) && rollingTries < MAX_ROLLING_RETRIES;
        long pauseMs = retryPauseMs(shardGone, rolling, tries, rollingTries);
        if (System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(pauseMs) > deadline) {
            result.completeExceptionally(se);
            return false;
        }
        LOG.debug("{} on shard {}: retrying in {} ms ({})", se.code(), shard, pauseMs, se.getMessage());
        int nextTries = rolling ? tries : tries + 1;
        int nextRollingTries = rolling ? rollingTries + 1 : rollingTries;
        if (rolling && unwrap(e) instanceof RpcException re && re.rolling()) {
            // A refusal from a roll (not a moving leadership, which any segment's reads and deletes may meet too):
            // paced through the shard's probe.
            rollingRetries(shard).retry(probe, asProbe -> () -> attempt(shard, attempt, closing, deadline, nextTries, nextRollingTries,
                    asProbe, result), pauseMs, deadline);
            return true;
        }
        retries.schedule(() -> attempt(shard, attempt, closing, deadline, nextTries, nextRollingTries, false, result), pauseMs);
        return false;
    }

    /** Whether a connection to the storage node at {@code address} is open now (tests). */
    boolean connectedTo(String address) {
        return nodes.connected(address);
    }

    /**
     * A NOT_LEADER from a node that names the segment's leader epoch it knows: the leadership is moving (a controlled
     * shutdown or a move hands it over within milliseconds). Either the node was deposed and the cached route is stale
     * (the route is read again), or the route names this node in an epoch it has not learnt yet. Retried as soon as a
     * refusal from a roll is, within the same budget: with the growing pause (20, 40, 80, ... ms) the few refusals of
     * a hand-over cost writes 300-600 ms (a rolling restart's storage-node restarts paused writes 545 ms).
     */
    private static boolean leadershipMoving(RpcException re) {
        return re.code() == ErrorCode.NOT_LEADER.code() && re.leaderEpoch() >= 0;
    }

    private static boolean notApplied(Throwable t) {
        return unwrap(t) instanceof RpcException re && re.notApplied();
    }

    private static Throwable unwrap(Throwable t) {
        Throwable e = t;
        while ((e instanceof CompletionException || e instanceof java.util.concurrent.ExecutionException) && e.getCause() != null) {
            e = e.getCause();
        }
        return e;
    }

    private static Segment openSegment(ShardRoute route) {
        if (route.getSegmentsCount() == 0) {
            throw new StorageException(ErrorCode.UNAVAILABLE, "shard '" + route.getShard().getName() + "' has no segment yet");
        }
        return route.getSegments(route.getSegmentsCount() - 1);
    }

    /** The segment holding {@code offset}, or null when the offset is at or past the open segment's start... end. */
    private static Segment segmentFor(ShardRoute route, long offset) {
        for (Segment s : route.getSegmentsList()) {
            boolean sealed = s.getStatus() == SegmentStatus.SEALED;
            if (offset >= s.getStartOffset() && (!sealed || offset < s.getEndOffset())) {
                return s;
            }
        }
        return null;
    }

    private static int anyInSync(Segment s) {
        if (s.getIsrCount() == 0) {
            return s.getLeader();
        }
        return s.getIsr(ThreadLocalRandom.current().nextInt(s.getIsrCount()));
    }

    /**
     * The segment as requests name it. Requests about a segment the route calls open go to its leader, and name the
     * route's leader epoch: a replica that is not that leader refuses to answer reads from its own, lagging, high
     * watermark (node.proto, {@code route_epoch}). Reads of a sealed segment go to any ISR member and name none.
     */
    private static SegmentRef ref(Segment s) {
        SegmentRef.Builder b = SegmentRef.newBuilder().setShardId(s.getShardId()).setSequence(s.getSequence());
        return s.getStatus() == SegmentStatus.SEALED ? b.build() : b.setRouteEpoch(s.getLeaderEpoch()).build();
    }

    /** A consumer fetch: batches sent without copying, checked and decoded here. */
    private CompletableFuture<ConsumerFetch> fetchFrom(int nodeId, FetchRequest request) {
        if (nodeId < 0) {
            return CompletableFuture.failedFuture(new StorageException(ErrorCode.UNAVAILABLE, "the segment has no leader now"));
        }
        return address(nodeId).thenCompose(address -> ConsumerFetch.call(nodes, address, request, settings.callTimeoutMs()));
    }

    private <R extends Message> CompletableFuture<R> callNode(int nodeId, String method, Message request, Parser<R> parser) {
        if (nodeId < 0) {
            return CompletableFuture.failedFuture(new StorageException(ErrorCode.UNAVAILABLE, "the segment has no leader now"));
        }
        return address(nodeId).thenCompose(address -> nodes.call(address, method, request, parser, settings.callTimeoutMs()));
    }

    private CompletableFuture<String> address(int nodeId) {
        String known = nodeAddresses.get(nodeId);
        if (known != null) {
            return CompletableFuture.completedFuture(known);
        }
        return meta.describeCluster().thenApply(d -> {
            d.getNodesList().forEach(n -> nodeAddresses.put(n.getNodeId(), n.getHost() + ":" + n.getPort()));
            String a = nodeAddresses.get(nodeId);
            if (a == null) {
                throw new StorageException(ErrorCode.UNAVAILABLE, "storage node " + nodeId + " is not known to the meta-service");
            }
            return a;
        });
    }

    /** Any failure as the adapter's error: wire codes keep their meaning. */
    static StorageException storageError(Throwable t) {
        Throwable e = unwrap(t);
        if (e instanceof StorageException se) {
            return se;
        }
        if (e instanceof RpcException re) {
            ErrorCode code = ErrorCode.fromCode(re.code());
            return new StorageException(code == null ? ErrorCode.INTERNAL : code, re.getMessage());
        }
        return new StorageException(ErrorCode.INTERNAL, "segment engine failed: " + e, e);
    }

    // ---- record conversion ---------------------------------------------------------------------------------

    private static dev.segstore.log.AppendRecord toLog(NewRecord r) {
        return new dev.segstore.log.AppendRecord(r.key(), List.copyOf(r.tags()), r.timestamp(),
                r.headers().stream().map(h -> new dev.segstore.log.LogHeader(h.name(), h.value())).toList(), r.payload());
    }

    private static StoredRecord fromLog(dev.segstore.log.LogRecord r) {
        return new StoredRecord(r.offset(), r.key(), java.util.Set.copyOf(r.tags()), r.timestamp(),
                r.headers().stream().map(h -> new Header(h.name(), h.value())).toList(), r.payload());
    }

    private static StoredRecord fromWire(dev.segstore.protocol.node.Record w) {
        return new StoredRecord(w.getOffset(), w.getHasKey() ? w.getKey() : null, java.util.Set.copyOf(w.getTagsList()), w.getTimestamp(),
                w.getHeadersList().stream().map(h -> new Header(h.getName(), h.getValue())).toList(), w.getPayload().toByteArray());
    }
}
