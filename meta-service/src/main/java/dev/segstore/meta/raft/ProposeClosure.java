package dev.segstore.meta.raft;

import com.alipay.sofa.jraft.Closure;
import com.alipay.sofa.jraft.Status;
import dev.segstore.meta.state.CommandResult;

import java.util.concurrent.CompletableFuture;
import java.util.function.Function;

/** Completes a proposer's future with the command's result once it is applied, or fails it. */
final class ProposeClosure implements Closure {
    private final CompletableFuture<CommandResult> future;
    private final Function<Status, RuntimeException> onFailure;
    private volatile CommandResult result;

    ProposeClosure(CompletableFuture<CommandResult> future, Function<Status, RuntimeException> onFailure) {
        this.future = future;
        this.onFailure = onFailure;
    }

    void result(CommandResult r) {
        this.result = r;
    }

    @Override
    public void run(Status status) {
        if (status.isOk() && result != null) {
            future.complete(result);
        } else {
            future.completeExceptionally(onFailure.apply(status));
        }
    }
}
