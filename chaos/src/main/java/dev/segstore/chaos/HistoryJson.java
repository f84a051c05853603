package dev.segstore.chaos;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.Reader;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.OptionalLong;
import java.util.function.BiConsumer;

/**
 * The JSON-lines form of a history: one event per line, one flat JSON object per event (format and examples in
 * {@code docs/chaos-history.md}). Fields a type does not use are left out, and a field left out reads back as
 * empty (null, an empty list, 0, false), so every event reads back equal to the one written.
 */
final class HistoryJson {
    private HistoryJson() {
    }

    static String encode(Event event) {
        Line line = new Line();
        if (event instanceof Event.Invoke i) {
            Invocation inv = i.invocation();
            line.string("event", "invoke").number("id", i.id()).number("time", i.nanos())
                    .string("process", i.process()).string("op", inv.type().name()).string("shard", inv.shard());
            if (!inv.records().isEmpty()) {
                line.array("records", inv.records(), (r, out) -> out.string("payload", r.payload())
                        .string("key", r.key()).strings("tags", r.tags()));
            }
            switch (inv.type()) {
                case READ, READ_TAG -> line.number("from", inv.offset()).number("limit", inv.limit());
                case DELETE_OFFSET, COMMIT_OFFSET -> line.number("offset", inv.offset());
                default -> { }
            }
            line.string("key", inv.key()).string("tag", inv.tag()).string("group", inv.group());
            if (inv.finalRead()) {
                line.raw("final", "true");
            }
        } else if (event instanceof Event.Complete c) {
            line.string("event", c.outcome().name().toLowerCase(Locale.ROOT)).number("id", c.id()).number("time", c.nanos());
            if (c.result() != null) {
                Result r = c.result();
                if (!r.offsets().isEmpty()) {
                    line.raw("offsets", r.offsets().toString().replace(" ", ""));
                }
                if (!r.records().isEmpty()) {
                    line.array("records", r.records(), (rec, out) -> out.number("offset", rec.offset())
                            .string("payload", rec.payload()).string("key", rec.key()).strings("tags", rec.tags()));
                }
                if (r.count() != 0) {
                    line.number("count", r.count());
                }
                if (r.groupOffset().isPresent()) {
                    line.number("groupOffset", r.groupOffset().getAsLong());
                }
            }
            line.string("error", c.error());
        } else if (event instanceof Event.Nemesis n) {
            line.string("event", "nemesis").number("time", n.nanos())
                    .string("phase", n.phase().name().toLowerCase(Locale.ROOT)).string("kind", n.kind())
                    .string("description", n.description());
        } else if (event instanceof Event.SealPoints p) {
            line.string("event", "segments").number("time", p.nanos()).string("shard", p.shard())
                    .raw("sealedAt", p.offsets().toString().replace(" ", ""));
        }
        return line.end();
    }

    static List<Event> decodeLines(Reader in) throws IOException {
        BufferedReader lines = new BufferedReader(in);
        List<Event> events = new ArrayList<>();
        String text;
        int number = 0;
        while ((text = lines.readLine()) != null) {
            number++;
            if (text.isBlank()) {
                continue;
            }
            try {
                events.add(decode(text));
            } catch (RuntimeException e) {
                throw new IOException("line " + number + ": " + e.getMessage(), e);
            }
        }
        return events;
    }

    @SuppressWarnings("unchecked")
    static Event decode(String text) {
        if (!(Json.parse(text) instanceof Map<?, ?> parsed)) {
            throw new IllegalArgumentException("an event is a JSON object");
        }
        Fields f = new Fields((Map<String, Object>) parsed);
        String kind = f.string("event");
        if (kind == null) {
            throw new IllegalArgumentException("field \"event\" missing");
        }
        return switch (kind) {
            case "invoke" -> new Event.Invoke(f.number("id", -1), f.string("process"), f.number("time", 0), invocation(f));
            case "ok" -> new Event.Complete(f.number("id", -1), f.number("time", 0), Outcome.OK, result(f), null);
            case "fail", "info" -> new Event.Complete(f.number("id", -1), f.number("time", 0),
                    Outcome.valueOf(kind.toUpperCase(Locale.ROOT)), null, f.string("error"));
            case "nemesis" -> new Event.Nemesis(f.number("time", 0),
                    Event.Phase.valueOf(f.string("phase").toUpperCase(Locale.ROOT)), f.string("kind"), f.string("description"));
            case "segments" -> new Event.SealPoints(f.number("time", 0), f.string("shard"), f.numbers("sealedAt"));
            default -> throw new IllegalArgumentException("unknown event \"" + kind + "\"");
        };
    }

