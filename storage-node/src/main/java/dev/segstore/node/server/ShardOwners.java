package dev.segstore.node.server;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * The owner threads of a storage node: every shard belongs to one of them, chosen by hashing its id, and
 * that thread runs the shard's requests (produce, fetch, delete, reads) and its follower appends, in the
 * order they come. The netty event loops only decode and encode frames; a shard's slow step (a segment roll
 * creating files, a delete's fsync'd tombstone write, checking a fetched batch's checksums) holds up only the
 * shards of its owner, never a connection's other requests. A replica's monitor stays (completions from the
 * log's I/O thread and from the controller come on other threads) and is taken once per batch, never per
 * record; with one request thread per shard it is uncontended.
 */
final class ShardOwners implements AutoCloseable {
    private final ExecutorService[] owners;

    ShardOwners(int threads, String namePrefix) {
        if (threads < 1) {
            throw new IllegalArgumentException("owner threads must be >= 1: " + threads);
        }
        owners = new ExecutorService[threads];
        for (int i = 0; i < threads; i++) {
            String name = namePrefix + "-" + i;
            owners[i] = Executors.newSingleThreadExecutor(r -> {
                Thread t = new Thread(r, name);
                t.setDaemon(true);
                return t;
            });
        }
    }

    /** The owner of {@code shardId}: the same thread for every segment of the shard, spread by a hash. */
    ExecutorService of(long shardId) {
        long h = shardId * 0x9E3779B97F4A7C15L; // Fibonacci hashing: consecutive ids land on different owners
        return owners[(int) Math.floorMod(h >>> 32, (long) owners.length)];
    }

    /** Runs {@code work} on the shard's owner; its answer (or failure) completes the returned future. */
    <T> CompletableFuture<T> run(long shardId, Supplier<CompletableFuture<T>> work) {
        try {
            return CompletableFuture.supplyAsync(work, of(shardId)).thenCompose(f -> f);
        } catch (RejectedExecutionException e) {
            return CompletableFuture.failedFuture(new dev.segstore.protocol.rpc.RpcException(
                    dev.segstore.protocol.rpc.RpcException.UNAVAILABLE, "the storage node is shutting down"));
        }
    }

    int size() {
        return owners.length;
    }

    /** Lets queued work finish (no interrupts: an interrupted file write would close the log's channel). */
    @Override
    public void close() {
        for (ExecutorService e : owners) {
            e.shutdown();
        }
        for (ExecutorService e : owners) {
            try {
                e.awaitTermination(5, TimeUnit.SECONDS);
            } catch (InterruptedException ie) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }
}
