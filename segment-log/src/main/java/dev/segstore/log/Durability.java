package dev.segstore.log;

/** When an append's future completes. */
public enum Durability {
    /** After the bytes are forced to disk (group commit). Survives a machine crash. */
    FSYNC,
    /** After the bytes are written to the page cache. Survives a process crash, not a machine crash. */
    PAGE_CACHE
}
