package dev.segstore.meta.raft;

import com.alipay.sofa.jraft.Closure;
import com.alipay.sofa.jraft.Iterator;
import com.alipay.sofa.jraft.Status;
import com.alipay.sofa.jraft.core.StateMachineAdapter;
import com.alipay.sofa.jraft.error.RaftError;
import com.alipay.sofa.jraft.storage.snapshot.SnapshotReader;
import com.alipay.sofa.jraft.storage.snapshot.SnapshotWriter;
import com.google.protobuf.InvalidProtocolBufferException;
import dev.segstore.meta.state.CommandResult;
import dev.segstore.meta.state.MetaState;
import dev.segstore.protocol.meta.Command;
import dev.segstore.protocol.meta.MetaSnapshot;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.zip.CRC32C;

/**
 * Bridges sofa-jraft to {@link MetaState}: applies committed log entries in order on jraft's apply thread,
 * hands each local proposer its result, and saves and loads snapshots.
 *
 * <p>A snapshot copies the state on the apply thread (a consistent cut at the snapshot's index) and writes the
 * file on a separate thread, so applying continues while it is written. Snapshot file {@code meta.snapshot}:
 * <pre>
 *  0  u32 magic "SGMS"   4 u16 version 1   6 u16 reserved   8 i64 length   16 MetaSnapshot protobuf   .. u32 crc32c of all before
 * </pre>
 */
public final class MetaStateMachine extends StateMachineAdapter {
    private static final Logger LOG = LoggerFactory.getLogger(MetaStateMachine.class);
    static final String SNAPSHOT_FILE = "meta.snapshot";
    static final int SNAPSHOT_MAGIC = 0x53474D53;

