package dev.segstore.it.faults;

import dev.segstore.adapter.ErrorCode;
import dev.segstore.adapter.NewRecord;
import dev.segstore.adapter.StorageAdapter;
import dev.segstore.adapter.StorageException;
import dev.segstore.chaos.Invocation;
import dev.segstore.chaos.OpType;
import dev.segstore.chaos.Result;
import dev.segstore.chaos.WrittenRecord;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * One client of a fault run: a loop of operations, one at a time, through its own adapter, each recorded in the
 * history as invoked and completed, until the run's stop time. What it does depends on its {@link Role} and the
 * workload's mix; its choices come from a {@link Random} seeded by the workload's seed and its name.
 *
 * <p>Outcomes: an answer is {@code ok}. A failed read, key read or group-offset read is {@code fail} (reads change
 * nothing). A failed write, delete or commit is {@code fail} only when the error says it was refused before
 * anything was sent or stored (INVALID_ARGUMENT, RECORD_TOO_LARGE; OFFSET_OUT_OF_RANGE for a delete by offset:
 * no record there); any other error, retriable or not, leaves its outcome unknown ({@code info}): an earlier
 * attempt may have been stored.
 */
final class ClientProcess implements Runnable {
    enum Role { WRITER, READER, DELETER, COMMITTER }

    /** A guard above the adapter's own request deadline: an operation still open then is recorded as unknown. */
    private static final long GUARD_MS = FaultCluster.REQUEST_TIMEOUT_MS + 5_000;

    private final String name;
    private final Role role;
    private final StorageAdapter adapter;
    private final RunContext run;
    private final Random random;
    private int written;

    ClientProcess(String name, Role role, StorageAdapter adapter, RunContext run) {
        this.name = name;
        this.role = role;
        this.adapter = adapter;
        this.run = run;
        this.random = new Random(run.workload.seed() ^ name.hashCode());
    }

    String name() {
        return name;
    }

    @Override
    public void run() {
        while (run.running()) {
            switch (role) {
                case WRITER -> write();
                case READER -> read();
                case DELETER -> delete();
                case COMMITTER -> commit();
            }
        }
    }

    private boolean percent(int p) {
        return random.nextInt(100) < p;
    }

    private WrittenRecord nextRecord() {
        String key = percent(40) ? RunContext.KEYS[random.nextInt(RunContext.KEYS.length)] : null;
        List<String> tags = new ArrayList<>();
        for (String t : RunContext.TAGS) {
            if (percent(30)) {
                tags.add(t);
            }
        }
        return new WrittenRecord(run.runId + "-" + name + "-" + written++, key, tags);
    }

    private void write() {
        String shard = run.shard;
        if (percent(run.workload.mix().batch())) {
            List<WrittenRecord> records = new ArrayList<>();
            for (int i = 2 + random.nextInt(7); i > 0; i--) {
                records.add(nextRecord());
            }
            List<NewRecord> encoded = records.stream().map(Payloads::encode).toList();
            List<Long> offsets = mutate(Invocation.batchWrite(shard, records), () -> adapter.batchWrite(shard, encoded), Result::offsets);
            if (offsets != null) {
                offsets.forEach(run::acked);
            }
        } else {
            WrittenRecord record = nextRecord();
            Long offset = mutate(Invocation.write(shard, record), () -> adapter.write(shard, Payloads.encode(record)),
                    o -> Result.offsets(o));
            if (offset != null) {
                run.acked(offset);
            }
        }
    }

    /** An offset below the highest acknowledged: half the time near it (the tail), else anywhere. */
    private long someOffset() {
        long high = run.highestAcked.get() + 1;
        if (high <= 0) {
            return 0;
        }
        return percent(50) ? Math.max(0, high - 1 - random.nextInt(40)) : (long) (random.nextDouble() * high);
    }

