// A CMC client built on BouncyCastle's CMC, CRMF, PKCS #10 and CMS classes (Debian
// libbcpkix-java 1.72), as an independent peer of iotpki's CMC server (RFC 5272/5273, and
// EST /fullcmc, RFC 7030 §4.3). It runs the scenarios of one file (one per line:
// `name op key=value ...`), each one POST, and prints `RESULT name http status fail` per
// scenario after checking the answer with BC: the SignedData signature (signer certificate
// carried in the answer, chained to the given root), eContentType id-cct-PKIResponse, and
// the CMCStatusInfoV2 read with BC's ASN.1 classes. The identity proof (RFC 5272 §6.2.1) is
// computed here from the RFC text, with the JDK's MessageDigest and Mac.
import java.io.*;
import java.math.BigInteger;
import java.net.*;
import java.nio.charset.StandardCharsets;
import java.nio.file.*;
import java.security.*;
import java.security.cert.*;
import java.security.spec.ECGenParameterSpec;
import java.util.*;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import javax.net.ssl.*;

import org.bouncycastle.asn1.*;
import org.bouncycastle.asn1.cmc.*;
import org.bouncycastle.asn1.cms.Attribute;
import org.bouncycastle.asn1.cms.AttributeTable;
import org.bouncycastle.asn1.cms.CMSAttributes;
import org.bouncycastle.asn1.cms.CMSObjectIdentifiers;
import org.bouncycastle.asn1.cms.ContentInfo;
import org.bouncycastle.asn1.cms.Time;
import org.bouncycastle.asn1.crmf.CertReqMsg;
import org.bouncycastle.asn1.pkcs.PrivateKeyInfo;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.*;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cert.crmf.jcajce.JcaCertificateRequestMessageBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509CertificateHolder;
import org.bouncycastle.cert.jcajce.JcaX509ExtensionUtils;
import org.bouncycastle.cms.*;
import org.bouncycastle.cms.jcajce.JcaSignerInfoGeneratorBuilder;
import org.bouncycastle.cms.jcajce.JcaSimpleSignerInfoVerifierBuilder;
import org.bouncycastle.jce.provider.BouncyCastleProvider;
import org.bouncycastle.openssl.PEMKeyPair;
import org.bouncycastle.openssl.PEMParser;
import org.bouncycastle.openssl.jcajce.JcaPEMKeyConverter;
import org.bouncycastle.openssl.jcajce.JcaPEMWriter;
import org.bouncycastle.operator.ContentSigner;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.bouncycastle.operator.jcajce.JcaDigestCalculatorProviderBuilder;
import org.bouncycastle.pkcs.PKCS10CertificationRequest;
import org.bouncycastle.pkcs.jcajce.JcaPKCS10CertificationRequestBuilder;

public class CmcInterop {
    static String httpBase, httpsBase;
    static List<X509Certificate> roots = new ArrayList<>();
    static Path dir;

    public static void main(String[] args) throws Exception {
        Security.addProvider(new BouncyCastleProvider());
        httpBase = args[0];
        httpsBase = args[1];
        try (InputStream in = Files.newInputStream(Paths.get(args[2]))) {
            for (java.security.cert.Certificate c : CertificateFactory.getInstance("X.509").generateCertificates(in))
                roots.add((X509Certificate) c);
        }
        Path scenarios = Paths.get(args[3]);
        dir = scenarios.toAbsolutePath().getParent();
        for (String line : Files.readAllLines(scenarios)) {
            if (line.isBlank()) continue;
            String[] words = line.trim().split("\\s+");
            Map<String, String> o = new HashMap<>();
            for (int i = 2; i < words.length; i++) {
                int eq = words[i].indexOf('=');
                o.put(eq < 0 ? words[i] : words[i].substring(0, eq), eq < 0 ? "" : words[i].substring(eq + 1));
            }
            try {
                run(words[0], words[1], o);
            } catch (Exception e) {
                System.out.println("RESULT " + words[0] + " error " + e.getClass().getSimpleName() + ":" + e.getMessage());
            }
        }
    }

