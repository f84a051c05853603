package dev.segstore.node.server;

import dev.segstore.protocol.meta.NodeAssignments;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * An answer that places many new replicas on a node is applied over several heartbeats: one answer opens new replicas
 * for at most heartbeat.ms (each open forces files and directories), then leaves the rest to the next heartbeat, asked
 * for at once, and is not reported as applied. It opened all of them in one go: with 1,000 shards created at once the
 * control thread, which also sends the heartbeats, was busy past the session timeout and the controller fenced the node.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class AssignmentOpenBudgetTest {
    @TempDir
    Path tmp;

    @Test
    void manyNewReplicasAreOpenedOverSeveralHeartbeats() throws Exception {
        int count = 10;
        try (ReconcilerFixture f = new ReconcilerFixture(tmp, 200, 50)) {
            NodeAssignments.Builder a = NodeAssignments.newBuilder().setMetadataVersion(7);
            for (int i = 1; i <= count; i++) {
                a.addShards(ReconcilerFixture.shard(i, 1)).addSegments(ReconcilerFixture.openSegment(i, 0, 0, i, 1));
            }
            f.reconciler.apply(a.build(), f.clock.get());
            int first = f.hosted.size();
            assertTrue(first >= 1 && first < count, "one answer opens new replicas for heartbeat.ms at most: opened " + first + " of " + count);
            assertEquals(-1, f.reconciler.appliedVersion(), "not applied in full: not reported as applied");
            assertEquals(1, f.heartbeatsAsked.get(), "the next heartbeat is asked for at once");
            for (int round = 0; round < count && f.hosted.size() < count; round++) {
                f.reconciler.apply(a.build(), f.clock.get());
            }
            assertEquals(count, f.hosted.size());
            assertEquals(7, f.reconciler.appliedVersion());
            f.hosted.values().forEach(h -> assertEquals(dev.segstore.node.replica.Partition.Role.LEADER, h.partition.role()));
        }
    }
}