    private void read() {
        String shard = run.shard;
        int p = random.nextInt(100);
        int limit = 1 + random.nextInt(random.nextBoolean() ? 20 : 400);
        if (p < run.workload.mix().keyRead()) {
            String key = RunContext.KEYS[random.nextInt(RunContext.KEYS.length)];
            read(Invocation.readKey(shard, key), () -> adapter.readByKey(shard, key),
                    r -> Result.records(r.map(Payloads::decode).stream().toList()));
        } else if (p < run.workload.mix().keyRead() + run.workload.mix().tagRead()) {
            String tag = RunContext.TAGS[random.nextInt(RunContext.TAGS.length)];
            long from = someOffset();
            read(Invocation.readTag(shard, tag, from, limit), () -> adapter.readByTag(shard, tag, from, limit),
                    r -> Result.records(r.stream().map(Payloads::decode).toList()));
        } else {
            long from = someOffset();
            read(Invocation.read(shard, from, limit), () -> adapter.readByOffset(shard, from, limit),
                    r -> Result.records(r.stream().map(Payloads::decode).toList()));
        }
    }

    private void delete() {
        String shard = run.shard;
        if (percent(run.workload.mix().keyDelete())) {
            String key = RunContext.KEYS[random.nextInt(RunContext.KEYS.length)];
            mutate(Invocation.deleteKey(shard, key), () -> adapter.deleteByKey(shard, key), Result::count);
        } else {
            long offset = someOffset();
            mutate(Invocation.deleteOffset(shard, offset), () -> adapter.deleteByOffset(shard, offset), Result::deleted);
        }
    }

    private void commit() {
        String shard = run.shard;
        String group = RunContext.GROUPS[random.nextInt(RunContext.GROUPS.length)];
        if (percent(run.workload.mix().commit())) {
            long offset = someOffset();
            mutate(Invocation.commitOffset(group, shard, offset), () -> adapter.commitOffset(group, shard, offset), v -> Result.none());
        } else {
            read(Invocation.readGroupOffset(group, shard), () -> adapter.getOffsetByGroup(group, shard), Result::groupOffset);
        }
    }

    private <T> T read(Invocation invocation, Supplier<CompletableFuture<T>> call, Function<T, Result> result) {
        return call(name, run, invocation, call, result, false);
    }

    private <T> T mutate(Invocation invocation, Supplier<CompletableFuture<T>> call, Function<T, Result> result) {
        return call(name, run, invocation, call, result, true);
    }

    /**
     * Invokes one operation and records it; returns its answer, or null if it failed. Also used for the final
     * reads, by process "final".
     */
    static <T> T call(String process, RunContext run, Invocation invocation, Supplier<CompletableFuture<T>> call,
                      Function<T, Result> result, boolean mutates) {
        long id = run.history.invoke(process, invocation);
        try {
            T answer = call.get().get(GUARD_MS, TimeUnit.MILLISECONDS);
            run.history.ok(id, result.apply(answer));
            return answer;
        } catch (ExecutionException | RuntimeException e) {
            Throwable cause = e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e;
            String error = cause instanceof StorageException se ? se.code().name() : cause.getClass().getSimpleName();
            if (!mutates || refusedBeforeStored(invocation, cause)) {
                run.history.fail(id, error);
            } else {
                run.history.info(id, error);
            }
        } catch (TimeoutException e) {
            if (mutates) {
                run.history.info(id, "HARNESS_TIMEOUT");
            } else {
                run.history.fail(id, "HARNESS_TIMEOUT");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            run.history.info(id, "INTERRUPTED");
        }
        return null;
    }

    private static boolean refusedBeforeStored(Invocation invocation, Throwable cause) {
        if (!(cause instanceof StorageException se)) {
            return false;
        }
        ErrorCode code = se.code();
        return code == ErrorCode.INVALID_ARGUMENT || code == ErrorCode.RECORD_TOO_LARGE
                || (code == ErrorCode.OFFSET_OUT_OF_RANGE && invocation.type() == OpType.DELETE_OFFSET);
    }
}
