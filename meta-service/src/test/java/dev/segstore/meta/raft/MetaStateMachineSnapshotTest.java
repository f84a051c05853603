package dev.segstore.meta.raft;

import com.alipay.sofa.jraft.Status;
import com.alipay.sofa.jraft.entity.RaftOutter;
import com.alipay.sofa.jraft.storage.snapshot.SnapshotWriter;
import com.google.protobuf.Message;
import dev.segstore.meta.state.MetaState;
import dev.segstore.protocol.meta.Command;
import dev.segstore.protocol.meta.MetaSnapshot;
import dev.segstore.protocol.meta.RegisterNodeCommand;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Saving a meta snapshot: the file and its directory are forced to disk before the file is handed to jraft. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class MetaStateMachineSnapshotTest {
    @TempDir
    Path dir;

    private final List<String> events = new CopyOnWriteArrayList<>();

    /** Does the real file operations and records each, in order. */
    private final SnapshotFiles recording = new SnapshotFiles() {
        @Override
        public void write(Path file, byte[] bytes) throws IOException {
            Files.write(file, bytes);
            events.add("write " + file.getFileName());
        }

        @Override
        public void forceFile(Path file) throws IOException {
            events.add("force " + file.getFileName());
        }

        @Override
        public void forceDirectory(Path d) throws IOException {
            events.add("force directory " + (d.equals(dir) ? "snapshot dir" : d.toString()));
        }
    };

    /** The part of jraft's writer the state machine uses: the path, and addFile, recorded. */
    private final class RecordingWriter extends SnapshotWriter {
        @Override
        public boolean saveMeta(RaftOutter.SnapshotMeta meta) {
            return true;
        }

        @Override
        public boolean addFile(String fileName, Message fileMeta) {
            events.add("add " + fileName);
            return true;
        }

        @Override
        public boolean removeFile(String fileName) {
            return true;
        }

        @Override
        public void close(boolean keepDataOnError) {
        }

        @Override
        public void close() {
        }

        @Override
        public boolean init(Void opts) {
            return true;
        }

        @Override
        public void shutdown() {
        }

        @Override
        public String getPath() {
            return dir.toString();
        }

        @Override
        public Set<String> listFiles() {
            return Set.of();
        }

        @Override
        public Message getFileMeta(String fileName) {
            return null;
        }
    }

    @Test
    void theSnapshotFileAndItsDirectoryAreForcedBeforeTheFileIsPublished() throws Exception {
        MetaState state = new MetaState();
        state.apply(Command.newBuilder().setVersion(MetaState.VERSION).setTimestampMs(1)
                .setRegisterNode(RegisterNodeCommand.newBuilder().setNodeId(1).setHost("h").setPort(1)).build());
        MetaStateMachine fsm = new MetaStateMachine("test", state, new MetaStateMachine.LeaderListener() {
            @Override
            public void onLeaderStart(long term) {
            }

            @Override
            public void onLeaderStop() {
            }
        }, recording);
        try {
            CompletableFuture<Status> done = new CompletableFuture<>();
            fsm.onSnapshotSave(new RecordingWriter(), done::complete);
            Status status = done.get(10, TimeUnit.SECONDS);
            assertTrue(status.isOk(), status.toString());
            assertEquals(List.of("write meta.snapshot", "force meta.snapshot", "force directory snapshot dir", "add meta.snapshot"), events,
                    "the file and its directory must be durable before jraft publishes the snapshot");
            byte[] bytes = Files.readAllBytes(dir.resolve(MetaStateMachine.SNAPSHOT_FILE));
            assertEquals(state.snapshot(), MetaSnapshot.parseFrom(MetaStateMachine.unframe(bytes)));
        } finally {
            fsm.onShutdown();
        }
    }

    @Test
    void theRealFileOperationsWriteAndForce() throws Exception {
        Path file = dir.resolve("f");
        SnapshotFiles.DEFAULT.write(file, new byte[] {1, 2, 3});
        SnapshotFiles.DEFAULT.forceFile(file);
        SnapshotFiles.DEFAULT.forceDirectory(dir);
        assertEquals(3, Files.size(file));
    }
}
