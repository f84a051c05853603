package dev.segstore.it.faults;

import dev.segstore.adapter.NewRecord;
import dev.segstore.adapter.StoredRecord;
import dev.segstore.chaos.ReadRecord;
import dev.segstore.chaos.WrittenRecord;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;

/**
 * Records as a fault run writes and reads them. A record's payload is its id (unique in the run, which is what
 * the history and the checker know it by), a '|' and padding up to {@link #RECORD_BYTES}, so that about sixty
 * records fill a 64 KiB segment and shards roll several times in a run. A read record whose padding is not
 * intact is recorded with its whole payload as id: no write has that id, so the checker reports a PHANTOM.
 */
final class Payloads {
    static final int RECORD_BYTES = 1024;

    private Payloads() {
    }

    static NewRecord encode(WrittenRecord r) {
        StringBuilder b = new StringBuilder(RECORD_BYTES).append(r.payload()).append('|');
        while (b.length() < RECORD_BYTES) {
            b.append('x');
        }
        NewRecord record = NewRecord.of(System.currentTimeMillis(), b.toString().getBytes(StandardCharsets.UTF_8));
        if (r.key() != null) {
            record = record.withKey(r.key());
        }
        return r.tags().isEmpty() ? record : record.withTags(r.tags().toArray(String[]::new));
    }

    static ReadRecord decode(StoredRecord r) {
        String s = new String(r.payload(), StandardCharsets.UTF_8);
        int bar = s.indexOf('|');
        boolean intact = bar > 0 && s.length() == Math.max(RECORD_BYTES, bar + 1) && s.chars().skip(bar + 1).allMatch(c -> c == 'x');
        String[] tags = r.tags().toArray(String[]::new);
        Arrays.sort(tags);
        return new ReadRecord(r.offset(), intact ? s.substring(0, bar) : s, r.key(), List.of(tags));
    }
}
