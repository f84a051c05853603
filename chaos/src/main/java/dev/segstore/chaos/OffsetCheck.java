package dev.segstore.chaos;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * OFFSET_REUSED, and UNSTABLE_READ in its "different payload" form: one offset of a shard must hold one
 * payload forever. Claims that an offset holds a payload come from acknowledgements (a write acknowledged at
 * the offset) and from sightings (a read returned the payload there). A sighting of a payload whose write was
 * acknowledged at another offset is left to {@link PayloadCheck} (WRONG_OFFSET or DUPLICATE), and phantoms to
 * it too, so each fault is reported once. Two payloads claimed at one offset are OFFSET_REUSED if an
 * acknowledgement is among the claims, else UNSTABLE_READ (reads disagree about what the offset holds).
 */
final class OffsetCheck {
    private OffsetCheck() {
    }

    private record At(String shard, long offset) {
    }

    private record Claim(String payload, Op op, boolean acknowledgement) {
    }

    static void run(RecordIndex index, List<Anomaly> out) {
        Map<At, List<Claim>> claims = new LinkedHashMap<>();
        for (Written w : index.writes.values()) {
            if (w.acknowledged()) {
                claim(claims, new At(w.shard(), w.ackOffset()), new Claim(w.payload(), w.op(), true));
            }
        }
        index.sightings.forEach((payload, byOffset) -> {
            Written w = index.writes.get(payload);
            byOffset.forEach((offset, seen) -> {
                if (!w.acknowledged() || w.ackOffset() == offset) {
                    claim(claims, new At(w.shard(), offset), new Claim(payload, seen.earliest, false));
                }
            });
        });
        claims.forEach((at, list) -> {
            if (list.size() > 1) {
                boolean acknowledged = list.stream().anyMatch(Claim::acknowledgement);
                List<String> what = list.stream().map(c -> c.payload() + (c.acknowledgement()
                        ? " (acknowledged to " : " (returned by ") + Describe.op(c.op()) + ")").toList();
                out.add(new Anomaly(acknowledged ? Anomaly.Kind.OFFSET_REUSED : Anomaly.Kind.UNSTABLE_READ,
                        "offset " + Describe.at(at.shard(), at.offset()) + " holds " + list.size()
                                + " different payloads: " + String.join(", ", what),
                        list.stream().map(c -> c.op().id()).distinct().toList()));
            }
        });
    }

    /** Adds a claim unless one of the same payload is there already (one claim per payload per offset). */
    private static void claim(Map<At, List<Claim>> claims, At at, Claim claim) {
        List<Claim> list = claims.computeIfAbsent(at, a -> new ArrayList<>(1));
        if (list.stream().noneMatch(c -> c.payload().equals(claim.payload()))) {
            list.add(claim);
        }
    }
}
