package dev.segstore.chaos;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.NavigableMap;
import java.util.OptionalLong;
import java.util.Random;
import java.util.TreeMap;

/**
 * Random valid concurrent histories, from a sequential model of the store. Operations are drawn and applied
 * to the model one after another, operation i at its linearization point {@code L(i)}, increasing; then each
 * gets an invocation before and a completion after its point, with random skew, so operations overlap. Some
 * fail (not applied) and some end unknown (info, applied or not, at random; an info completion may even be
 * recorded before the operation's point, since an unknown outcome bounds nothing; some never complete). Any
 * such history is linearizable by construction, so the checker must find nothing in it. After the run, each
 * shard is read in full, in pages, by final reads.
 */
final class ValidHistories {
    static final List<String> SHARDS = List.of("s0", "s1");
    static final List<String> KEYS = List.of("k0", "k1", "k2");
    static final List<String> TAGS = List.of("a", "b");
    static final List<String> GROUPS = List.of("g0", "g1");
    /** Time between two linearization points. */
    static final long STEP = 10_000;

    /** One generated operation; {@code complete} is {@link Op#NEVER} if it never completes. */
    record GenOp(String process, Invocation invocation, long invoke, long complete, Outcome outcome, Result result,
                 String error) {
        GenOp withResult(Result r) {
            return new GenOp(process, invocation, invoke, complete, outcome, r, error);
        }
    }

    /**
     * A generated history: the operations (final reads last), which record the model put at each offset, and a
     * time after every completion and well before the final reads (where tests may add operations).
     */
    record Generated(List<GenOp> ops, Map<String, Map<Long, WrittenRecord>> stored, long quietFrom) {
        History history() {
            return ValidHistories.history(ops);
        }
    }

    private static final class ShardModel {
        long end;
        final Map<Long, WrittenRecord> all = new HashMap<>();
        final NavigableMap<Long, WrittenRecord> live = new TreeMap<>();
        final Map<String, NavigableMap<Long, WrittenRecord>> byTag = new HashMap<>();
        final Map<String, NavigableMap<Long, WrittenRecord>> byKey = new HashMap<>();

        List<Long> append(List<WrittenRecord> records) {
            List<Long> offsets = new ArrayList<>();
            for (WrittenRecord r : records) {
                long o = end++;
                all.put(o, r);
                live.put(o, r);
                r.tags().forEach(t -> byTag.computeIfAbsent(t, x -> new TreeMap<>()).put(o, r));
                if (r.key() != null) {
                    byKey.computeIfAbsent(r.key(), x -> new TreeMap<>()).put(o, r);
                }
                offsets.add(o);
            }
            return offsets;
        }

        boolean delete(long o) {
            WrittenRecord r = live.remove(o);
            if (r == null) {
                return false;
            }
            r.tags().forEach(t -> byTag.get(t).remove(o));
            if (r.key() != null) {
                byKey.get(r.key()).remove(o);
            }
            return true;
        }

        List<ReadRecord> read(NavigableMap<Long, WrittenRecord> index, long from, int limit) {
            List<ReadRecord> out = new ArrayList<>();
            for (Map.Entry<Long, WrittenRecord> e : index.tailMap(from, true).entrySet()) {
                if (out.size() == limit) {
                    break;
                }
                out.add(record(e.getKey(), e.getValue()));
            }
            return out;
        }
    }

    private ValidHistories() {
    }

    static ReadRecord record(long offset, WrittenRecord w) {
        return new ReadRecord(offset, w.payload(), w.key(), w.tags());
    }