    static void run(String name, String op, Map<String, String> o) throws Exception {
        List<TaggedAttribute> controls = new ArrayList<>();
        List<TaggedRequest> requests = new ArrayList<>();
        long id = 1;
        KeyPair requestKeys = null;
        if (o.containsKey("txid")) controls.add(control(id++, CMCObjectIdentifiers.id_cmc_transactionId, new ASN1Integer(new BigInteger(o.get("txid")))));
        if (o.containsKey("nonce")) controls.add(control(id++, CMCObjectIdentifiers.id_cmc_senderNonce, new DEROctetString(o.get("nonce").getBytes(StandardCharsets.US_ASCII))));
        if (o.containsKey("addext")) controls.add(control(id++, CMCObjectIdentifiers.id_cmc_addExtensions, new DERSequence(new ASN1Encodable[]{new BodyPartID(0), new DERSequence(), new DERSequence()})));
        KeyPair signerKeys = null;
        X509Certificate signerCert = null;
        String signer = o.getOrDefault("signer", "self");
        if (!signer.equals("self")) {
            String[] files = signer.split(":");
            signerCert = readCertificate(dir.resolve(files[0]));
            signerKeys = new KeyPair(signerCert.getPublicKey(), readKey(dir.resolve(files[1])));
        }
        switch (op) {
            case "enroll": {
                requestKeys = o.containsKey("reusekey") ? signerKeys : newKeys();
                long requestId = id++;
                requests.add(request(requestId, o, requestKeys));
                if (o.containsKey("id")) {
                    byte[] reqSequence = new DERSequence(requests.toArray(new TaggedRequest[0])).getEncoded(ASN1Encoding.DER);
                    if (!o.containsKey("noident"))
                        controls.add(control(id++, CMCObjectIdentifiers.id_cmc_identification, new DERUTF8String(o.get("id"))));
                    String hashOid = o.getOrDefault("proofhash", "2.16.840.1.101.3.4.2.1");
                    byte[] witness = witness(o.get("secret"), reqSequence, hashOid);
                    controls.add(control(id++, CMCObjectIdentifiers.id_cmc_identityProofV2, new IdentityProofV2(
                        new AlgorithmIdentifier(new ASN1ObjectIdentifier(hashOid)),
                        new AlgorithmIdentifier(new ASN1ObjectIdentifier("1.2.840.113549.2.9")), witness)));
                }
                if (signerKeys == null) signerKeys = requestKeys;
                break;
            }
            case "revoke": {
                X509Certificate target = o.containsKey("target") ? readCertificate(dir.resolve(o.get("target"))) : signerCert;
                controls.add(control(id++, CMCObjectIdentifiers.id_cmc_revokeRequest, new RevokeRequest(
                    X500Name.getInstance(target.getIssuerX500Principal().getEncoded()), new ASN1Integer(target.getSerialNumber()),
                    org.bouncycastle.asn1.x509.CRLReason.lookup(Integer.parseInt(o.getOrDefault("reason", "1"))), null, null, null)));
                if (signerKeys == null) signerKeys = requestKeys = newKeys();
                break;
            }
            case "poll": {
                byte[] token = Files.readAllBytes(dir.resolve(o.get("token")));
                controls.add(control(id++, CMCObjectIdentifiers.id_cmc_queryPending, new DEROctetString(token)));
                if (signerKeys == null) {
                    PrivateKey key = readKey(dir.resolve(o.get("key")));
                    PublicKey pub = readCertificateOrKey(dir.resolve(o.get("key")));
                    signerKeys = requestKeys = new KeyPair(pub, key);
                }
                break;
            }
            case "empty":
                signerKeys = newKeys();
                break;
            default:
                throw new IllegalArgumentException("unknown op " + op);
        }
        PKIData data = new PKIData(controls.toArray(new TaggedAttribute[0]), requests.toArray(new TaggedRequest[0]),
            new TaggedContentInfo[0], new OtherMsg[0]);
        byte[] body = sign(data.getEncoded(ASN1Encoding.DER), signerKeys, signerCert, o);
        if (o.containsKey("tamper")) {  // the last octet of the DER form is the signature's
            body = ContentInfo.getInstance(body).getEncoded(ASN1Encoding.DER);
            body[body.length - 1] ^= 0x01;
        }
        if (o.containsKey("authdata"))
            body = new ContentInfo(CMSObjectIdentifiers.authenticatedData, new DEROctetString(data.getEncoded())).getEncoded(ASN1Encoding.DER);
        if (requestKeys != null) writeKey(dir.resolve(name + ".key.pem"), requestKeys.getPrivate());
        Files.write(dir.resolve(name + ".req.der"), body);
        post(name, o.getOrDefault("via", "cmc:"), body, requestKeys);
    }

