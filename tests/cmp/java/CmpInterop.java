// BouncyCastle's CMP and CRMF classes (org.bouncycastle.cert.cmp, org.bouncycastle.cert.crmf,
// Debian libbcpkix-java) as an independent CMP client of iotpki, driven by
// tests/cmp/test_bouncycastle.py. BC's encoder builds every request and BC's decoder reads
// every answer; the answer's protection is checked with BC (MAC with the shared secret, or
// the signature of extraCerts[0] with a PKIX path to --trusted). One exchange per run:
//   java CmpInterop <url> <op> <out> [options]
//   op: ir | cr | kur | p10cr | rr | genm
//   protection: --pbm REF SECRET | --pbmac1 REF SECRET | --cert FILE --key FILE [--chain FILE]
//   options: --subject DN  --trusted FILE  --implicit  --reason N  --info OID (repeatable)
//            --prf sha256|sha384|sha512  --iterations N  --old-cert FILE (kur: oldCertId)
//            --no-confirm (leave the certConf out)  --dump FILE (the last request's DER)
// Writes <out>.pem (the new certificate), <out>.key.pem (its key), <out>.capubs.pem,
// <out>.extra.pem, and <out>.txt (key=value lines: body, status, failInfo, sender,
// protection, info types of a genp). Exit 0: accepted; 2: a CMP error or a rejection
// (the status on stderr); 3: the answer's protection or header did not check out.
import java.io.ByteArrayOutputStream;
import java.io.FileReader;
import java.io.FileWriter;
import java.io.InputStream;
import java.io.OutputStream;
import java.math.BigInteger;
import java.net.HttpURLConnection;
import java.net.URL;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.Security;
import java.security.cert.CertPathValidator;
import java.security.cert.CertStore;
import java.security.cert.CertificateFactory;
import java.security.cert.CollectionCertStoreParameters;
import java.security.cert.PKIXBuilderParameters;
import java.security.cert.PKIXCertPathBuilderResult;
import java.security.cert.TrustAnchor;
import java.security.cert.X509CertSelector;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Date;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.bouncycastle.asn1.ASN1Encodable;
import org.bouncycastle.asn1.ASN1Enumerated;
import org.bouncycastle.asn1.ASN1ObjectIdentifier;
import org.bouncycastle.asn1.DERNull;
import org.bouncycastle.asn1.DEROctetString;
import org.bouncycastle.asn1.DERSequence;
import org.bouncycastle.asn1.cmp.CMPCertificate;
import org.bouncycastle.asn1.cmp.CMPObjectIdentifiers;
import org.bouncycastle.asn1.cmp.CertRepMessage;
import org.bouncycastle.asn1.cmp.CertResponse;
import org.bouncycastle.asn1.cmp.ErrorMsgContent;
import org.bouncycastle.asn1.cmp.GenMsgContent;
import org.bouncycastle.asn1.cmp.InfoTypeAndValue;
import org.bouncycastle.asn1.cmp.PKIBody;
import org.bouncycastle.asn1.cmp.PKIFreeText;
import org.bouncycastle.asn1.cmp.PKIHeader;
import org.bouncycastle.asn1.cmp.PKIStatusInfo;
import org.bouncycastle.asn1.cmp.RevDetails;
import org.bouncycastle.asn1.cmp.RevRepContent;
import org.bouncycastle.asn1.cmp.RevReqContent;
import org.bouncycastle.asn1.crmf.CertId;
import org.bouncycastle.asn1.crmf.CertReqMessages;
import org.bouncycastle.asn1.crmf.CertTemplateBuilder;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.Extensions;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.SubjectKeyIdentifier;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cert.cmp.CertificateConfirmationContent;
import org.bouncycastle.cert.cmp.CertificateConfirmationContentBuilder;
import org.bouncycastle.cert.cmp.GeneralPKIMessage;
import org.bouncycastle.cert.cmp.ProtectedPKIMessage;
import org.bouncycastle.cert.cmp.ProtectedPKIMessageBuilder;
import org.bouncycastle.cert.crmf.Control;
import org.bouncycastle.cert.crmf.PKMACBuilder;
import org.bouncycastle.cert.crmf.jcajce.JcaCertificateRequestMessageBuilder;
import org.bouncycastle.cert.crmf.jcajce.JcePKMACValuesCalculator;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.jce.provider.BouncyCastleProvider;
import org.bouncycastle.openssl.PEMParser;
import org.bouncycastle.openssl.jcajce.JcaPEMKeyConverter;
import org.bouncycastle.openssl.jcajce.JcaPEMWriter;
import org.bouncycastle.operator.ContentSigner;
import org.bouncycastle.operator.MacCalculator;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.bouncycastle.operator.jcajce.JcaContentVerifierProviderBuilder;
import org.bouncycastle.operator.jcajce.JcaDigestCalculatorProviderBuilder;
import org.bouncycastle.pkcs.PKCS10CertificationRequest;
import org.bouncycastle.pkcs.jcajce.JcaPKCS10CertificationRequestBuilder;
import org.bouncycastle.pkcs.jcajce.JcePBMac1CalculatorBuilder;
import org.bouncycastle.pkcs.jcajce.JcePBMac1CalculatorProviderBuilder;

