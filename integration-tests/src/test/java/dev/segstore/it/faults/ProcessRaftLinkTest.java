package dev.segstore.it.faults;

import dev.segstore.it.raft.RaftLinkFaults;
import dev.segstore.node.server.InJvmCluster;
import dev.segstore.protocol.meta.DurabilityMode;
import dev.segstore.adapter.ShardConfig;
import dev.segstore.client.SegmentStorageAdapter;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Meta <-> meta Raft links cut between meta-service <em>processes</em> (issue 12): {@link ProcCluster} writes the
 * cut links to each meta process's control file ({@link RaftLinkFaults#CONTROL}), which the test class path's jraft
 * transport in that process polls. The meta leader cut from both others is replaced, the new group takes a
 * metadata command (a shard created), and once healed the old leader serves in the group again.
 */
class ProcessRaftLinkTest {
    private static final long DEADLINE_MS = 30_000;

    @Test
    @Timeout(value = 240, unit = TimeUnit.SECONDS)
    void aMetaLeaderProcessCutFromBothOthersIsReplacedAndRejoinsWhenHealed() throws Exception {
        try (ProcCluster cluster = ProcCluster.start(Path.of("target/proc-runs/raft-links-" + System.currentTimeMillis()))) {
            int[] leader = {-1};
            InJvmCluster.waitFor("a meta leader", DEADLINE_MS, () -> (leader[0] = cluster.metaLeader()) >= 0);
            int old = leader[0];
            List<Integer> others = List.of(0, 1, 2).stream().filter(i -> i != old).toList();
            cluster.cutRaftLinks(RaftLinkFaults.partition(cluster.metaRaft(old), others.stream().map(cluster::metaRaft).toList()));

            InJvmCluster.waitFor("a new meta leader among " + others + " after meta node " + old + "'s Raft links were cut",
                    DEADLINE_MS, () -> others.contains(cluster.metaLeader()));
            InJvmCluster.waitFor("meta node " + old + ", cut off, to know no leader", DEADLINE_MS, () -> !cluster.metaServes(old));
            cluster.admin(DurabilityMode.FSYNC).createShard(ShardConfig.of("raft-links", SegmentStorageAdapter.STORAGE_TYPE)
                    .withReplication(3, 2)).get(DEADLINE_MS, TimeUnit.MILLISECONDS);

            assertEquals(List.of("healed the Raft links " + cluster.raftLinks()), cluster.heal());
            InJvmCluster.waitFor("meta node " + old + " to serve in the group again", DEADLINE_MS, () -> cluster.metaServes(old));
            cluster.awaitHealthy(DEADLINE_MS);
        }
    }
}