    static TaggedRequest request(long id, Map<String, String> o, KeyPair keys) throws Exception {
        X500Name subject = new X500Name(o.getOrDefault("subject", "CN=cmc-bc").replace("_", " "));
        ContentSigner signer = new JcaContentSignerBuilder("SHA256withECDSA").build(keys.getPrivate());
        if (o.getOrDefault("format", "p10").equals("crmf")) {
            JcaCertificateRequestMessageBuilder builder = new JcaCertificateRequestMessageBuilder(BigInteger.valueOf(id));
            builder.setSubject(subject);
            builder.setPublicKey(keys.getPublic());
            String pop = o.getOrDefault("pop", "good");
            if (pop.equals("good")) builder.setProofOfPossessionSigningKeySigner(signer);
            if (pop.equals("bad")) builder.setProofOfPossessionSigningKeySigner(
                new JcaContentSignerBuilder("SHA256withECDSA").build(newKeys().getPrivate()));
            CertReqMsg message = builder.build().toASN1Structure();
            return new TaggedRequest(message);
        }
        PKCS10CertificationRequest csr = new JcaPKCS10CertificationRequestBuilder(subject, keys.getPublic()).build(signer);
        return new TaggedRequest(new TaggedCertificationRequest(new BodyPartID(id),
            org.bouncycastle.asn1.cmc.CertificationRequest.getInstance(csr.getEncoded())));
    }

    static byte[] witness(String secret, byte[] reqSequence, String hashOid) throws Exception {
        MessageDigest digest = MessageDigest.getInstance(hashOid, "BC");
        byte[] key = digest.digest(secret.getBytes(StandardCharsets.UTF_8));
        Mac mac = Mac.getInstance("HmacSHA256");
        mac.init(new SecretKeySpec(key, "HmacSHA256"));
        return mac.doFinal(reqSequence);
    }

    static TaggedAttribute control(long id, ASN1ObjectIdentifier type, ASN1Encodable value) {
        return new TaggedAttribute(new BodyPartID(id), type, new DERSet(value));
    }

    static byte[] sign(byte[] pkiData, KeyPair keys, X509Certificate certificate, Map<String, String> o) throws Exception {
        CMSSignedDataGenerator generator = new CMSSignedDataGenerator();
        ContentSigner signer = new JcaContentSignerBuilder("SHA256withECDSA").build(keys.getPrivate());
        JcaSignerInfoGeneratorBuilder builder = new JcaSignerInfoGeneratorBuilder(new JcaDigestCalculatorProviderBuilder().build());
        if (o.containsKey("skewsec")) {
            Date when = new Date(System.currentTimeMillis() + 1000L * Long.parseLong(o.get("skewsec")));
            builder.setSignedAttributeGenerator(new DefaultSignedAttributeTableGenerator(new AttributeTable(
                new Attribute(CMSAttributes.signingTime, new DERSet(new Time(when))))));
        }
        if (certificate != null) {
            generator.addSignerInfoGenerator(builder.build(signer, certificate));
            generator.addCertificate(new JcaX509CertificateHolder(certificate));
        } else {
            byte[] keyId = new JcaX509ExtensionUtils().createSubjectKeyIdentifier(keys.getPublic()).getKeyIdentifier();
            generator.addSignerInfoGenerator(builder.build(signer, keyId));
        }
        CMSSignedData signed = generator.generate(new CMSProcessableByteArray(CMCObjectIdentifiers.id_cct_PKIData, pkiData), true);
        return signed.getEncoded();  // BC's own encoding (BER, as BC sends it)
    }