public final class CmpInterop {
    private static final SecureRandom RANDOM = new SecureRandom();
    private static final String[] BODY_NAMES = {"ir", "ip", "cr", "cp", "p10cr", "popdecc",
        "popdecr", "kur", "kup", "krr", "krp", "rr", "rp", "ccr", "ccp", "ckuann", "cann",
        "rann", "crlann", "pkiconf", "nested", "genm", "genp", "error", "certConf", "pollReq",
        "pollRep"};

    private final String url;
    private final String out;
    private final Map<String, List<String>> options;
    private final List<String> report = new ArrayList<>();
    private byte[] transactionId;
    private byte[] lastServerNonce;
    private KeyPair newKey;

    private CmpInterop(String url, String out, Map<String, List<String>> options) {
        this.url = url;
        this.out = out;
        this.options = options;
    }

    public static void main(String[] args) throws Exception {
        Security.addProvider(new BouncyCastleProvider());
        Map<String, List<String>> options = new HashMap<>();
        for (int i = 3; i < args.length; i++) {
            String name = args[i].substring(2);
            int arity = name.equals("pbm") || name.equals("pbmac1") ? 2
                : name.equals("implicit") || name.equals("no-confirm") ? 0 : 1;
            List<String> values = options.computeIfAbsent(name, k -> new ArrayList<>());
            for (int j = 0; j < arity; j++) {
                values.add(args[++i]);
            }
        }
        CmpInterop client = new CmpInterop(args[0], args[2], options);
        int code;
        try {
            code = client.run(args[1]);
        } catch (ProtectionCheck e) {
            System.err.println("answer check failed: " + e.getMessage());
            code = 3;
        }
        client.writeReport();
        System.exit(code);
    }

    private int run(String op) throws Exception {
        transactionId = random(16);
        switch (op) {
            case "ir": return enroll(PKIBody.TYPE_INIT_REQ);
            case "cr": return enroll(PKIBody.TYPE_CERT_REQ);
            case "kur": return enroll(PKIBody.TYPE_KEY_UPDATE_REQ);
            case "p10cr": return enroll(PKIBody.TYPE_P10_CERT_REQ);
            case "rr": return revoke();
            case "genm": return general();
            default: throw new IllegalArgumentException("unknown operation " + op);
        }
    }

    // -- requests, built with BC's encoder --------------------------------------------------

    private int enroll(int type) throws Exception {
        KeyPairGenerator generator = KeyPairGenerator.getInstance("EC");
        generator.initialize(new ECGenParameterSpec("secp256r1"));
        newKey = generator.generateKeyPair();
        X500Name subject = new X500Name(option("subject", "CN=sensor-bc"));
        PKIBody body;
        if (type == PKIBody.TYPE_P10_CERT_REQ) {
            PKCS10CertificationRequest csr = new JcaPKCS10CertificationRequestBuilder(
                subject, newKey.getPublic()).build(
                    new JcaContentSignerBuilder("SHA256withECDSA").build(newKey.getPrivate()));
            body = new PKIBody(type, csr.toASN1Structure());
        } else {
            JcaCertificateRequestMessageBuilder request =
                new JcaCertificateRequestMessageBuilder(BigInteger.ZERO);
            request.setSubject(subject);
            request.setPublicKey(newKey.getPublic());
            if (options.containsKey("old-cert")) {  // RFC 9483 §4.1.3: oldCertId control
                X509CertificateHolder old = readCertificates(option("old-cert", null)).get(0);
                request.addControl(new OldCertId(new CertId(
                    new GeneralName(old.getIssuer()), old.getSerialNumber())));
            }
            request.setProofOfPossessionSigningKeySigner(
                new JcaContentSignerBuilder("SHA256withECDSA").build(newKey.getPrivate()));
            body = new PKIBody(type, new CertReqMessages(request.build().toASN1Structure()));
        }
        ProtectedPKIMessage answer = exchange(body, options.containsKey("implicit"), null);
        int code = readCertificateAnswer(answer);
        if (code == 0 && !options.containsKey("implicit") && !options.containsKey("no-confirm")) {
            code = confirm(answer);
        }
        return code;
    }

