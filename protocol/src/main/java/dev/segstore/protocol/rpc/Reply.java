package dev.segstore.protocol.rpc;

import com.google.protobuf.Message;

/** An answer with an attachment: a handler may complete its future with one instead of a plain message. */
public record Reply(Message message, Attachment attachment) {
}
