package dev.segstore.chaos;

/** Record {@code position} of write operation {@code op}: what the checker knows of one payload's write. */
record Written(Op op, int position) {
    WrittenRecord record() {
        return op.invocation().records().get(position);
    }

    String shard() {
        return op.shard();
    }

    String payload() {
        return record().payload();
    }

    boolean acknowledged() {
        return op.isOk();
    }

    /** The offset the write was acknowledged at; only if {@link #acknowledged()}. */
    long ackOffset() {
        return op.result().offsets().get(position);
    }

    /** When the write completed if acknowledged, else {@link Long#MAX_VALUE}. */
    long ackNanos() {
        return acknowledged() ? op.completeNanos() : Long.MAX_VALUE;
    }
}