    private int confirm(ProtectedPKIMessage answer) throws Exception {
        X509CertificateHolder issued = readCertificates(out + ".pem").get(0);
        BigInteger certReqId = CertRepMessage.getInstance(answer.getBody().getContent())
            .getResponse()[0].getCertReqId().getValue();
        CertificateConfirmationContent confirmation = new CertificateConfirmationContentBuilder()
            .addAcceptedCertificate(issued, certReqId)
            .build(new JcaDigestCalculatorProviderBuilder().build());
        ProtectedPKIMessage reply = exchange(
            new PKIBody(PKIBody.TYPE_CERT_CONFIRM, confirmation.toASN1Structure()), false,
            lastServerNonce);
        report.add("confirm=" + BODY_NAMES[reply.getBody().getType()]);
        return reply.getBody().getType() == PKIBody.TYPE_CONFIRM ? 0 : failed(reply, "confirm");
    }

    private int revoke() throws Exception {
        X509CertificateHolder target = readCertificates(option("cert", null)).get(0);
        CertTemplateBuilder template = new CertTemplateBuilder()
            .setIssuer(target.getIssuer()).setSerialNumber(
                new org.bouncycastle.asn1.ASN1Integer(target.getSerialNumber()));
        Extensions reason = new Extensions(new Extension(Extension.reasonCode, false,
            new ASN1Enumerated(Integer.parseInt(option("reason", "0"))).getEncoded()));
        RevReqContent content = RevReqContent.getInstance(
            new DERSequence(new RevDetails(template.build(), reason)));
        ProtectedPKIMessage answer = exchange(new PKIBody(PKIBody.TYPE_REVOCATION_REQ, content),
            false, null);
        if (answer.getBody().getType() != PKIBody.TYPE_REVOCATION_REP) {
            return failed(answer, "rr");
        }
        PKIStatusInfo status = RevRepContent.getInstance(answer.getBody().getContent())
            .getStatus()[0];
        return status(status, "rp");
    }

    private int general() throws Exception {
        List<InfoTypeAndValue> asked = new ArrayList<>();
        for (String oid : options.getOrDefault("info", Collections.emptyList())) {
            asked.add(new InfoTypeAndValue(new ASN1ObjectIdentifier(oid)));
        }
        ProtectedPKIMessage answer = exchange(new PKIBody(PKIBody.TYPE_GEN_MSG,
            new GenMsgContent(asked.toArray(new InfoTypeAndValue[0]))), false, null);
        if (answer.getBody().getType() != PKIBody.TYPE_GEN_REP) {
            return failed(answer, "genm");
        }
        for (InfoTypeAndValue info :
                GenMsgContent.getInstance(answer.getBody().getContent()).toInfoTypeAndValueArray()) {
            ASN1Encodable value = info.getInfoValue();
            report.add("info=" + info.getInfoType() + " " + (value == null ? "absent" : "present"));
            if (info.getInfoType().equals(CMPObjectIdentifiers.id_it_caCerts) && value != null) {
                List<X509CertificateHolder> certificates = new ArrayList<>();
                for (ASN1Encodable c : org.bouncycastle.asn1.ASN1Sequence.getInstance(value)) {
                    certificates.add(new X509CertificateHolder(
                        CMPCertificate.getInstance(c).getX509v3PKCert()));
                }
                writePem(out + ".cacerts.pem", certificates, null);
            }
        }
        return 0;
    }

