package dev.segstore.node.server;

import org.junit.jupiter.api.Timeout;

import java.util.concurrent.TimeUnit;

/**
 * {@link BatchedFetchClusterTest} with fetch sessions ({@code replica.fetch.sessions=true}): the same segments, data,
 * watermarks, progress, tombstones and truncation, through entries parked at the leader.
 */
@Timeout(value = 240, unit = TimeUnit.SECONDS)
class FetchSessionsClusterTest extends BatchedFetchClusterTest {
    @Override
    boolean sessions() {
        return true;
    }
}
