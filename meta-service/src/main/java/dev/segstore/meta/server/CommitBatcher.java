package dev.segstore.meta.server;

import com.google.protobuf.Message;
import dev.segstore.protocol.meta.GroupOffset;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.function.Function;

/**
 * Batches group-offset commits under load: while one commit command is being replicated, later requests
 * queue up and go out together as the next command. With no load a commit goes out at once.
 */
final class CommitBatcher {
    private record Pending(List<GroupOffset> offsets, CompletableFuture<Message> future) {
    }

    private final Function<List<GroupOffset>, CompletableFuture<Message>> propose;
    private List<Pending> queued = new ArrayList<>();
    private boolean inFlight;

    CommitBatcher(Function<List<GroupOffset>, CompletableFuture<Message>> propose) {
        this.propose = propose;
    }

    CompletableFuture<Message> submit(List<GroupOffset> offsets) {
        CompletableFuture<Message> f = new CompletableFuture<>();
        synchronized (this) {
            queued.add(new Pending(offsets, f));
            if (inFlight) {
                return f;
            }
            inFlight = true;
        }
        sendNext();
        return f;
    }

    private void sendNext() {
        List<Pending> batch;
        synchronized (this) {
            if (queued.isEmpty()) {
                inFlight = false;
                return;
            }
            batch = queued;
            queued = new ArrayList<>();
        }
        List<GroupOffset> all = new ArrayList<>();
        batch.forEach(p -> all.addAll(p.offsets()));
        CompletableFuture<Message> sent;
        try {
            sent = propose.apply(all);
        } catch (RuntimeException e) {
            sent = CompletableFuture.failedFuture(e);
        }
        sent.whenComplete((m, e) -> {
            for (Pending p : batch) {
                if (e != null) {
                    p.future().completeExceptionally(e);
                } else {
                    p.future().complete(m);
                }
            }
            sendNext();
        });
    }
}
