package dev.segstore.chaos;

import java.util.List;
import java.util.Map;

/**
 * DELETE_UNDONE: a deleted record is never returned again. A read invoked after an acknowledged delete that must
 * have removed a record (see {@link Deletes}: any acknowledged delete of its offset; an acknowledged delete of
 * its key invoked after the record was known stored) completed, and that returns the record, is one. A read
 * concurrent with the delete may or may not return it, and a write whose outcome was unknown may have been
 * applied after a delete of its key, so neither is reported.
 */
final class DeleteCheck {
    private DeleteCheck() {
    }

    static void run(RecordIndex index, List<Anomaly> out) {
        index.sightings.forEach((payload, byOffset) -> {
            Written w = index.writes.get(payload);
            long stored = index.storedNanos(w);
            for (Map.Entry<Long, RecordIndex.Seen> e : byOffset.entrySet()) {
                Op delete = index.deletes.mustHaveRemoved(w, e.getKey(), stored);
                Op read = e.getValue().latest;
                if (delete != null && delete.completeNanos() < read.invokeNanos()) {
                    out.add(new Anomaly(Anomaly.Kind.DELETE_UNDONE, Describe.op(delete) + " deleted the record at "
                            + Describe.at(w.shard(), e.getKey()) + " (payload " + payload + ") and completed before "
                            + Describe.op(read) + " was invoked, which returns it", List.of(delete.id(), read.id())));
                }
            }
        });
    }
}
