package dev.segstore.node.server;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ShardOwnersTest {

    @Test
    void aShardsWorkRunsOnOneThreadInOrder() throws Exception {
        try (ShardOwners owners = new ShardOwners(4, "t")) {
            List<Integer> seen = new ArrayList<>();
            Set<String> threads = new HashSet<>();
            List<CompletableFuture<Integer>> all = new ArrayList<>();
            for (int i = 0; i < 200; i++) {
                int n = i;
                all.add(owners.run(7, () -> {
                    seen.add(n); // no lock: only the owner thread touches it
                    threads.add(Thread.currentThread().getName());
                    return CompletableFuture.completedFuture(n);
                }));
            }
            CompletableFuture.allOf(all.toArray(CompletableFuture[]::new)).get(10, TimeUnit.SECONDS);
            assertEquals(1, threads.size(), "one owner thread: " + threads);
            for (int i = 0; i < 200; i++) {
                assertEquals(i, seen.get(i), "in submission order");
            }
        }
    }

    @Test
    void shardsSpreadOverTheOwnersAndABlockedOwnerHoldsUpOnlyItsShards() throws Exception {
        try (ShardOwners owners = new ShardOwners(4, "t")) {
            Set<Object> used = new HashSet<>();
            for (long shard = 1; shard <= 16; shard++) {
                used.add(owners.of(shard));
            }
            assertEquals(4, used.size(), "16 consecutive shard ids use all 4 owners");
            long slow = 1;
            long other = 2;
            while (owners.of(other) == owners.of(slow)) {
                other++;
            }
            assertNotSame(owners.of(slow), owners.of(other));
            assertSame(owners.of(slow), owners.of(slow));
            CountDownLatch release = new CountDownLatch(1);
            CompletableFuture<String> stuck = owners.run(slow, () -> {
                try {
                    assertTrue(release.await(20, TimeUnit.SECONDS));
                } catch (InterruptedException e) {
                    throw new IllegalStateException(e);
                }
                return CompletableFuture.completedFuture("slow");
            });
            assertEquals("fast", owners.run(other, () -> CompletableFuture.completedFuture("fast")).get(10, TimeUnit.SECONDS),
                    "another owner's shard is served while one owner is held");
            assertFalse(stuck.isDone());
            release.countDown();
            assertEquals("slow", stuck.get(10, TimeUnit.SECONDS));
        }
    }

    @Test
    void aFailureInTheWorkFailsItsFutureOnly() throws Exception {
        try (ShardOwners owners = new ShardOwners(1, "t")) {
            CompletableFuture<String> failed = owners.run(3, () -> {
                throw new IllegalStateException("boom");
            });
            assertThrows(java.util.concurrent.ExecutionException.class, () -> failed.get(10, TimeUnit.SECONDS));
            assertEquals("next", owners.run(3, () -> CompletableFuture.completedFuture("next")).get(10, TimeUnit.SECONDS));
        }
    }
}