    static Generated generate(Random random, int count) {
        Map<String, ShardModel> shards = new HashMap<>();
        SHARDS.forEach(s -> shards.put(s, new ShardModel()));
        Map<String, Long> groupOffsets = new HashMap<>();
        long skew = STEP * (1 + random.nextInt(5));
        List<GenOp> ops = new ArrayList<>();
        int payloads = 0;
        long point = skew * 3;
        for (int i = 0; i < count; i++) {
            point += STEP;
            String shard = SHARDS.get(random.nextInt(SHARDS.size()));
            ShardModel m = shards.get(shard);
            int kind = random.nextInt(100);
            Invocation inv;
            if (kind < 25) {
                inv = Invocation.write(shard, newRecord(random, "p" + payloads++));
            } else if (kind < 33) {
                List<WrittenRecord> batch = new ArrayList<>();
                for (int b = 1 + random.nextInt(3); b > 0; b--) {
                    batch.add(newRecord(random, "p" + payloads++));
                }
                inv = Invocation.batchWrite(shard, batch);
            } else if (kind < 53) {
                inv = Invocation.read(shard, random.nextInt((int) m.end + 2), 1 + random.nextInt(6));
            } else if (kind < 61) {
                inv = Invocation.readTag(shard, pick(random, TAGS), random.nextInt((int) m.end + 2), 1 + random.nextInt(6));
            } else if (kind < 67) {
                inv = Invocation.readKey(shard, pick(random, KEYS));
            } else if (kind < 77) {
                inv = Invocation.deleteOffset(shard, random.nextInt((int) m.end + 1));
            } else if (kind < 82) {
                inv = Invocation.deleteKey(shard, pick(random, KEYS));
            } else if (kind < 91) {
                inv = Invocation.commitOffset(pick(random, GROUPS), shard, random.nextInt(30));
            } else {
                inv = Invocation.readGroupOffset(pick(random, GROUPS), shard);
            }
            String process = "c" + random.nextInt(6);
            long invoke = point - random.nextLong(skew);
            int fate = random.nextInt(100);
            if (fate < 8 || (inv.type() == OpType.DELETE_OFFSET && inv.offset() >= m.end)) {
                String error = inv.type() == OpType.DELETE_OFFSET && inv.offset() >= m.end ? "OFFSET_OUT_OF_RANGE" : "NOT_LEADER";
                ops.add(new GenOp(process, inv, invoke, point + 1 + random.nextLong(skew), Outcome.FAIL, null, error));
            } else if (fate < 20) {
                if (random.nextBoolean()) {
                    apply(inv, m, groupOffsets);
                }
                long complete = random.nextInt(10) == 0 ? Op.NEVER : invoke + 1 + random.nextLong(2 * skew);
                ops.add(new GenOp(process, inv, invoke, complete, Outcome.INFO, null, "TIMEOUT"));
            } else {
                Result r = apply(inv, m, groupOffsets);
                ops.add(new GenOp(process, inv, invoke, point + 1 + random.nextLong(skew), Outcome.OK, r, null));
            }
        }
        long quietFrom = ops.stream().mapToLong(GenOp::complete).filter(t -> t != Op.NEVER).max().orElse(0) + STEP;
        point = quietFrom + 10 * STEP;
        Map<String, Map<Long, WrittenRecord>> stored = new HashMap<>();
        for (String shard : SHARDS) {
            ShardModel m = shards.get(shard);
            stored.put(shard, m.all);
            long from = 0;
            while (true) {
                int limit = 1 + random.nextInt(20);
                List<ReadRecord> page = m.read(m.live, from, limit);
                ops.add(new GenOp("final", Invocation.finalRead(shard, from, limit), point, point + STEP / 2,
                        Outcome.OK, Result.records(page), null));
                point += STEP;
                if (page.size() < limit) {
                    break;
                }
                from = page.get(page.size() - 1).offset() + 1;
            }
        }
        return new Generated(ops, stored, quietFrom);
    }

    /** The history of {@code ops}: ids in order of invocation, events in time order. */
    static History history(List<GenOp> ops) {
        List<GenOp> byInvoke = new ArrayList<>(ops);
        byInvoke.sort(Comparator.comparingLong(GenOp::invoke));
        List<Event> events = new ArrayList<>();
        long id = 1;
        for (GenOp g : byInvoke) {
            events.add(new Event.Invoke(id, g.process(), g.invoke(), g.invocation()));
            if (g.complete() != Op.NEVER) {
                events.add(new Event.Complete(id, g.complete(), g.outcome(), g.result(), g.error()));
            }
            id++;
        }
        events.sort(Comparator.comparingLong(Event::nanos));
        return History.of(events);
    }

    private static Result apply(Invocation inv, ShardModel m, Map<String, Long> groupOffsets) {
        String register = inv.group() + "/" + inv.shard();
        return switch (inv.type()) {
            case WRITE, BATCH_WRITE -> Result.offsets(m.append(inv.records()));
            case READ -> Result.records(m.read(m.live, inv.offset(), inv.limit()));
            case READ_TAG -> Result.records(m.read(m.byTag.getOrDefault(inv.tag(), new TreeMap<>()), inv.offset(), inv.limit()));
            case READ_KEY -> {
                Map.Entry<Long, WrittenRecord> newest = m.byKey.getOrDefault(inv.key(), new TreeMap<>()).lastEntry();
                yield Result.records(newest == null ? List.of() : List.of(record(newest.getKey(), newest.getValue())));
            }
            case DELETE_OFFSET -> Result.deleted(m.delete(inv.offset()));
            case DELETE_KEY -> {
                List<Long> offsets = new ArrayList<>(m.byKey.getOrDefault(inv.key(), new TreeMap<>()).keySet());
                offsets.forEach(m::delete);
                yield Result.count(offsets.size());
            }
            case COMMIT_OFFSET -> {
                groupOffsets.put(register, inv.offset());
                yield Result.none();
            }
            case READ_GROUP_OFFSET -> {
                Long v = groupOffsets.get(register);
                yield Result.groupOffset(v == null ? OptionalLong.empty() : OptionalLong.of(v));
            }
        };
    }

    private static WrittenRecord newRecord(Random random, String payload) {
        String key = random.nextInt(5) < 2 ? null : pick(random, KEYS);
        List<String> tags = new ArrayList<>();
        TAGS.forEach(t -> {
            if (random.nextInt(3) == 0) {
                tags.add(t);
            }
        });
        return new WrittenRecord(payload, key, tags);
    }

    private static String pick(Random random, List<String> values) {
        return values.get(random.nextInt(values.size()));
    }
}
