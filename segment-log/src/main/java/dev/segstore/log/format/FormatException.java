package dev.segstore.log.format;

/**
 * Bytes that do not follow the format: thrown by decoders, turned into
 * {@link dev.segstore.log.LogException.Kind#CORRUPT_DATA} with the file and position by whoever read the bytes.
 */
public final class FormatException extends RuntimeException {
    public FormatException(String message) {
        super(message);
    }
}
