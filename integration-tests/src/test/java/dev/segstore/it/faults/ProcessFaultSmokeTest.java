package dev.segstore.it.faults;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.file.Path;
import java.util.EnumSet;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A short run of the process fault harness in the default build: the cluster of processes behind fault proxies,
 * two schedules of a random seed (printed; {@code -Dprocs.seed=} replays it), one with process faults and one
 * with network faults, checked as a campaign's runs are. The campaign itself is {@link ProcessFaultCampaignRun}.
 */
class ProcessFaultSmokeTest {
    @Test
    @Timeout(value = 240, unit = TimeUnit.SECONDS)
    void twoProcessFaultRunsLoseNothingAndHeal() throws Exception {
        long seed = Long.parseLong(System.getProperty("procs.seed", Long.toString(ThreadLocalRandom.current().nextLong())));
        System.out.printf("ProcessFaultSmokeTest: seed %d (replay: -Dprocs.seed=%d)%n", seed, seed);
        Path dir = Path.of("target/proc-runs/smoke-" + seed);
        ProcCampaign campaign = new ProcCampaign(dir, List.of(
                EnumSet.of(ProcFaultKind.KILL_NODE, ProcFaultKind.PAUSE_NODE, ProcFaultKind.TERM_NODE, ProcFaultKind.KILL_META_LEADER,
                        ProcFaultKind.PAUSE_META_FOLLOWER),
                EnumSet.of(ProcFaultKind.PARTITION_PEERS, ProcFaultKind.PARTITION_META, ProcFaultKind.ISOLATE_NODE, ProcFaultKind.ONE_WAY,
                        ProcFaultKind.SLOW_LINK, ProcFaultKind.PARTITION_CLIENTS)));
        String table = campaign.run(2, seed, null, "ProcessFaultSmokeTest: seed " + seed);
        System.out.println(table);
        String finalTable = table;
        // Wired through the proxies: clients and peers reach every storage node through its proxy, and storage
        // nodes and clients reach the meta-service through theirs, each connection told by its source address.
        System.out.println("sources seen by each proxy: " + campaign.sourcesSeen);
        // Only a leader is called (clients produce, followers fetch), and two short runs may lead on two nodes
        // only: the storage nodes' proxies together must have seen clients and peers.
        java.util.Set<String> nodesSeen = new java.util.TreeSet<>();
        for (int id = 1; id <= 3; id++) {
            nodesSeen.addAll(campaign.sourcesSeen.get(ProcCluster.nodeName(id)));
        }
        assertTrue(nodesSeen.contains("client") && nodesSeen.stream().anyMatch(s -> s.startsWith("node-")),
                "the storage nodes' proxies saw " + nodesSeen);
        java.util.Set<String> metaSeen = new java.util.TreeSet<>();
        for (int i = 0; i < 3; i++) {
            metaSeen.addAll(campaign.sourcesSeen.get(ProcCluster.metaName(i)));
        }
        assertTrue(metaSeen.containsAll(java.util.List.of("client", "node-1", "node-2", "node-3")), "the meta proxies saw " + metaSeen);
        assertTrue(campaign.failures.isEmpty(), () -> String.join("\n", campaign.failures) + "\n" + finalTable);
    }
}
