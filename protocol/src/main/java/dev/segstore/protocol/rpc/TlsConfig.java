package dev.segstore.protocol.rpc;

import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;

import javax.net.ssl.SSLException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.function.UnaryOperator;

/**
 * TLS on the RPC ports (docs/security.md): this process's certificate chain and private key (PEM files: an X.509
 * chain, and a PKCS#8 key, unencrypted), and the certificate authorities it trusts (PEM). A server with
 * {@code requireClientAuth} asks every client for a certificate signed by one of those authorities (mutual TLS):
 * without one the handshake fails and no request is read. A client checks that the server's certificate names
 * the host it dialled (a subject alternative name, DNS or IP) unless {@code verifyHostname} is off. A client
 * without a certificate of its own (only a trust file) can reach servers that do not require one.
 *
 * @param certFile          PEM certificate chain of this process (required for a server; a client sends it when set)
 * @param keyFile           PEM PKCS#8 private key of {@code certFile}
 * @param caFile            PEM certificates of the authorities this process trusts for its peers
 * @param requireClientAuth a server refuses clients without a certificate signed by {@code caFile}
 * @param verifyHostname    a client checks the server certificate's names against the address it dialled
 */
public record TlsConfig(Path certFile, Path keyFile, Path caFile, boolean requireClientAuth, boolean verifyHostname) {
    /** The configuration keys, the same for every process (each prefixed by the caller's prefix, if any). */
    public static final List<String> KEYS = List.of("tls.enabled", "tls.cert.file", "tls.key.file", "tls.ca.file",
            "tls.client.auth", "tls.verify.hostname");

    public TlsConfig {
        if (caFile == null) {
            throw new IllegalArgumentException("tls.ca.file is required with TLS on");
        }
        if ((certFile == null) != (keyFile == null)) {
            throw new IllegalArgumentException("tls.cert.file and tls.key.file go together: set both or neither");
        }
        for (Path p : new Path[]{certFile, keyFile, caFile}) {
            if (p != null && !Files.isReadable(p)) {
                throw new IllegalArgumentException("TLS file " + p + " does not exist or cannot be read");
            }
        }
    }

    /** A client's configuration: trust {@code caFile}, present {@code certFile}/{@code keyFile} (both may be null). */
    public static TlsConfig client(Path caFile, Path certFile, Path keyFile) {
        return new TlsConfig(certFile, keyFile, caFile, false, true);
    }

    /**
     * Reads the {@code tls.*} settings through {@code get} (null when a key is absent): null when
     * {@code tls.enabled} is absent or false. {@code where} names the settings in error messages.
     */
    public static TlsConfig fromSettings(UnaryOperator<String> get, Path base, String where) {
        String enabled = trimmed(get.apply("tls.enabled"));
        if (enabled == null || enabled.equals("false")) {
            return null;
        }
        if (!enabled.equals("true")) {
            throw new IllegalArgumentException(where + ": tls.enabled = '" + enabled + "' must be true or false");
        }
        String auth = trimmed(get.apply("tls.client.auth"));
        boolean require = switch (auth == null ? "required" : auth.toLowerCase(Locale.ROOT)) {
            case "required" -> true;
            case "none" -> false;
            default -> throw new IllegalArgumentException(where + ": tls.client.auth = '" + auth + "' must be required or none");
        };
        String verify = trimmed(get.apply("tls.verify.hostname"));
        if (verify != null && !verify.equals("true") && !verify.equals("false")) {
            throw new IllegalArgumentException(where + ": tls.verify.hostname = '" + verify + "' must be true or false");
        }
        try {
            return new TlsConfig(path(get, "tls.cert.file", base), path(get, "tls.key.file", base), path(get, "tls.ca.file", base),
                    require, verify == null || verify.equals("true"));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(where + ": " + e.getMessage());
        }
    }

    private static Path path(UnaryOperator<String> get, String key, Path base) {
        String v = trimmed(get.apply(key));
        return v == null ? null : base.resolve(v);
    }

    private static String trimmed(String v) {
        return v == null || v.isBlank() ? null : v.trim();
    }

    /** The server side: needs this process's certificate and key. */
    public SslContext serverContext() {
        if (certFile == null) {
            throw new IllegalArgumentException("a TLS server needs tls.cert.file and tls.key.file");
        }
        try {
            return SslContextBuilder.forServer(certFile.toFile(), keyFile.toFile()).trustManager(caFile.toFile())
                    .clientAuth(requireClientAuth ? ClientAuth.REQUIRE : ClientAuth.NONE).build();
        } catch (SSLException | IllegalArgumentException e) {
            throw new IllegalArgumentException("cannot load the TLS certificate " + certFile + ", key " + keyFile + " or authorities "
                    + caFile + ": " + e.getMessage(), e);
        }
    }

    /** The client side: trusts {@code caFile}, and presents this process's certificate if it has one. */
    public SslContext clientContext() {
        try {
            SslContextBuilder b = SslContextBuilder.forClient().trustManager(caFile.toFile());
            if (certFile != null) {
                b.keyManager(certFile.toFile(), keyFile.toFile());
            }
            if (verifyHostname) {
                b.endpointIdentificationAlgorithm("HTTPS");
            }
            return b.build();
        } catch (SSLException | IllegalArgumentException e) {
            throw new IllegalArgumentException("cannot load the TLS authorities " + caFile + " or certificate " + certFile + ": "
                    + e.getMessage(), e);
        }
    }
}
