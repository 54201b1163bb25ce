// BouncyCastle's EST client (org.bouncycastle.est, Debian libbcpkix-java) driven against
// iotpki's EST server by tests/est/test_bouncycastle.py. One operation per run:
//   java EstInterop <host:port> <trust.pem> <label|-> <tls: TLS|TLSv1.2|TLSv1.3> <op> <out> [options]
//   op: cacerts | csrattrs | simpleenroll | simplereenroll | serverkeygen
//   options: --basic user:password   --p12 file password   --subject "CN=..."
//            --key file (an "EC PRIVATE KEY" PEM to sign with instead of a new key: a
//            client sending the same request again after 202, RFC 7030 §4.2.3)
// Writes <out>.pem (certificates), <out>.key.pem (the key: client-made for enroll, the
// server's for serverkeygen), <out>.txt (csrattrs OIDs). Exit 0 on success, 2 with the
// EST status on an EST error, 3 when the request is pending (202; "retry after" printed).
import java.io.FileInputStream;
import java.io.FileReader;
import java.io.FileWriter;
import java.io.StringWriter;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.KeyStore;
import java.security.Security;
import java.security.cert.CertificateFactory;
import java.security.cert.TrustAnchor;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.util.Base64;
import java.util.Collections;
import java.util.HashMap;
import java.util.Map;

import javax.net.ssl.KeyManagerFactory;

import org.bouncycastle.asn1.ASN1ObjectIdentifier;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.est.CACertsResponse;
import org.bouncycastle.est.CSRRequestResponse;
import org.bouncycastle.est.ESTAuth;
import org.bouncycastle.est.ESTException;
import org.bouncycastle.est.ESTService;
import org.bouncycastle.est.EnrollmentResponse;
import org.bouncycastle.est.jcajce.JcaHttpAuthBuilder;
import org.bouncycastle.est.jcajce.JcaJceUtils;
import org.bouncycastle.est.jcajce.JsseESTServiceBuilder;
import org.bouncycastle.jce.provider.BouncyCastleProvider;
import org.bouncycastle.openssl.PEMKeyPair;
import org.bouncycastle.openssl.PEMParser;
import org.bouncycastle.openssl.jcajce.JcaPEMKeyConverter;
import org.bouncycastle.openssl.jcajce.JcaPEMWriter;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.bouncycastle.pkcs.PKCS10CertificationRequest;
import org.bouncycastle.pkcs.jcajce.JcaPKCS10CertificationRequestBuilder;

public final class EstInterop {
    public static void main(String[] args) throws Exception {
        Security.addProvider(new BouncyCastleProvider());  // BC's EST code asks for "BC"
        String server = args[0], trust = args[1], label = args[2], tls = args[3], op = args[4];
        String out = args[5];
        Map<String, String[]> options = new HashMap<>();
        for (int i = 6; i < args.length; i++) {
            if (args[i].equals("--p12")) {
                options.put("p12", new String[] {args[++i], args[++i]});
            } else {
                options.put(args[i].substring(2), new String[] {args[++i]});
            }
        }
        try {
            run(service(server, trust, label, tls, options.get("p12")), op, out, options);
        } catch (ESTException e) {
            System.err.println("EST error " + e.getStatusCode() + ": " + e.getMessage());
            System.exit(2);
        }
    }

    static ESTService service(String server, String trust, String label, String tls,
                              String[] p12) throws Exception {
        X509Certificate root;
        try (FileInputStream in = new FileInputStream(trust)) {
            root = (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(in);
        }
        JsseESTServiceBuilder builder = new JsseESTServiceBuilder(server,
                JcaJceUtils.getCertPathTrustManager(
                        Collections.singleton(new TrustAnchor(root, null)), null));
        builder.withTLSVersion(tls).withTimeout(30000);
        if (p12 != null) {
            KeyStore store = KeyStore.getInstance("PKCS12");
            try (FileInputStream in = new FileInputStream(p12[0])) {
                store.load(in, p12[1].toCharArray());
            }
            KeyManagerFactory factory = KeyManagerFactory.getInstance("SunX509");
            factory.init(store, p12[1].toCharArray());
            builder.withKeyManagers(factory.getKeyManagers());
        }
        if (!label.equals("-")) {
            builder.withLabel(label);
        }
        return builder.build();
    }

    static void run(ESTService est, String op, String out, Map<String, String[]> options)
            throws Exception {
        switch (op) {
            case "cacerts": {
                CACertsResponse response = est.getCACerts();
                writeCertificates(out, ESTService.storeToArray(response.getCertificateStore()));
                break;
            }
            case "csrattrs": {
                CSRRequestResponse response = est.getCSRAttributes();
                StringBuilder text = new StringBuilder();
                for (ASN1ObjectIdentifier oid : response.getAttributesResponse().getRequirements()) {
                    text.append(oid.getId()).append('\n');
                }
                try (FileWriter writer = new FileWriter(out + ".txt")) {
                    writer.write(text.toString());
                }
                break;
            }
            default:
                enroll(est, op, out, options);
        }
    }

    static void enroll(ESTService est, String op, String out, Map<String, String[]> options)
            throws Exception {
        KeyPair pair;
        if (options.containsKey("key")) {
            try (PEMParser parser = new PEMParser(new FileReader(options.get("key")[0]))) {
                pair = new JcaPEMKeyConverter().getKeyPair((PEMKeyPair) parser.readObject());
            }
        } else {
            KeyPairGenerator generator = KeyPairGenerator.getInstance("EC");
            generator.initialize(new ECGenParameterSpec("secp256r1"));
            pair = generator.generateKeyPair();
        }
        String subject = options.containsKey("subject") ? options.get("subject")[0] : "CN=sensor-bc";
        PKCS10CertificationRequest csr = new JcaPKCS10CertificationRequestBuilder(
                new X500Name(subject), pair.getPublic())
                .build(new JcaContentSignerBuilder("SHA256withECDSA").build(pair.getPrivate()));
        ESTAuth auth = null;
        if (options.containsKey("basic")) {
            String[] user = options.get("basic")[0].split(":", 2);
            auth = new JcaHttpAuthBuilder(user[0], user[1].toCharArray()).build();
        }
        EnrollmentResponse response;
        if (op.equals("serverkeygen")) {
            response = est.simpleEnrollWithServersideCreation(csr, auth);
        } else {
            response = est.simpleEnroll(op.equals("simplereenroll"), csr, auth);
        }
        if (!response.isCompleted()) {
            System.err.println("not completed; retry after " + response.getNotBefore());
            System.exit(3);
        }
        writeCertificates(out, ESTService.storeToArray(response.getStore()));
        byte[] pkcs8 = op.equals("serverkeygen") ? response.getPrivateKeyInfo().getEncoded()
                : pair.getPrivate().getEncoded();  // PKCS #8 PrivateKeyInfo DER either way
        try (FileWriter writer = new FileWriter(out + ".key.pem")) {
            writer.write("-----BEGIN PRIVATE KEY-----\n"
                    + Base64.getMimeEncoder(64, new byte[] {'\n'}).encodeToString(pkcs8)
                    + "\n-----END PRIVATE KEY-----\n");
        }
    }

    static void writeCertificates(String out, X509CertificateHolder[] certificates)
            throws Exception {
        StringWriter text = new StringWriter();
        try (JcaPEMWriter writer = new JcaPEMWriter(text)) {
            for (X509CertificateHolder certificate : certificates) {
                writer.writeObject(certificate);
            }
        }
        try (FileWriter writer = new FileWriter(out + ".pem")) {
            writer.write(text.toString());
        }
    }
}
