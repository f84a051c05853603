package dev.segstore.node.server;

import dev.segstore.adapter.NewRecord;
import dev.segstore.adapter.ShardConfig;
import dev.segstore.client.SegmentStorageAdapter;
import dev.segstore.log.io.LogChannel;
import dev.segstore.log.io.ForwardingLogChannel;
import dev.segstore.log.io.ForwardingLogFiles;
import dev.segstore.log.io.RealLogFiles;
import dev.segstore.protocol.meta.DurabilityMode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A clean stop while the node's control thread reads a log (its index catching up): the stop interrupted that thread,
 * and an interrupt closes the FileChannel under the read (ClosedByInterruptException). The data directory then went
 * offline, its logs did not close cleanly and no producer state was saved, so after the restart the first retry of
 * an unknown batch read the whole log back (1.2 s of stalled writes in a rolling restart of the local cluster).
 * Node 1 runs with {@code index.queue.max.bytes} 0: its index reads every record back (it takes none as appended), as
 * an index does for what it did not queue.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class CleanStopTest {
    /** How long the held read waits to be interrupted (the old stop does at once) before it goes on anyway. */
    private static final long INTERRUPT_WAIT_MS = 2_000;

    @Test
    void aStopWhileTheControlThreadReadsALogKeepsItsDirectoryOnlineAndSavesTheProducerState() throws Exception {
        HeldReads held = new HeldReads();
        try (InJvmCluster cluster = new InJvmCluster(id -> StorageNode.PeerFaults.NONE, id -> id == 1 ? held : RealLogFiles.INSTANCE);
             SegmentStorageAdapter adapter = new SegmentStorageAdapter(new SegmentStorageAdapter.Settings(cluster.metaAddresses, 30_000,
                     2_000, DurabilityMode.FSYNC))) {
            cluster.stopNode(1);
            cluster.indexQueueMaxBytes = id -> id == 1 ? 0 : NodeConfig.DEFAULT_INDEX_QUEUE_MAX_BYTES;
            cluster.startNode(1, true);
            adapter.createShard(ShardConfig.of("stop", SegmentStorageAdapter.STORAGE_TYPE).withReplication(3, 2)).get(30, TimeUnit.SECONDS);
            for (int i = 0; i < 20; i++) {
                adapter.write("stop", NewRecord.of(i, new byte[100])).get(30, TimeUnit.SECONDS);
            }
            StorageNode node1 = cluster.nodes[1];
            held.hold = true; // the next log read on node 1's control thread (its index catching up) waits
            adapter.write("stop", NewRecord.of(20, new byte[100])).get(30, TimeUnit.SECONDS);
            InJvmCluster.waitFor("node 1's control thread to read a log", 30_000, () -> held.holder != null);
            Thread stopper = new Thread(() -> cluster.stopNode(1), "stopper");
            stopper.start();
            long end = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(INTERRUPT_WAIT_MS);
            while (!held.interrupted && System.nanoTime() < end) {
                LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(5)); // polls the condition, with a deadline
            }
            held.released = true;
            LockSupport.unpark(held.holder);
            stopper.join(60_000);
            assertFalse(stopper.isAlive(), "node 1 stopped");
            assertFalse(held.interrupted, "the stop interrupted the control thread while it read a log");
            assertEquals(1, node1.producerStatesSaved(), "node 1 saved the producer state of its one replica at the clean stop");
            assertTrue(held.reads > 0);
        }
    }

    /** Real files whose reads on thread "node-control" wait, once {@link #hold} is set, until {@link #released}. */
    private static final class HeldReads extends ForwardingLogFiles {
        volatile boolean hold;
        volatile boolean released;
        volatile Thread holder;
        volatile boolean interrupted;
        volatile int reads;

        @Override
        public LogChannel open(Path file, boolean create) throws IOException {
            return new ForwardingLogChannel(real.open(file, create)) {
                @Override
                public int readFully(ByteBuffer dst, long position) throws IOException {
                    if (hold && !released && Thread.currentThread().getName().equals("node-control")) {
                        holder = Thread.currentThread();
                        boolean wasInterrupted = false;
                        while (!released) {
                            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(5));
                            wasInterrupted |= Thread.interrupted();
                        }
                        if (wasInterrupted) {
                            interrupted = true;
                            Thread.currentThread().interrupt(); // as it was: the real read sees it
                        }
                    }
                    reads++;
                    return super.readFully(dst, position);
                }
            };
        }
    }
}
