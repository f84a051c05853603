package dev.segstore.chaos;

import org.junit.jupiter.api.Test;

import java.util.Collections;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class JsonTest {
    @Test
    void parsesWhatAHistoryNeeds() {
        assertEquals(Map.of("a", List.of(1L, -2L), "b", "x\"y\u00e9\n", "c", true, "d", Map.of()),
                Json.parse(" {\"a\": [1, -2], \"b\": \"x\\\"y\\u00e9\\n\", \"c\": true, \"d\": {}} "));
        assertEquals(Collections.singletonMap("n", null), Json.parse("{\"n\":null}"));
    }

    @Test
    void quotingAndParsingAreInverse() {
        String s = "tab\t quote\" back\\ ctl\u0002 newline\n unicode \u4e2d";
        StringBuilder sb = new StringBuilder();
        Json.quote(sb, s);
        assertEquals(s, Json.parse(sb.toString()));
    }

    @Test
    void refusesWhatItDoesNotKnow() {
        assertThrows(IllegalArgumentException.class, () -> Json.parse("1.5"));
        assertThrows(IllegalArgumentException.class, () -> Json.parse("{\"a\":1"));
        assertThrows(IllegalArgumentException.class, () -> Json.parse("[1] x"));
        assertThrows(IllegalArgumentException.class, () -> Json.parse("\"open"));
    }
}