    // -- one request/answer exchange --------------------------------------------------------

    private ProtectedPKIMessage exchange(PKIBody body, boolean implicit, byte[] recipNonce)
            throws Exception {
        byte[] nonce = random(16);
        ProtectedPKIMessage request = protect(body, implicit, recipNonce, nonce);
        byte[] encoded = request.toASN1Structure().getEncoded();
        if (options.containsKey("dump")) {  // the request as sent, for a look with asn1parse
            java.nio.file.Files.write(java.nio.file.Paths.get(option("dump", null)), encoded);
        }
        byte[] der = post(encoded);
        ProtectedPKIMessage answer = new ProtectedPKIMessage(new GeneralPKIMessage(der));
        report.add("body=" + BODY_NAMES[answer.getBody().getType()]);
        checkAnswer(answer, nonce);
        lastServerNonce = answer.getHeader().getSenderNonce().getOctets();
        return answer;
    }

    private ProtectedPKIMessage protect(PKIBody body, boolean implicit, byte[] recipNonce,
                                        byte[] nonce) throws Exception {
        List<String> mac = macOption();
        GeneralName sender;
        X509CertificateHolder signer = null;
        if (mac != null) {
            // RFC 9483 §3.1: a MAC-protected message names its sender as a directoryName
            sender = new GeneralName(new X500Name(option("subject", "CN=sensor-bc")));
        } else {
            signer = readCertificates(option("cert", null)).get(0);
            sender = new GeneralName(signer.getSubject());
        }
        ProtectedPKIMessageBuilder builder = new ProtectedPKIMessageBuilder(
            PKIHeader.CMP_2000, sender, new GeneralName(new X500Name("CN=iotpki")))
            .setTransactionID(transactionId).setSenderNonce(nonce).setMessageTime(new Date())
            .setBody(body);
        if (recipNonce != null) {
            builder.setRecipNonce(recipNonce);
        }
        if (implicit) {
            builder.addGeneralInfo(new InfoTypeAndValue(CMPObjectIdentifiers.it_implicitConfirm,
                DERNull.INSTANCE));
        }
        if (mac != null) {
            builder.setSenderKID(mac.get(1).getBytes("UTF-8"));
            return builder.build(macCalculator(mac.get(0), mac.get(2).toCharArray()));
        }
        builder.setSenderKID(SubjectKeyIdentifier.fromExtensions(signer.getExtensions())
            .getKeyIdentifier());  // RFC 9483 §3.1: the protection certificate's SKI
        builder.addCMPCertificate(signer);
        if (options.containsKey("chain")) {
            for (X509CertificateHolder c : readCertificates(option("chain", null))) {
                builder.addCMPCertificate(c);
            }
        }
        PrivateKey key = readKey(option("key", null));
        ContentSigner signing = new JcaContentSignerBuilder(
            key.getAlgorithm().equals("RSA") ? "SHA256withRSA" : "SHA256withECDSA").build(key);
        return builder.build(signing);
    }

    private MacCalculator macCalculator(String kind, char[] secret) throws Exception {
        int iterations = Integer.parseInt(option("iterations", "10000"));
        if (kind.equals("pbm")) {  // RFC 9481 §6.1.1 PasswordBasedMac (RFC 4211 §4.4)
            return new PKMACBuilder(new JcePKMACValuesCalculator().setProvider("BC"))
                .setIterationCount(iterations).build(secret);
        }
        // RFC 9481 §6.1.2 PBMAC1 (RFC 8018 §7.1) with PBKDF2 and the chosen SHA-2 PRF
        return new JcePBMac1CalculatorBuilder("HMacSHA256", 256).setProvider("BC")
            .setPrf(prf(option("prf", "sha256"))).setIterationCount(iterations)
            .build(secret);
    }

    private static org.bouncycastle.asn1.x509.AlgorithmIdentifier prf(String name) {
        switch (name) {
            case "sha384": return JcePBMac1CalculatorBuilder.PRF_SHA384;
            case "sha512": return JcePBMac1CalculatorBuilder.PRF_SHA512;
            default: return JcePBMac1CalculatorBuilder.PRF_SHA256;
        }
    }

    // -- answers, read with BC's decoder ----------------------------------------------------

