package dev.segstore.meta.server;

import dev.segstore.protocol.rpc.TlsConfig;
import picocli.CommandLine.Option;

import java.nio.file.Path;

/**
 * The TLS options of the command-line tools (a picocli mixin): with {@code --tls-ca} they call the cluster over
 * TLS, presenting {@code --tls-cert}/{@code --tls-key} where the servers require client certificates
 * (docs/security.md).
 */
public final class TlsOptions {
    @Option(names = "--tls-ca", paramLabel = "PEM", description = "call over TLS, trusting the authorities in this PEM file")
    Path ca;

    @Option(names = "--tls-cert", paramLabel = "PEM", description = "this client's certificate chain (PEM), for servers that require one")
    Path cert;

    @Option(names = "--tls-key", paramLabel = "PEM", description = "the PKCS#8 private key (PEM) of --tls-cert")
    Path key;

    @Option(names = "--tls-no-verify-hostname", description = "do not check that server certificates name the host dialled")
    boolean noVerifyHostname;

    /** The client configuration, or null without {@code --tls-ca}; a bad combination fails with a clear message. */
    public TlsConfig config() {
        if (ca == null) {
            if (cert != null || key != null) {
                throw new IllegalArgumentException("--tls-cert and --tls-key need --tls-ca");
            }
            return null;
        }
        TlsConfig c = new TlsConfig(cert, key, ca, false, !noVerifyHostname);
        c.clientContext(); // the files load
        return c;
    }
}
