package dev.segstore.adapter.testkit;

import dev.segstore.adapter.ErrorCode;
import dev.segstore.adapter.NewRecord;
import dev.segstore.adapter.ShardConfig;
import dev.segstore.adapter.ShardFilter;
import dev.segstore.adapter.ShardInfo;
import dev.segstore.adapter.StorageAdapter;
import dev.segstore.adapter.StorageException;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.lifecycle.AfterProperty;
import net.jqwik.api.lifecycle.BeforeProperty;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Model-based property test of an engine: random sequences of operations run against the engine and
 * against {@link ReferenceModel}; every answer (value or error code) must be the same. jqwik prints the
 * seed of every run and shrinks a failing sequence to a small one; replay with
 * {@code @Property(seed = "...")} or {@code -Djqwik.seeds.whenfixed=...}.
 *
 * <p>Subclass per engine and implement {@link #openAdapter()}. Engines that persist override
 * {@link #supportsReopen()} and {@link #reopenAdapter()}, and then sequences also close and reopen the
 * engine at random points.
 */
public abstract class StorageAdapterModelProperties {
    private static final AtomicInteger RUNS = new AtomicInteger();
    private static final List<String> SHARDS = List.of("s0", "s1", "s2");

    private StorageAdapter adapter;

    protected abstract StorageAdapter openAdapter() throws Exception;

    protected boolean supportsReopen() {
        return false;
    }

    /** A new adapter over the storage of the one last opened (already closed by the caller). */
    protected StorageAdapter reopenAdapter() throws Exception {
        throw new UnsupportedOperationException("engine does not persist");
    }

    @BeforeProperty
    void openEngine() throws Exception {
        adapter = openAdapter();
    }

    @AfterProperty
    void closeEngine() {
        adapter.close();
    }

    @Property(tries = 300)
    void engineAnswersLikeTheModel(@ForAll("operations") List<Op> ops) throws Exception {
        // Each run uses its own shard names, so runs on one engine never see each other's data.
        String run = "r" + RUNS.incrementAndGet() + ".";
        ReferenceModel model = new ReferenceModel();
        List<String> trace = new ArrayList<>();
        try {
            for (Op op : ops) {
                trace.add(op.toString());
                if (op instanceof Reopen) {
                    adapter.close();
                    adapter = reopenAdapter();
                    continue;
                }
                Outcome expected = Outcome.of(() -> onModel(op, model, run));
                Outcome actual = Outcome.of(() -> onAdapter(op, adapter, run));
                assertEquals(expected, actual, () -> "after " + String.join(", ", trace));
            }
        } finally {
            for (ShardInfo s : Futures.await(adapter.listShards(ShardFilter.prefix(run)))) {
                Futures.await(adapter.deleteShard(s.name()));
            }
        }
    }

    @Provide
    Arbitrary<List<Op>> operations() {
        Arbitrary<String> shard = Arbitraries.of(SHARDS);
        Arbitrary<String> key = Arbitraries.of("k0", "k1", "k2");
        Arbitrary<String> tag = Arbitraries.of("a", "b", "c");
        Arbitrary<String> group = Arbitraries.of("g0", "g1");
        Arbitrary<Long> offset = Arbitraries.longs().between(0, 20);
        Arbitrary<Integer> limit = Arbitraries.integers().between(1, 6);
        Arbitrary<Long> timestamp = Arbitraries.longs().between(0, 40);
        Arbitrary<NewRecord> record = Combinators.combine(key.injectNull(0.3), tag.set().ofMaxSize(2), timestamp,
                        Arbitraries.bytes().array(byte[].class).ofMaxSize(6))
                .as((k, tags, ts, payload) -> new NewRecord(k, tags, ts, List.of(), payload));

        List<Arbitrary<? extends Op>> kinds = new ArrayList<>(List.of(
                shard.map(Create::new),
                shard.map(Create::new),
                shard.map(DeleteShard::new),
                Combinators.combine(shard, record).as(Write::new),
                Combinators.combine(shard, record).as(Write::new),
                Combinators.combine(shard, record.list().ofMinSize(1).ofMaxSize(4)).as(BatchWrite::new),
                Combinators.combine(shard, offset, limit).as(ReadByOffset::new),
                Combinators.combine(shard, tag, offset, limit).as(ReadByTag::new),
                Combinators.combine(shard, key).as(ReadByKey::new),
                Combinators.combine(shard, offset).as(DeleteByOffset::new),
                Combinators.combine(shard, key).as(DeleteByKey::new),
                Combinators.combine(shard, timestamp).as(OffsetByTimestamp::new),
                Combinators.combine(group, shard, offset).as(Commit::new),
                Combinators.combine(group, shard).as(GroupOffset::new),
                Arbitraries.of("", "s", "s1").map(ListShards::new)));
        if (supportsReopen()) {
            kinds.add(Arbitraries.just(new Reopen()));
        }
        Arbitrary<Op> op = Arbitraries.oneOf(kinds);
        return op.list().ofMaxSize(40);
    }

    private static Object onModel(Op op, ReferenceModel m, String run) {
        if (op instanceof Create o) {
            m.createShard(ShardConfig.of(run + o.shard, "model"));
            return null;
        } else if (op instanceof DeleteShard o) {
            m.deleteShard(run + o.shard);
            return null;
        } else if (op instanceof Write o) {
            return m.batchWrite(run + o.shard, List.of(o.record)).get(0);
        } else if (op instanceof BatchWrite o) {
            return m.batchWrite(run + o.shard, o.records);
        } else if (op instanceof ReadByOffset o) {
            return m.readByOffset(run + o.shard, o.offset, o.limit);
        } else if (op instanceof ReadByTag o) {
            return m.readByTag(run + o.shard, o.tag, o.offset, o.limit);
        } else if (op instanceof ReadByKey o) {
            return m.readByKey(run + o.shard, o.key);
        } else if (op instanceof DeleteByOffset o) {
            return m.deleteByOffset(run + o.shard, o.offset);
        } else if (op instanceof DeleteByKey o) {
            return m.deleteByKey(run + o.shard, o.key);
        } else if (op instanceof OffsetByTimestamp o) {
            return m.getOffsetByTimestamp(run + o.shard, o.timestamp);
        } else if (op instanceof Commit o) {
            m.commitOffset(o.group, run + o.shard, o.offset);
            return null;
        } else if (op instanceof GroupOffset o) {
            return m.getOffsetByGroup(o.group, run + o.shard);
        } else if (op instanceof ListShards o) {
            return m.listShards(run + o.prefix);
        }
        throw new IllegalArgumentException(op.toString());
    }

    private static Object onAdapter(Op op, StorageAdapter a, String run) {
        if (op instanceof Create o) {
            return get(a.createShard(ShardConfig.of(run + o.shard, "model")));
        } else if (op instanceof DeleteShard o) {
            return get(a.deleteShard(run + o.shard));
        } else if (op instanceof Write o) {
            return get(a.write(run + o.shard, o.record));
        } else if (op instanceof BatchWrite o) {
            return get(a.batchWrite(run + o.shard, o.records));
        } else if (op instanceof ReadByOffset o) {
            return get(a.readByOffset(run + o.shard, o.offset, o.limit));
        } else if (op instanceof ReadByTag o) {
            return get(a.readByTag(run + o.shard, o.tag, o.offset, o.limit));
        } else if (op instanceof ReadByKey o) {
            return get(a.readByKey(run + o.shard, o.key));
        } else if (op instanceof DeleteByOffset o) {
            return get(a.deleteByOffset(run + o.shard, o.offset));
        } else if (op instanceof DeleteByKey o) {
            return get(a.deleteByKey(run + o.shard, o.key));
        } else if (op instanceof OffsetByTimestamp o) {
            return get(a.getOffsetByTimestamp(run + o.shard, o.timestamp));
        } else if (op instanceof Commit o) {
            return get(a.commitOffset(o.group, run + o.shard, o.offset));
        } else if (op instanceof GroupOffset o) {
            return get(a.getOffsetByGroup(o.group, run + o.shard));
        } else if (op instanceof ListShards o) {
            return get(a.listShards(ShardFilter.prefix(run + o.prefix))).stream()
                    .map(s -> s.name() + "=" + s.logEndOffset())
                    .toList();
        }
        throw new IllegalArgumentException(op.toString());
    }

    private static <T> T get(CompletableFuture<T> f) {
        try {
            return Futures.await(f);
        } catch (AssertionError e) {
            if (e.getCause() instanceof StorageException se) {
                throw se;
            }
            throw e;
        }
    }

    /** What an operation answered: a value, or the code it failed with. */
    record Outcome(Object value, ErrorCode error) {
        static Outcome of(Supplier<Object> call) {
            try {
                return new Outcome(call.get(), null);
            } catch (StorageException e) {
                return new Outcome(null, e.code());
            }
        }
    }

    /** One step of a generated sequence. */
    sealed interface Op permits Create, DeleteShard, Write, BatchWrite, ReadByOffset, ReadByTag, ReadByKey,
            DeleteByOffset, DeleteByKey, OffsetByTimestamp, Commit, GroupOffset, ListShards, Reopen {
    }

    record Create(String shard) implements Op { }

    record DeleteShard(String shard) implements Op { }

    record Write(String shard, NewRecord record) implements Op { }

    record BatchWrite(String shard, List<NewRecord> records) implements Op { }

    record ReadByOffset(String shard, long offset, int limit) implements Op { }

    record ReadByTag(String shard, String tag, long offset, int limit) implements Op { }

    record ReadByKey(String shard, String key) implements Op { }

    record DeleteByOffset(String shard, long offset) implements Op { }

    record DeleteByKey(String shard, String key) implements Op { }

    record OffsetByTimestamp(String shard, long timestamp) implements Op { }

    record Commit(String group, String shard, long offset) implements Op { }

    record GroupOffset(String group, String shard) implements Op { }

    record ListShards(String prefix) implements Op { }

    record Reopen() implements Op { }
}