    private void checkAnswer(ProtectedPKIMessage answer, byte[] nonce) throws Exception {
        PKIHeader header = answer.getHeader();
        if (!Arrays.equals(header.getTransactionID().getOctets(), transactionId)) {
            throw new ProtectionCheck("transactionID differs from the request's");
        }
        if (header.getRecipNonce() == null
                || !Arrays.equals(header.getRecipNonce().getOctets(), nonce)) {
            throw new ProtectionCheck("recipNonce is not our senderNonce");
        }
        report.add("sender=" + X500Name.getInstance(header.getSender().getName()));
        List<String> mac = macOption();
        if (answer.hasPasswordBasedMacProtection() || mac != null && isPbmac1(header)) {
            report.add("protection=mac");
            boolean good = isPbmac1(header)
                ? verifyPbmac1(answer, mac.get(2).toCharArray())
                : answer.verify(new PKMACBuilder(new JcePKMACValuesCalculator().setProvider("BC")),
                                mac.get(2).toCharArray());
            if (!good) {
                throw new ProtectionCheck("the MAC of the answer does not verify");
            }
            return;
        }
        report.add("protection=signature");
        X509CertificateHolder[] certificates = answer.getCertificates();
        if (certificates.length == 0) {
            throw new ProtectionCheck("a signed answer without its certificate in extraCerts");
        }
        if (!answer.verify(new JcaContentVerifierProviderBuilder().setProvider("BC")
                .build(certificates[0]))) {
            throw new ProtectionCheck("the signature of the answer does not verify");
        }
        // RFC 9483 §3.1: the sender is the subject of the protection certificate
        if (!X500Name.getInstance(header.getSender().getName()).equals(certificates[0].getSubject())) {
            throw new ProtectionCheck("sender is not the protection certificate's subject");
        }
        if (options.containsKey("trusted")) {
            validate(certificates);
        }
        writePem(out + ".extra.pem", Arrays.asList(certificates), null);
    }

    /** BC 1.72's PBMAC1 verifier (`ProtectedPKIMessage.verify` with
     * `JcePBMac1CalculatorProviderBuilder`, and the builder made from PBMAC1-params) drops the
     * PRF of the parameters and always derives with HMAC-SHA256 (bc-java PR 2070). So the
     * answer's PBMAC1-params are read with BC's decoder and the MAC recomputed with the JDK's
     * PBKDF2 and HMAC (RFC 8018 §5.2, §7.1) over DER(ProtectedPart) (RFC 9810 §5.1.3). */
    private static boolean verifyPbmac1(ProtectedPKIMessage answer, char[] secret)
            throws Exception {
        org.bouncycastle.asn1.pkcs.PBMAC1Params parameters =
            org.bouncycastle.asn1.pkcs.PBMAC1Params.getInstance(
                answer.getHeader().getProtectionAlg().getParameters());
        org.bouncycastle.asn1.pkcs.PBKDF2Params kdf = org.bouncycastle.asn1.pkcs.PBKDF2Params
            .getInstance(parameters.getKeyDerivationFunc().getParameters());
        String prf = jdkName(kdf.getPrf().getAlgorithm());
        String mac = jdkName(parameters.getMessageAuthScheme().getAlgorithm());
        int keyLength = kdf.getKeyLength() != null ? kdf.getKeyLength().intValue()
            : javax.crypto.Mac.getInstance(mac).getMacLength();
        byte[] key = javax.crypto.SecretKeyFactory.getInstance("PBKDF2With" + prf)
            .generateSecret(new javax.crypto.spec.PBEKeySpec(secret, kdf.getSalt(),
                kdf.getIterationCount().intValue(), keyLength * 8)).getEncoded();
        javax.crypto.Mac calculator = javax.crypto.Mac.getInstance(mac);
        calculator.init(new javax.crypto.spec.SecretKeySpec(key, mac));
        org.bouncycastle.asn1.ASN1EncodableVector part =
            new org.bouncycastle.asn1.ASN1EncodableVector();
        part.add(answer.getHeader());
        part.add(answer.getBody());
        return Arrays.equals(calculator.doFinal(new DERSequence(part).getEncoded("DER")),
            answer.toASN1Structure().getProtection().getOctets());
    }

