package dev.segstore.chaos;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * A history of 100,000 generated operations (plus the final reads), checked in full. Prints how long the
 * check took; asserts only that the valid history has no anomaly (time depends on the machine).
 */
class CheckerScaleTest {
    @Test
    void aHundredThousandOperationsCheck() {
        long seed = 12;
        ValidHistories.Generated g = ValidHistories.generate(new Random(seed), 100_000);
        History h = g.history();
        // Twice: the first run includes class loading and JIT warm-up, the second is closer to a long harness's.
        for (String run : List.of("cold", "warm")) {
            long start = System.nanoTime();
            List<Anomaly> anomalies = Checker.check(h);
            long ms = (System.nanoTime() - start) / 1_000_000;
            System.out.printf("CheckerScaleTest: checked %d operations (seed %d) in %d ms (%s)%n", g.ops().size(), seed, ms, run);
            assertEquals(List.of(), anomalies);
        }
    }
}