    private static Invocation invocation(Fields f) {
        OpType type = OpType.valueOf(f.string("op"));
        List<WrittenRecord> records = f.objects("records").stream()
                .map(r -> new WrittenRecord(r.string("payload"), r.string("key"), r.strings("tags"))).toList();
        long offset = switch (type) {
            case READ, READ_TAG -> f.number("from", -1);
            default -> f.number("offset", -1);
        };
        return new Invocation(type, f.string("shard"), records, offset, (int) f.number("limit", 0),
                f.string("key"), f.string("tag"), f.string("group"), f.bool("final"));
    }

    private static Result result(Fields f) {
        List<ReadRecord> records = f.objects("records").stream()
                .map(r -> new ReadRecord(r.number("offset", -1), r.string("payload"), r.string("key"), r.strings("tags")))
                .toList();
        OptionalLong group = f.has("groupOffset") ? OptionalLong.of(f.number("groupOffset", -1)) : OptionalLong.empty();
        return new Result(f.numbers("offsets"), records, f.number("count", 0), group);
    }

    /** Typed access to a parsed object; absent fields read as empty. */
    private record Fields(Map<String, Object> map) {
        boolean has(String name) {
            return map.get(name) != null;
        }

        String string(String name) {
            return (String) map.get(name);
        }

        long number(String name, long absent) {
            Object v = map.get(name);
            return v == null ? absent : (Long) v;
        }

        boolean bool(String name) {
            return Boolean.TRUE.equals(map.get(name));
        }

        List<String> strings(String name) {
            return list(name).stream().map(String.class::cast).toList();
        }

        List<Long> numbers(String name) {
            return list(name).stream().map(Long.class::cast).toList();
        }

        @SuppressWarnings("unchecked")
        List<Fields> objects(String name) {
            return list(name).stream().map(o -> new Fields((Map<String, Object>) o)).toList();
        }

        private List<?> list(String name) {
            Object v = map.get(name);
            return v == null ? List.of() : (List<?>) v;
        }
    }

    /** One JSON object being written, field by field; null strings and empty lists are left out. */
    private static final class Line {
        private final StringBuilder sb = new StringBuilder("{");

        Line string(String name, String value) {
            if (value != null) {
                Json.quote(name(name), value);
            }
            return this;
        }

        Line number(String name, long value) {
            name(name).append(value);
            return this;
        }

        Line raw(String name, String json) {
            name(name).append(json);
            return this;
        }

        Line strings(String name, List<String> values) {
            if (!values.isEmpty()) {
                name(name).append('[');
                for (int i = 0; i < values.size(); i++) {
                    if (i > 0) {
                        sb.append(',');
                    }
                    Json.quote(sb, values.get(i));
                }
                sb.append(']');
            }
            return this;
        }

        <T> Line array(String name, List<T> items, BiConsumer<T, Line> fields) {
            name(name).append('[');
            for (int i = 0; i < items.size(); i++) {
                if (i > 0) {
                    sb.append(',');
                }
                Line item = new Line();
                fields.accept(items.get(i), item);
                sb.append(item.end());
            }
            sb.append(']');
            return this;
        }

        String end() {
            return sb.append('}').toString();
        }

        private StringBuilder name(String name) {
            if (sb.length() > 1) {
                sb.append(',');
            }
            Json.quote(sb, name);
            return sb.append(':');
        }
    }
}
