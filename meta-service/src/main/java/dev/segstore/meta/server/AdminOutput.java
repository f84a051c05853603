package dev.segstore.meta.server;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.ListValue;
import com.google.protobuf.MessageOrBuilder;
import com.google.protobuf.NullValue;
import com.google.protobuf.Struct;
import com.google.protobuf.Value;
import com.google.protobuf.util.JsonFormat;

import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What {@code segstore-admin --output json} prints: the meta-service's messages as protobuf's canonical JSON
 * mapping (field names in lowerCamelCase, 64-bit numbers as strings, fields at their default values included), or,
 * for the commands that combine several answers, an object built here. One JSON document per command, on stdout.
 */
final class AdminOutput {
    private static final JsonFormat.Printer PRINTER = JsonFormat.printer().includingDefaultValueFields();

    private AdminOutput() {
    }

    /** The message as JSON. */
    static String json(MessageOrBuilder m) {
        try {
            return PRINTER.print(m);
        } catch (InvalidProtocolBufferException e) {
            throw new IllegalStateException("cannot print a " + m.getClass().getSimpleName() + " as JSON: " + e.getMessage(), e);
        }
    }

    /** An object with these fields, in order: strings, numbers, booleans, messages, collections and maps of them. */
    static Struct object(Object... keysAndValues) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < keysAndValues.length; i += 2) {
            m.put((String) keysAndValues[i], keysAndValues[i + 1]);
        }
        return struct(m);
    }

    static Struct struct(Map<String, ?> fields) {
        Struct.Builder b = Struct.newBuilder();
        fields.forEach((k, v) -> b.putFields(k, value(v)));
        return b.build();
    }

    private static Value value(Object v) {
        if (v == null) {
            return Value.newBuilder().setNullValue(NullValue.NULL_VALUE).build();
        }
        if (v instanceof Value value) {
            return value;
        }
        if (v instanceof Struct s) {
            return Value.newBuilder().setStructValue(s).build();
        }
        if (v instanceof String s) {
            return Value.newBuilder().setStringValue(s).build();
        }
        if (v instanceof Boolean bool) {
            return Value.newBuilder().setBoolValue(bool).build();
        }
        if (v instanceof Number n) {
            return Value.newBuilder().setNumberValue(n.doubleValue()).build();
        }
        if (v instanceof Map<?, ?> map) {
            Map<String, Object> m = new LinkedHashMap<>();
            map.forEach((k, x) -> m.put(String.valueOf(k), x));
            return Value.newBuilder().setStructValue(struct(m)).build();
        }
        if (v instanceof Collection<?> c) {
            ListValue.Builder l = ListValue.newBuilder();
            c.forEach(x -> l.addValues(value(x)));
            return Value.newBuilder().setListValue(l).build();
        }
        if (v instanceof MessageOrBuilder m) {
            Struct.Builder s = Struct.newBuilder();
            try {
                JsonFormat.parser().merge(json(m), s);
            } catch (InvalidProtocolBufferException e) {
                throw new IllegalStateException(e);
            }
            return Value.newBuilder().setStructValue(s).build();
        }
        return Value.newBuilder().setStringValue(v.toString()).build();
    }
}