    static void post(String name, String via, byte[] body, KeyPair requestKeys) throws Exception {
        String[] parts = via.split(":", -1);
        boolean est = parts[0].equals("est");
        String label = parts.length > 1 ? parts[1] : "";
        HttpURLConnection connection;
        if (est) {
            URL url = new URL(httpsBase + "/.well-known/est" + (label.isEmpty() ? "" : "/" + label) + "/fullcmc");
            HttpsURLConnection tls = (HttpsURLConnection) url.openConnection();
            tls.setSSLSocketFactory(trusting().getSocketFactory());
            connection = tls;
            body = Base64.getMimeEncoder().encode(body);
            connection.setRequestProperty("Content-Transfer-Encoding", "base64");
        } else {
            connection = (HttpURLConnection) new URL(httpBase + "/cmc" + (label.isEmpty() ? "" : "/" + label)).openConnection();
        }
        connection.setRequestMethod("POST");
        connection.setDoOutput(true);
        connection.setRequestProperty("Content-Type", "application/pkcs7-mime; smime-type=CMC-request");
        try (OutputStream out = connection.getOutputStream()) { out.write(body); }
        int code = connection.getResponseCode();
        String type = connection.getContentType();
        InputStream in = code >= 400 ? connection.getErrorStream() : connection.getInputStream();
        byte[] answer = in.readAllBytes();
        if (!"application/pkcs7-mime; smime-type=CMC-response".equals(type))
            throw new IllegalStateException("HTTP " + code + " " + type + ": " + new String(answer, StandardCharsets.UTF_8));
        if (est) answer = Base64.getMimeDecoder().decode(answer);
        Files.write(dir.resolve(name + ".resp.der"), answer);
        read(name, code, answer, requestKeys);
    }

    static void read(String name, int code, byte[] answer, KeyPair requestKeys) throws Exception {
        CMSSignedData signed = new CMSSignedData(answer);
        if (!signed.getSignedContentTypeOID().equals(CMCObjectIdentifiers.id_cct_PKIResponse.getId()))
            throw new IllegalStateException("eContentType " + signed.getSignedContentTypeOID());
        SignerInformation signerInfo = signed.getSignerInfos().getSigners().iterator().next();
        Collection<X509CertificateHolder> matches = signed.getCertificates().getMatches(signerInfo.getSID());
        X509Certificate signer = new JcaX509CertificateConverter().getCertificate(matches.iterator().next());
        if (!signerInfo.verify(new JcaSimpleSignerInfoVerifierBuilder().build(signer)))
            throw new IllegalStateException("the answer's signature does not verify");
        if (!signer.getExtendedKeyUsage().contains("1.3.6.1.5.5.7.3.27"))
            throw new IllegalStateException("the signer has no id-kp-cmcCA");
        verifyChain(signer, signed);
        PKIResponse response = PKIResponse.getInstance(signed.getSignedContent().getContent());
        String status = "-", fail = "-";
        for (int i = 0; i < response.getControlSequence().size(); i++) {
            TaggedAttribute attribute = TaggedAttribute.getInstance(response.getControlSequence().getObjectAt(i));
            if (attribute.getAttrType().equals(CMCObjectIdentifiers.id_cmc_statusInfoV2)) {
                CMCStatusInfoV2 info = CMCStatusInfoV2.getInstance(attribute.getAttrValues().getObjectAt(0));
                status = statusName(ASN1Integer.getInstance(info.getcMCStatus().toASN1Primitive()).intValueExact());
                if (info.hasOtherInfo() && info.getOtherStatusInfo().isFailInfo())
                    fail = String.valueOf(ASN1Integer.getInstance(info.getOtherStatusInfo().toASN1Primitive()).intValueExact());
                if (info.hasOtherInfo() && info.getOtherStatusInfo().isPendingInfo())
                    Files.write(dir.resolve(name + ".token"), PendInfo.getInstance(info.getOtherStatusInfo().toASN1Primitive()).getPendToken());
            } else if (attribute.getAttrType().equals(CMCObjectIdentifiers.id_cmc_recipientNonce)) {
                System.out.println("NONCE " + name + " " + new String(ASN1OctetString.getInstance(attribute.getAttrValues().getObjectAt(0)).getOctets(), StandardCharsets.US_ASCII));
            } else if (attribute.getAttrType().equals(CMCObjectIdentifiers.id_cmc_transactionId)) {
                System.out.println("TXID " + name + " " + ASN1Integer.getInstance(attribute.getAttrValues().getObjectAt(0)).getValue());
            }
        }
        if (requestKeys != null) {
            for (X509CertificateHolder holder : signed.getCertificates().getMatches(null)) {
                X509Certificate certificate = new JcaX509CertificateConverter().getCertificate(holder);
                if (Arrays.equals(certificate.getPublicKey().getEncoded(), requestKeys.getPublic().getEncoded())) {
                    try (JcaPEMWriter writer = new JcaPEMWriter(Files.newBufferedWriter(dir.resolve(name + ".cert.pem")))) {
                        writer.writeObject(certificate);
                    }
                }
            }
        }
        System.out.println("RESULT " + name + " " + code + " " + status + " " + fail);
    }

