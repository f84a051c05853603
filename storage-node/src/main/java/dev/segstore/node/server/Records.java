package dev.segstore.node.server;

import dev.segstore.log.AppendRecord;
import dev.segstore.log.LogHeader;
import dev.segstore.log.LogRecord;
import dev.segstore.protocol.node.Header;
import dev.segstore.protocol.node.Record;

/** Converts records between the wire (node.proto) and the segment log. */
final class Records {
    private Records() {
    }

    static AppendRecord toAppend(Record r) {
        return new AppendRecord(r.getHasKey() ? r.getKey() : null, r.getTagsList(), r.getTimestamp(),
                r.getHeadersList().stream().map(h -> new LogHeader(h.getName(), h.getValue())).toList(),
                r.getPayload().toByteArray());
    }

    static Record toWire(LogRecord r) {
        Record.Builder b = Record.newBuilder().setOffset(r.offset()).setTimestamp(r.timestamp()).addAllTags(r.tags())
                .setPayload(com.google.protobuf.ByteString.copyFrom(r.payload()));
        if (r.key() != null) {
            b.setHasKey(true).setKey(r.key());
        }
        r.headers().forEach(h -> b.addHeaders(Header.newBuilder().setName(h.name()).setValue(h.value())));
        return b.build();
    }
}
