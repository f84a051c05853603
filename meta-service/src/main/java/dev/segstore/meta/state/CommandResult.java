package dev.segstore.meta.state;

import com.google.protobuf.Message;
import dev.segstore.adapter.ErrorCode;

/**
 * What applying one command produced: a message for the proposer, or an error with a stable code. Every
 * replica computes the same result; only the proposer's is sent anywhere.
 */
public record CommandResult(ErrorCode error, String message, Message value) {
    public static CommandResult ok(Message value) {
        return new CommandResult(null, null, value);
    }

    public static CommandResult fail(ErrorCode error, String message) {
        return new CommandResult(error, message, null);
    }

    public boolean isOk() {
        return error == null;
    }
}