    private static String jdkName(ASN1ObjectIdentifier hmac) {
        switch (hmac.getId()) {
            case "1.2.840.113549.2.7": return "HmacSHA1";
            case "1.2.840.113549.2.9": return "HmacSHA256";
            case "1.2.840.113549.2.10": return "HmacSHA384";
            case "1.2.840.113549.2.11": return "HmacSHA512";
            default: throw new IllegalArgumentException("PBMAC1 HMAC " + hmac);
        }
    }

    private static boolean isPbmac1(PKIHeader header) {
        return header.getProtectionAlg() != null && header.getProtectionAlg().getAlgorithm()
            .equals(org.bouncycastle.asn1.pkcs.PKCSObjectIdentifiers.id_PBMAC1);
    }

    private void validate(X509CertificateHolder[] chain) throws Exception {
        JcaX509CertificateConverter converter = new JcaX509CertificateConverter();
        List<X509Certificate> certificates = new ArrayList<>();
        for (X509CertificateHolder c : chain) {
            certificates.add(converter.getCertificate(c));
        }
        List<TrustAnchor> anchors = new ArrayList<>();
        for (X509CertificateHolder c : readCertificates(option("trusted", null))) {
            anchors.add(new TrustAnchor(converter.getCertificate(c), null));
        }
        X509CertSelector target = new X509CertSelector();
        target.setCertificate(certificates.get(0));
        PKIXBuilderParameters parameters = new PKIXBuilderParameters(
            new java.util.HashSet<>(anchors), target);
        parameters.setRevocationEnabled(false);
        parameters.addCertStore(CertStore.getInstance("Collection",
            new CollectionCertStoreParameters(certificates)));
        try {
            java.security.cert.CertPathBuilder.getInstance("PKIX").build(parameters);
        } catch (Exception e) {
            throw new ProtectionCheck("the protection certificate does not chain to --trusted: "
                + e.getMessage());
        }
    }

    private int readCertificateAnswer(ProtectedPKIMessage answer) throws Exception {
        int type = answer.getBody().getType();
        if (type != PKIBody.TYPE_INIT_REP && type != PKIBody.TYPE_CERT_REP
                && type != PKIBody.TYPE_KEY_UPDATE_REP) {
            return failed(answer, "enroll");
        }
        CertRepMessage content = CertRepMessage.getInstance(answer.getBody().getContent());
        CertResponse response = content.getResponse()[0];
        report.add("certReqId=" + response.getCertReqId().getValue());
        int code = status(response.getStatus(), "certificate");
        if (code != 0) {
            return code;
        }
        CMPCertificate issued = response.getCertifiedKeyPair().getCertOrEncCert().getCertificate();
        writePem(out + ".pem",
            Collections.singletonList(new X509CertificateHolder(issued.getX509v3PKCert())),
            newKey.getPrivate());
        if (content.getCaPubs() != null) {
            List<X509CertificateHolder> pubs = new ArrayList<>();
            for (CMPCertificate c : content.getCaPubs()) {
                pubs.add(new X509CertificateHolder(c.getX509v3PKCert()));
            }
            writePem(out + ".capubs.pem", pubs, null);
        }
        List<X509CertificateHolder> extra = Arrays.asList(answer.getCertificates());
        if (!extra.isEmpty()) {
            writePem(out + ".extra.pem", extra, null);
        }
        return 0;
    }

    private int failed(ProtectedPKIMessage answer, String what) {
        if (answer.getBody().getType() == PKIBody.TYPE_ERROR) {
            return status(ErrorMsgContent.getInstance(answer.getBody().getContent())
                .getPKIStatusInfo(), what);
        }
        System.err.println(what + ": unexpected answer " + BODY_NAMES[answer.getBody().getType()]);
        return 2;
    }

    private int status(PKIStatusInfo status, String what) {
        int value = status.getStatus().intValue();
        report.add("status=" + value);
        StringBuilder bits = new StringBuilder();
        if (status.getFailInfo() != null) {  // PKIFailureInfo bit numbers (RFC 9810 §5.2.3)
            byte[] octets = status.getFailInfo().getBytes();
            for (int i = 0; i < octets.length * 8; i++) {
                if ((octets[i / 8] & (0x80 >> (i % 8))) != 0) {
                    bits.append(bits.length() == 0 ? "" : ",").append(i);
                }
            }
            report.add("failInfo=" + bits);
        }
        PKIFreeText text = status.getStatusString();
        if (value == 0 || value == 1) {
            return 0;
        }
        System.err.println(what + ": CMP status=" + value + " failInfo=" + bits + " text="
            + (text != null && text.size() > 0 ? text.getStringAtUTF8(0).getString() : ""));
        return 2;
    }

