package dev.segstore.client;

import dev.segstore.adapter.ErrorCode;
import dev.segstore.adapter.StorageException;
import dev.segstore.log.LogRecord;
import dev.segstore.log.format.FormatException;
import dev.segstore.log.format.RecordBatch;
import dev.segstore.protocol.NodeMethods;
import dev.segstore.protocol.node.FetchRequest;
import dev.segstore.protocol.node.FetchResponse;
import dev.segstore.protocol.rpc.RpcClient;

import java.nio.ByteBuffer;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;

/**
 * A consumer's {@code node.Fetch} (docs/wire-protocol.md): the node sends whole batches from its log file as
 * the answer's attachment, without copying, and the deleted offsets in their range; this side checks each
 * batch's checksum (the one the leader wrote: end to end) and decodes the live records.
 *
 * @param records    the live records from the requested offset, in order, at most as many as asked
 * @param nextOffset where to read on: past the records returned (and the deleted ones among them); the
 *                   requested offset when there is nothing more below the high watermark
 * @param sealedEnd  where the segment ends, when the node says it is sealed (node.proto, FetchResponse.sealed);
 *                   -1 when it is open as far as the node knows
 */
public record ConsumerFetch(List<LogRecord> records, long nextOffset, long highWatermark, long sealedEnd) {

    /** Sends {@code request} (a consumer fetch: replica id -1) to {@code address} and decodes the answer. */
    public static CompletableFuture<ConsumerFetch> call(RpcClient rpc, String address, FetchRequest request, long timeoutMs) {
        return rpc.callWithAttachment(address, NodeMethods.FETCH, request, FetchResponse.parser(), timeoutMs)
                .thenApply(a -> decode(a.message(), a.attachment(), request.getOffset(),
                        request.getMaxRecords() <= 0 ? Integer.MAX_VALUE : request.getMaxRecords()));
    }

    /** The live records of an answer to a fetch from {@code offset}. */
    public static ConsumerFetch decode(FetchResponse response, ByteBuffer batches, long offset, int maxRecords) {
        Set<Long> deleted = new HashSet<>(response.getDeletedList());
        try {
            List<LogRecord> records = RecordBatch.decodeBatches(batches, offset, response.getNextOffset(), deleted::contains, maxRecords);
            long next = records.size() == maxRecords
                    ? records.get(records.size() - 1).offset() + 1 // full: later records of the last batch are read next time
                    : Math.max(offset, response.getNextOffset());
            return new ConsumerFetch(records, next, response.getHighWatermark(), response.getSealed() ? response.getSealedEnd() : -1);
        } catch (FormatException e) {
            throw new StorageException(ErrorCode.CORRUPT_DATA, "fetched batches from offset " + offset + " are damaged: " + e.getMessage());
        }
    }
}