    static void verifyChain(X509Certificate signer, CMSSignedData signed) throws Exception {
        List<X509Certificate> others = new ArrayList<>();
        for (X509CertificateHolder holder : signed.getCertificates().getMatches(null))
            others.add(new JcaX509CertificateConverter().getCertificate(holder));
        CertPathBuilder builder = CertPathBuilder.getInstance("PKIX");
        X509CertSelector target = new X509CertSelector();
        target.setCertificate(signer);
        Set<TrustAnchor> anchors = new HashSet<>();
        for (X509Certificate root : roots) anchors.add(new TrustAnchor(root, null));
        PKIXBuilderParameters parameters = new PKIXBuilderParameters(anchors, target);
        parameters.setRevocationEnabled(false);
        parameters.addCertStore(CertStore.getInstance("Collection", new CollectionCertStoreParameters(others)));
        builder.build(parameters);
    }

    static String statusName(int status) {
        switch (status) {
            case 0: return "success";
            case 2: return "failed";
            case 3: return "pending";
            default: return "status" + status;
        }
    }

    static SSLContext trusting() throws Exception {
        KeyStore store = KeyStore.getInstance(KeyStore.getDefaultType());
        store.load(null, null);
        for (int i = 0; i < roots.size(); i++) store.setCertificateEntry("root" + i, roots.get(i));
        TrustManagerFactory factory = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        factory.init(store);
        SSLContext context = SSLContext.getInstance("TLS");
        context.init(null, factory.getTrustManagers(), null);
        return context;
    }

    static KeyPair newKeys() throws Exception {
        KeyPairGenerator generator = KeyPairGenerator.getInstance("EC");
        generator.initialize(new ECGenParameterSpec("secp256r1"));
        return generator.generateKeyPair();
    }

    static X509Certificate readCertificate(Path path) throws Exception {
        try (InputStream in = Files.newInputStream(path)) {
            return (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(in);
        }
    }

    static PrivateKey readKey(Path path) throws Exception {
        try (PEMParser parser = new PEMParser(Files.newBufferedReader(path))) {
            Object object = parser.readObject();
            JcaPEMKeyConverter converter = new JcaPEMKeyConverter();
            if (object instanceof PEMKeyPair) return converter.getKeyPair((PEMKeyPair) object).getPrivate();
            return converter.getPrivateKey((PrivateKeyInfo) object);
        }
    }

    static PublicKey readCertificateOrKey(Path keyPath) throws Exception {
        // the public key of a PKCS #8 EC key written by this program: recomputed by BC
        PrivateKey key = readKey(keyPath);
        org.bouncycastle.jce.interfaces.ECPrivateKey ec = (org.bouncycastle.jce.interfaces.ECPrivateKey) KeyFactory.getInstance("EC", "BC").translateKey(key);
        org.bouncycastle.jce.spec.ECParameterSpec spec = ec.getParameters();
        org.bouncycastle.math.ec.ECPoint q = spec.getG().multiply(ec.getD()).normalize();
        return KeyFactory.getInstance("EC", "BC").generatePublic(new org.bouncycastle.jce.spec.ECPublicKeySpec(q, spec));
    }

    static void writeKey(Path path, PrivateKey key) throws Exception {
        try (JcaPEMWriter writer = new JcaPEMWriter(Files.newBufferedWriter(path))) {
            writer.writeObject(new org.bouncycastle.openssl.jcajce.JcaPKCS8Generator(key, null));
        }
    }
}