    // -- transport and files ----------------------------------------------------------------

    private byte[] post(byte[] der) throws Exception {
        HttpURLConnection connection = (HttpURLConnection) new URL(url).openConnection();
        connection.setRequestMethod("POST");
        connection.setDoOutput(true);
        connection.setRequestProperty("Content-Type", "application/pkixcmp");
        try (OutputStream body = connection.getOutputStream()) {
            body.write(der);
        }
        int code = connection.getResponseCode();
        report.add("http=" + code);
        if (code != 200) {
            throw new ProtectionCheck("HTTP " + code);
        }
        if (!"application/pkixcmp".equals(connection.getContentType())) {
            throw new ProtectionCheck("answer content type " + connection.getContentType());
        }
        try (InputStream in = connection.getInputStream()) {
            ByteArrayOutputStream buffer = new ByteArrayOutputStream();
            in.transferTo(buffer);
            return buffer.toByteArray();
        }
    }

    private List<String> macOption() {
        if (options.containsKey("pbm")) {
            return Arrays.asList("pbm", options.get("pbm").get(0), options.get("pbm").get(1));
        }
        if (options.containsKey("pbmac1")) {
            return Arrays.asList("pbmac1", options.get("pbmac1").get(0),
                                 options.get("pbmac1").get(1));
        }
        return null;
    }

    private String option(String name, String fallback) {
        List<String> values = options.get(name);
        return values == null || values.isEmpty() ? fallback : values.get(0);
    }

    private static byte[] random(int size) {
        byte[] bytes = new byte[size];
        RANDOM.nextBytes(bytes);
        return bytes;
    }

    private static List<X509CertificateHolder> readCertificates(String path) throws Exception {
        List<X509CertificateHolder> certificates = new ArrayList<>();
        try (PEMParser parser = new PEMParser(new FileReader(path))) {
            for (Object o = parser.readObject(); o != null; o = parser.readObject()) {
                certificates.add((X509CertificateHolder) o);
            }
        }
        return certificates;
    }

    private static PrivateKey readKey(String path) throws Exception {
        try (PEMParser parser = new PEMParser(new FileReader(path))) {
            Object o = parser.readObject();
            JcaPEMKeyConverter converter = new JcaPEMKeyConverter();
            if (o instanceof org.bouncycastle.openssl.PEMKeyPair) {
                return converter.getKeyPair((org.bouncycastle.openssl.PEMKeyPair) o).getPrivate();
            }
            return converter.getPrivateKey((org.bouncycastle.asn1.pkcs.PrivateKeyInfo) o);
        }
    }

    private static void writePem(String path, List<X509CertificateHolder> certificates,
                                 PrivateKey key) throws Exception {
        try (JcaPEMWriter writer = new JcaPEMWriter(new FileWriter(path))) {
            for (X509CertificateHolder c : certificates) {
                writer.writeObject(c);
            }
        }
        if (key != null) {
            try (JcaPEMWriter writer = new JcaPEMWriter(new FileWriter(
                    path.replace(".pem", ".key.pem")))) {
                writer.writeObject(new org.bouncycastle.openssl.jcajce.JcaPKCS8Generator(key, null));
            }
        }
    }

    private void writeReport() throws Exception {
        try (FileWriter writer = new FileWriter(out + ".txt")) {
            for (String line : report) {
                writer.write(line + "\n");
            }
        }
    }

    /** The regCtrl oldCertID control (RFC 4211 §6.5) BC has no builder for. */
    private static final class OldCertId implements Control {
        private final CertId id;

        OldCertId(CertId id) {
            this.id = id;
        }

        public ASN1ObjectIdentifier getType() {
            return CMPObjectIdentifiers.regCtrl_oldCertID;
        }

        public ASN1Encodable getValue() {
            return id;
        }
    }

    private static final class ProtectionCheck extends Exception {
        ProtectionCheck(String message) {
            super(message);
        }
    }
}
