package dev.segstore.adapter;

import java.util.Objects;

/** One record header: a name and a value, both text. A record may carry one name more than once. */
public record Header(String name, String value) {
    public Header {
        Objects.requireNonNull(name, "header name");
        Objects.requireNonNull(value, "header value");
    }
}