    private final String name;
    private final MetaState state;
    private final LeaderListener listener;
    private final SnapshotFiles files;
    private final ExecutorService snapshotWriter = Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "meta-snapshot-writer");
        t.setDaemon(true);
        return t;
    });
    private volatile long appliedIndex;
    private volatile ApplyObserver observer = ApplyObserver.NONE;

    /**
     * Told of every command applied and every snapshot loaded, on jraft's apply thread, right after the state
     * changed: it must return at once and never call back into jraft (hand anything else to another thread).
     */
    public interface ApplyObserver {
        ApplyObserver NONE = new ApplyObserver() {
            @Override
            public void applied(Command command, long metadataVersion) {
            }

            @Override
            public void restored(long metadataVersion) {
            }
        };

        /** {@code command} was applied; the state's metadata version is now {@code metadataVersion}. */
        void applied(Command command, long metadataVersion);

        /** A snapshot replaced the state, which is now at {@code metadataVersion}. */
        void restored(long metadataVersion);
    }

    /** Told when this node becomes or stops being the Raft leader (the controller runs only on the leader). */
    public interface LeaderListener {
        void onLeaderStart(long term);

        void onLeaderStop();
    }

    public MetaStateMachine(String name, MetaState state, LeaderListener listener) {
        this(name, state, listener, SnapshotFiles.DEFAULT);
    }

    MetaStateMachine(String name, MetaState state, LeaderListener listener, SnapshotFiles files) {
        this.name = name;
        this.state = state;
        this.listener = listener;
        this.files = files;
    }

    /** The leader listener (its monitor orders leadership events against the server's start-up). */
    public LeaderListener listener() {
        return listener;
    }

    /** Sets the observer of applied commands ({@link ApplyObserver}); none by default. */
    public void observe(ApplyObserver observer) {
        this.observer = observer;
    }

    public long appliedIndex() {
        return appliedIndex;
    }

    @Override
    public void onApply(Iterator iter) {
        while (iter.hasNext()) {
            Command command;
            try {
                command = Command.parseFrom(iter.getData());
            } catch (InvalidProtocolBufferException e) {
                // Skipping an entry would make this replica differ from the others: stop instead.
                LOG.error("Undecodable meta-service log entry at index {}; stopping the state machine", iter.getIndex(), e);
                iter.setErrorAndRollback(1, new Status(RaftError.ESTATEMACHINE, "undecodable entry: %s", e.getMessage()));
                return;
            }
            String beyond = state.beyondThisBuild(command);
            if (beyond != null) {
                // A feature level or close rules this build does not know: it cannot apply them (and what follows) as the others do.
                LOG.error("Meta-service log entry at index {}: {}; stopping the state machine", iter.getIndex(), beyond);
                iter.setErrorAndRollback(1, new Status(RaftError.ESTATEMACHINE, "%s", beyond));
                return;
            }
            CommandResult result = state.apply(command);
            appliedIndex = iter.getIndex();
            observer.applied(command, state.appliedCommands());
            Closure done = iter.done();
            if (done instanceof ProposeClosure p) {
                p.result(result);
            }
            if (done != null) {
                done.run(Status.OK());
            }
            iter.next();
        }
    }

    @Override
    public void onSnapshotSave(SnapshotWriter writer, Closure done) {
        byte[] body = state.snapshot().toByteArray(); // the cut, on the apply thread
        snapshotWriter.execute(() -> {
            try {
                // Durable before jraft publishes it: jraft then drops the log up to the snapshot's index, so a
                // snapshot file lost in a power failure would lose those commands.
                Path file = Path.of(writer.getPath(), SNAPSHOT_FILE);
                files.write(file, frame(body));
                files.forceFile(file);
                files.forceDirectory(file.getParent());
                if (writer.addFile(SNAPSHOT_FILE)) {
                    done.run(Status.OK());
                } else {
                    done.run(new Status(RaftError.EIO, "could not add the snapshot file"));
                }
            } catch (IOException e) {
                done.run(new Status(RaftError.EIO, "writing the snapshot failed: %s", e.toString()));
            }
        });
    }

    @Override
    public boolean onSnapshotLoad(SnapshotReader reader) {
        if (reader.getFileMeta(SNAPSHOT_FILE) == null) {
            LOG.error("Snapshot at {} has no {}", reader.getPath(), SNAPSHOT_FILE);
            return false;
        }
        try {
            byte[] bytes = Files.readAllBytes(Path.of(reader.getPath(), SNAPSHOT_FILE));
            state.restore(MetaSnapshot.parseFrom(unframe(bytes)));
            observer.restored(state.appliedCommands());
            LOG.info("Meta node {} loaded snapshot {}: {} shards, {} storage nodes", name, reader.getPath(), state.shardCount(), state.nodes().size());
            return true;
        } catch (IOException | RuntimeException e) {
            LOG.error("Cannot load snapshot from {}", reader.getPath(), e);
            return false;
        }
    }

    static byte[] frame(byte[] body) {
        ByteBuffer buf = ByteBuffer.allocate(16 + body.length + 4);
        buf.putInt(SNAPSHOT_MAGIC).putShort((short) 1).putShort((short) 0).putLong(body.length).put(body);
        CRC32C crc = new CRC32C();
        crc.update(buf.array(), 0, buf.position());
        buf.putInt((int) crc.getValue());
        return buf.array();
    }

    static byte[] unframe(byte[] bytes) throws IOException {
        ByteBuffer buf = ByteBuffer.wrap(bytes);
        if (bytes.length < 20 || buf.getInt(0) != SNAPSHOT_MAGIC || buf.getShort(4) != 1 || buf.getLong(8) != bytes.length - 20) {
            throw new IOException("not a version-1 meta snapshot (" + bytes.length + " bytes)");
        }
        CRC32C crc = new CRC32C();
        crc.update(bytes, 0, bytes.length - 4);
        if ((int) crc.getValue() != buf.getInt(bytes.length - 4)) {
            throw new IOException("meta snapshot checksum mismatch");
        }
        byte[] body = new byte[bytes.length - 20];
        buf.position(16).get(body);
        return body;
    }

    @Override
    public void onLeaderStart(long term) {
        LOG.info("Meta node {} is now the Raft leader (term {})", name, term);
        listener.onLeaderStart(term);
    }

    @Override
    public void onLeaderStop(Status status) {
        LOG.info("Meta node {} is no longer the Raft leader: {}", name, status);
        listener.onLeaderStop();
    }

    @Override
    public void onShutdown() {
        snapshotWriter.shutdown();
    }
}
