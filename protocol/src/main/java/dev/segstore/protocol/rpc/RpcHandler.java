package dev.segstore.protocol.rpc;

import com.google.protobuf.Message;
import com.google.protobuf.Parser;

import java.util.concurrent.CompletableFuture;
import java.util.function.Function;

/**
 * Serves one method: parses the request, answers with a future of a {@link Message}, or of a {@link Reply}
 * (a message with an attachment). A handler that fails the future with an {@link RpcException} answers with
 * that error; any other failure answers INTERNAL.
 */
public record RpcHandler<Q extends Message>(String method, Parser<Q> parser,
                                            Function<Q, ? extends CompletableFuture<?>> handle) {
    public static <Q extends Message> RpcHandler<Q> of(String method, Parser<Q> parser,
                                                       Function<Q, ? extends CompletableFuture<?>> handle) {
        return new RpcHandler<>(method, parser, handle);
    }
}
