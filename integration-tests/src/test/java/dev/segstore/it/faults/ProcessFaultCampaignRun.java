package dev.segstore.it.faults;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.file.Path;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A campaign of process fault schedules (issue 12, process part): not part of the default test command (the
 * name does not end in Test); {@code scripts/fault-campaign-procs.sh [runs=100] [seed]} runs it. 3 meta and 3
 * storage-node JVMs behind fault proxies ({@link ProcCluster}), one shard per run, every schedule runs even after
 * a failure, and the campaign ends with the table (runs, operations, anomalies by kind, stalls by fault kind),
 * printed and written to {@code target/proc-runs/<seed>/campaign.txt}; it fails if any run failed.
 *
 * <p>System properties: {@code procs.runs} (default 100), {@code procs.seed} (the campaign's seed; random when
 * absent, printed), {@code procs.runSeed} (one run's seed: replays that schedule alone), {@code procs.kinds}
 * (a fault mix, {@link ProcFaultKind} names), {@code procs.dir} (default {@code target/proc-runs}).
 */
class ProcessFaultCampaignRun {
    @Test
    @Timeout(value = 6, unit = TimeUnit.HOURS)
    void processFaultCampaign() throws Exception {
        int runs = Integer.getInteger("procs.runs", 100);
        long seed = Long.parseLong(System.getProperty("procs.seed", Long.toString(ThreadLocalRandom.current().nextLong())));
        String one = System.getProperty("procs.runSeed", "");
        Long runSeed = one.isBlank() ? null : Long.parseLong(one.trim());
        System.out.printf("process fault campaign: seed %d, %d runs%s (replay: -Dprocs.seed=%d -Dprocs.runs=%d)%n", seed, runs,
                runSeed == null ? "" : ", only the run of seed " + runSeed, seed, runs);
        Path dir = Path.of(System.getProperty("procs.dir", "target/proc-runs")).resolve(Long.toString(seed));
        ProcCampaign campaign = new ProcCampaign(dir, ProcCampaign.kindsFromProperty());
        String table = campaign.run(runs, seed, runSeed, "process fault campaign: seed " + seed);
        System.out.println(table);
        assertTrue(campaign.failures.isEmpty(), () -> campaign.failures.size() + " process fault runs failed:\n"
                + String.join("\n", campaign.failures) + "\n" + table);
    }
}
