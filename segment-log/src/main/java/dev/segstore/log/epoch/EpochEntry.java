package dev.segstore.log.epoch;

/** Leader epoch {@code epoch} wrote its first record at {@code startOffset}. */
public record EpochEntry(int epoch, long startOffset) {
}
