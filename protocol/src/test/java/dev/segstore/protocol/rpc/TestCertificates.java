package dev.segstore.protocol.rpc;

import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.ContentSigner;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

import java.io.IOException;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.spec.ECGenParameterSpec;
import java.time.Duration;
import java.time.Instant;
import java.util.Base64;
import java.util.Date;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A certificate authority made at test time (BouncyCastle, no shell {@code openssl}), and certificates it signs,
 * written as the PEM files a process's {@code tls.*} settings name. EC P-256 keys: fast to make.
 */
public final class TestCertificates {
    private static final AtomicLong SERIALS = new AtomicLong(System.nanoTime());

    /** PEM files of one identity: its certificate, its PKCS#8 key, and the authority that signed it. */
    public record Identity(Path cert, Path key, Path ca) {
        /** A server's and client's configuration: this identity, trusting its authority, client certificates required. */
        public TlsConfig config() {
            return new TlsConfig(cert, key, ca, true, true);
        }
    }

    private final Path dir;
    private final X500Name caName;
    private final KeyPair caKeys;
    private final Path caFile;

    /** A new authority named {@code name}, its certificate written to {@code dir/name-ca.pem}. */
    public TestCertificates(Path dir, String name) throws IOException, GeneralSecurityException {
        this.dir = Files.createDirectories(dir);
        this.caName = new X500Name("CN=" + name + " test CA");
        this.caKeys = keys();
        JcaX509v3CertificateBuilder b = new JcaX509v3CertificateBuilder(caName, serial(), notBefore(), notAfter(), caName, caKeys.getPublic());
        b.addExtension(Extension.basicConstraints, true, new BasicConstraints(true));
        b.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign));
        this.caFile = dir.resolve(name + "-ca.pem");
        writePem(caFile, "CERTIFICATE", b.build(signer()).getEncoded());
    }

    public Path caFile() {
        return caFile;
    }

    /**
     * A certificate for {@code name} signed by this authority, good for servers and clients, naming 127.0.0.1 and
     * localhost (so host name checks pass on loopback); files {@code dir/name.pem} and {@code dir/name-key.pem}.
     */
    public Identity issue(String name) throws IOException, GeneralSecurityException {
        return issue(name, new GeneralName(GeneralName.iPAddress, "127.0.0.1"), new GeneralName(GeneralName.dNSName, "localhost"));
    }

    /** As {@link #issue(String)}, naming only {@code names} (a certificate for another host, say). */
    public Identity issue(String name, GeneralName... names) throws IOException, GeneralSecurityException {
        KeyPair keys = keys();
        JcaX509v3CertificateBuilder b = new JcaX509v3CertificateBuilder(caName, serial(), notBefore(), notAfter(),
                new X500Name("CN=" + name), keys.getPublic());
        b.addExtension(Extension.basicConstraints, true, new BasicConstraints(false));
        b.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.digitalSignature | KeyUsage.keyEncipherment));
        b.addExtension(Extension.extendedKeyUsage, false,
                new ExtendedKeyUsage(new KeyPurposeId[]{KeyPurposeId.id_kp_serverAuth, KeyPurposeId.id_kp_clientAuth}));
        b.addExtension(Extension.subjectAlternativeName, false, new GeneralNames(names));
        X509CertificateHolder cert = b.build(signer());
        Path certFile = dir.resolve(name + ".pem");
        Path keyFile = dir.resolve(name + "-key.pem");
        writePem(certFile, "CERTIFICATE", cert.getEncoded());
        writePem(keyFile, "PRIVATE KEY", keys.getPrivate().getEncoded()); // PKCS#8
        return new Identity(certFile, keyFile, caFile);
    }

    private ContentSigner signer() throws GeneralSecurityException {
        try {
            return new JcaContentSignerBuilder("SHA256withECDSA").build(caKeys.getPrivate());
        } catch (org.bouncycastle.operator.OperatorCreationException e) {
            throw new GeneralSecurityException(e);
        }
    }

    private static KeyPair keys() throws GeneralSecurityException {
        KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
        g.initialize(new ECGenParameterSpec("secp256r1"));
        return g.generateKeyPair();
    }

    private static BigInteger serial() {
        return BigInteger.valueOf(SERIALS.incrementAndGet());
    }

    private static Date notBefore() {
        return Date.from(Instant.now().minus(Duration.ofHours(1)));
    }

    private static Date notAfter() {
        return Date.from(Instant.now().plus(Duration.ofDays(2)));
    }

    private static void writePem(Path file, String type, byte[] der) throws IOException {
        String body = Base64.getMimeEncoder(64, "\n".getBytes(StandardCharsets.US_ASCII)).encodeToString(der);
        Files.writeString(file, "-----BEGIN " + type + "-----\n" + body + "\n-----END " + type + "-----\n", StandardCharsets.US_ASCII);
    }
}
