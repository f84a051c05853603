package dev.segstore.node.replica;

import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * Sends an ISR change to the controller (meta-service), conditional on the leader epoch and ISR version it
 * was based on. Completes with the committed ISR and its new version, or fails (for example FENCED_EPOCH).
 */
public interface IsrProposer {
    record Committed(List<Integer> isr, int isrVersion) {
    }

    CompletableFuture<Committed> propose(int leaderEpoch, int isrVersion, List<Integer> newIsr);
}
