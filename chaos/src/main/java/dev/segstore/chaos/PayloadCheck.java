package dev.segstore.chaos;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * PHANTOM, DUPLICATE and WRONG_OFFSET: where reads say a payload is, against where its write could have put
 * it. A record has one offset forever (offsets are never reused or moved), so every read that returns a
 * payload returns it at the same offset, the one its write was acknowledged at if it was.
 */
final class PayloadCheck {
    private PayloadCheck() {
    }

    static void run(RecordIndex index, List<Anomaly> out) {
        for (RecordIndex.Phantom p : index.phantoms.values()) {
            out.add(new Anomaly(Anomaly.Kind.PHANTOM, Describe.op(p.read()) + " returned payload " + p.payload()
                    + ", but " + p.why(), List.of(p.read().id())));
        }
        for (Map.Entry<String, Map<Long, RecordIndex.Seen>> e : index.sightings.entrySet()) {
            Written w = index.writes.get(e.getKey());
            Map<Long, RecordIndex.Seen> byOffset = e.getValue();
            if (byOffset.size() > 1) {
                List<Long> ids = new ArrayList<>(List.of(w.op().id()));
                List<String> where = new ArrayList<>();
                byOffset.forEach((offset, seen) -> {
                    ids.add(seen.earliest.id());
                    where.add("at " + Describe.at(w.shard(), offset) + " by " + Describe.op(seen.earliest));
                });
                String ack = w.acknowledged() ? " (acknowledged at " + Describe.at(w.shard(), w.ackOffset()) + ")" : "";
                out.add(new Anomaly(Anomaly.Kind.DUPLICATE, "payload " + w.payload() + " of " + Describe.op(w.op())
                        + ack + " is stored at " + byOffset.size() + " offsets: returned " + String.join(", ", where),
                        ids.stream().distinct().toList()));
            } else if (w.acknowledged()) {
                long offset = byOffset.keySet().iterator().next();
                if (offset != w.ackOffset()) {
                    Op read = byOffset.get(offset).earliest;
                    out.add(new Anomaly(Anomaly.Kind.WRONG_OFFSET, Describe.op(w.op()) + " was acknowledged at "
                            + Describe.at(w.shard(), w.ackOffset()) + ", but reads return its payload " + w.payload()
                            + " only at " + Describe.at(w.shard(), offset) + " (first " + Describe.op(read) + ")",
                            List.of(w.op().id(), read.id())));
                }
            }
        }
    }
}
