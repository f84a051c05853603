package dev.segstore.log;

import java.util.Objects;

/** A record header: name and value, both text. */
public record LogHeader(String name, String value) {
    public LogHeader {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(value, "value");
    }
}
