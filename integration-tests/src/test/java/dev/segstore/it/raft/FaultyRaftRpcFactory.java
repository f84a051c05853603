package dev.segstore.it.raft;

import com.alipay.sofa.jraft.ReplicatorGroup;
import com.alipay.sofa.jraft.error.RemotingException;
import com.alipay.sofa.jraft.option.RpcOptions;
import com.alipay.sofa.jraft.rpc.InvokeCallback;
import com.alipay.sofa.jraft.rpc.InvokeContext;
import com.alipay.sofa.jraft.rpc.RaftRpcFactory;
import com.alipay.sofa.jraft.rpc.RpcClient;
import com.alipay.sofa.jraft.rpc.RpcResponseFactory;
import com.alipay.sofa.jraft.rpc.RpcServer;
import com.alipay.sofa.jraft.rpc.impl.BoltRaftRpcFactory;
import com.alipay.sofa.jraft.util.Endpoint;
import com.alipay.sofa.jraft.util.SPI;
import com.google.protobuf.Descriptors;
import com.google.protobuf.Message;

import java.nio.file.Path;

/**
 * The jraft transport of the test class path (test only; issue 12): sofa-jraft's own {@link BoltRaftRpcFactory}
 * with every {@link RpcClient} it makes wrapped, so that the harness can cut meta <-> meta Raft links
 * ({@link RaftLinkFaults}), which a TCP proxy cannot (docs/fault-proxy.md). jraft loads its factory by SPI
 * ({@code JRaftServiceLoader.load(RaftRpcFactory.class).first()}, the highest {@code @SPI} priority; bolt's is 0),
 * and {@code META-INF/services/com.alipay.sofa.jraft.rpc.RaftRpcFactory} in integration-tests' test resources names
 * this one, so the in-JVM clusters and the meta processes the process harness starts on that class path use it;
 * production has no such file and uses bolt unchanged.
 *
 * <p>A request whose sender ({@code server_id}) and target ({@code peer_id}) form a cut link fails as bolt fails
 * a request it cannot connect for: {@code invokeSync} and {@code invokeAsync} throw a {@link RemotingException}
 * at once, and jraft's caller ({@code AbstractClientService.invokeWithDone}) runs the request's closure with
 * EINTERNAL on another thread, as after a refused connection. Requests without those fields (pings, CLI calls,
 * snapshot file reads) pass, and so does everything while no link is cut. Answers are never touched: a one-way
 * cut of A -> B loses A's requests to B while B's requests reach A and A's answers reach B.
 */
@SPI(priority = 100)
public final class FaultyRaftRpcFactory implements RaftRpcFactory {
    private final BoltRaftRpcFactory bolt = new BoltRaftRpcFactory();

    public FaultyRaftRpcFactory() {
        String file = System.getProperty(RaftLinkFaults.FILE_PROPERTY, "");
        if (!file.isBlank()) {
            RaftLinkFaults.watch(Path.of(file));
        }
    }

    @Override
    public void registerProtobufSerializer(String className, Object... args) {
        bolt.registerProtobufSerializer(className, args);
    }

    @Override
    public RpcClient createRpcClient(ConfigHelper<RpcClient> helper) {
        return new LinkFaultClient(bolt.createRpcClient(helper));
    }

    @Override
    public RpcServer createRpcServer(Endpoint endpoint, ConfigHelper<RpcServer> helper) {
        return bolt.createRpcServer(endpoint, helper);
    }

    @Override
    public RpcResponseFactory getRpcResponseFactory() {
        return bolt.getRpcResponseFactory();
    }

    @Override
    public boolean isReplicatorPipelineEnabled() {
        return bolt.isReplicatorPipelineEnabled();
    }

    @Override
    public void ensurePipeline() {
        bolt.ensurePipeline();
    }

    @Override
    public ConfigHelper<RpcClient> defaultJRaftClientConfigHelper(RpcOptions opts) {
        return bolt.defaultJRaftClientConfigHelper(opts);
    }

    @Override
    public ConfigHelper<RpcServer> defaultJRaftServerConfigHelper(RpcOptions opts) {
        return bolt.defaultJRaftServerConfigHelper(opts);
    }

    /**
     * The cut link {@code request} would cross, as "from -> to", or null if it passes (no rule, or not a Raft
     * request naming its sender and target).
     */
    static String cutLink(Object request) {
        if (RaftLinkFaults.cutLinks().isEmpty() || !(request instanceof Message m)) {
            return null;
        }
        String from = stringField(m, "server_id");
        String to = stringField(m, "peer_id");
        if (from == null || to == null || !RaftLinkFaults.isCut(from, to)) {
            return null;
        }
        return from + " -> " + to;
    }

    private static String stringField(Message m, String name) {
        Descriptors.FieldDescriptor f = m.getDescriptorForType().findFieldByName(name);
        if (f == null || f.isRepeated() || f.getJavaType() != Descriptors.FieldDescriptor.JavaType.STRING || !m.hasField(f)) {
            return null;
        }
        String value = (String) m.getField(f);
        return value.isEmpty() ? null : value;
    }

    /** Bolt's client, failing the requests of cut links; everything else is passed through as it is. */
    static final class LinkFaultClient implements RpcClient {
        private final RpcClient delegate;

        LinkFaultClient(RpcClient delegate) {
            this.delegate = delegate;
        }

        private static void failIfCut(Endpoint endpoint, Object request) throws RemotingException {
            String link = cutLink(request);
            if (link != null) {
                throw new RemotingException("Raft link " + link + " is cut (test fault): " + request.getClass().getSimpleName()
                        + " to " + endpoint + " lost");
            }
        }

        @Override
        public boolean init(RpcOptions opts) {
            return delegate.init(opts);
        }

        @Override
        public void shutdown() {
            delegate.shutdown();
        }

        @Override
        public boolean checkConnection(Endpoint endpoint) {
            return delegate.checkConnection(endpoint);
        }

        @Override
        public boolean checkConnection(Endpoint endpoint, boolean createIfAbsent) {
            return delegate.checkConnection(endpoint, createIfAbsent);
        }

        @Override
        public void closeConnection(Endpoint endpoint) {
            delegate.closeConnection(endpoint);
        }

        @Override
        public void registerConnectEventListener(ReplicatorGroup replicatorGroup) {
            delegate.registerConnectEventListener(replicatorGroup);
        }

        @Override
        public Object invokeSync(Endpoint endpoint, Object request, InvokeContext ctx, long timeoutMs)
                throws InterruptedException, RemotingException {
            failIfCut(endpoint, request);
            return delegate.invokeSync(endpoint, request, ctx, timeoutMs);
        }

        @Override
        public void invokeAsync(Endpoint endpoint, Object request, InvokeContext ctx, InvokeCallback callback, long timeoutMs)
                throws InterruptedException, RemotingException {
            failIfCut(endpoint, request);
            delegate.invokeAsync(endpoint, request, ctx, callback, timeoutMs);
        }
    }
}
