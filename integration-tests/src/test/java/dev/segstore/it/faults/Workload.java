package dev.segstore.it.faults;

/**
 * The clients of a {@link Schedule}: how many processes of each kind, what they do, and the seed of their
 * choices (offsets, keys, tags, batch sizes). Each process has its own adapter (a broker of its own).
 *
 * @param writers   processes that write (one record, or a batch of 2-8)
 * @param readers   processes that read by offset, key or tag
 * @param deleter   whether a process deletes by offset or by key
 * @param committer whether a process commits and reads group offsets
 */
record Workload(int writers, int readers, boolean deleter, boolean committer, Mix mix, long seed) {
    /**
     * The operation mix, each a percentage of its process's operations.
     *
     * @param batch     writers: batchWrite (else write)
     * @param keyRead   readers: readByKey
     * @param tagRead   readers: readByTag (the rest read by offset)
     * @param keyDelete deleter: deleteByKey (else deleteByOffset)
     * @param commit    committer: commitOffset (else getOffsetByGroup)
     */
    record Mix(int batch, int keyRead, int tagRead, int keyDelete, int commit) {
    }

    @Override
    public String toString() {
        StringBuilder b = new StringBuilder();
        b.append(writers).append(writers == 1 ? " writer" : " writers").append(" (batchWrite ").append(mix.batch).append("%)");
        if (readers > 0) {
            b.append(", ").append(readers).append(readers == 1 ? " reader" : " readers").append(" (readByKey ")
                    .append(mix.keyRead).append("%, readByTag ").append(mix.tagRead).append("%, readByOffset the rest)");
        }
        if (deleter) {
            b.append(", a deleter (deleteByKey ").append(mix.keyDelete).append("%)");
        }
        if (committer) {
            b.append(", a group committer (commitOffset ").append(mix.commit).append("%)");
        }
        return b.append("; seed ").append(seed).toString();
    }
}
