"""RFC 8894 against certmonger's SCEP helper (`scep-submit`, Debian package certmonger): it
reads GetCACaps and GetCACert, sends pkiMessages and checks each CertRep's signature with
the RA certificate before it prints the pkcsPKIEnvelope, which `openssl cms` decrypts.
certmonger's daemon builds the pkiMessages itself; here our client codec builds them:
PKCSReq with a one-time secret, RenewalReq, PENDING then CertPoll after manual approval,
GetCRL, a wrong challenge, a replay."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from iotpki.wire.scep.attributes import MessageType
from iotpki.wire.scep.content import encode_issuer_and_serial, encode_issuer_and_subject
from tests.scep.conftest import (
    CA,
    DOMAIN_SAN,
    SCEP_SUBMIT,
    Requester,
    Scene,
    csr_der,
    require,
    run,
)

ISSUED, PENDING, REJECTED = 0, (1, 5), 2  # scep-submit's exit codes (certmonger-scep-submit(8))


def pem_message(der: bytes) -> str:
    import base64
    body = base64.encodebytes(der).decode()
    return f"-----BEGIN PKCS7-----\n{body}-----END PKCS7-----\n"


@pytest.fixture
def certmonger(scep: Scene) -> Scene:
    require(SCEP_SUBMIT, "certmonger's scep-submit")
    return scep


def submit(scep: Scene, label: str, *args: str, message: bytes | None = None,
           ) -> subprocess.CompletedProcess[str]:
    assert SCEP_SUBMIT is not None
    if message is not None:
        (scep.dir / "message.pem").write_text(pem_message(message))
        args = (*args, "message.pem")
    return run(SCEP_SUBMIT, "-u", scep.url(label), *args, cwd=scep.dir, check=False)


def trust_files(scep: Scene, label: str) -> list[str]:
    chain = scep.pki.authorities.get(CA).full_chain
    ra = scep.ra(label)
    (scep.dir / "ra.pem").write_bytes(ra.public_bytes(serialization.Encoding.PEM))
    (scep.dir / "ca.pem").write_bytes(b"".join(
        c.public_bytes(serialization.Encoding.PEM) for c in chain))
    return ["-r", "ra.pem", "-N", "ca.pem"]


def decrypt(scep: Scene, requester: Requester, envelope_pem: str) -> bytes:
    """The envelope scep-submit printed, decrypted by openssl with the requester's key."""
    (scep.dir / "envelope.pem").write_text(envelope_pem)
    (scep.dir / "requester.pem").write_bytes(
        requester.certificate.public_bytes(serialization.Encoding.PEM))
    (scep.dir / "requester.key").write_bytes(requester.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    run("openssl", "cms", "-decrypt", "-inform", "PEM", "-in", "envelope.pem", "-binary",
        "-recip", "requester.pem", "-inkey", "requester.key", "-outform", "DER",
        "-out", "inner.der", cwd=scep.dir)
    return (scep.dir / "inner.der").read_bytes()


def test_capabilities_and_ca_certificates(certmonger: Scene) -> None:
    caps = submit(certmonger, "", "-c")
    assert caps.returncode == 0, caps.stdout + caps.stderr
    assert {"POSTPKIOperation", "Renewal", "SHA-256", "AES"} <= set(caps.stdout.split())
    certs = submit(certmonger, "", "-C")
    assert certs.returncode == 0, certs.stdout + certs.stderr
    printed = [x509.load_pem_x509_certificate(("-----BEGIN CERTIFICATE-----" + block).encode())
               for block in certs.stdout.split("-----BEGIN CERTIFICATE-----")[1:]]
    assert printed[0] == certmonger.ra()  # "in order, the RA certificate, the CA certificate"
    assert set(printed) == {certmonger.ra(), *certmonger.pki.authorities.get(CA).full_chain}


def test_pkcsreq_with_one_time_secret(certmonger: Scene) -> None:
    requester = Requester.new()
    message, _ = requester.message(MessageType.PKCS_REQ, csr_der(
        requester.key, "CN=sensor-7", certmonger.secret_registration("CN=scep-cm-1")),
        certmonger.ra())
    done = submit(certmonger, "", "-p", *trust_files(certmonger, ""), message=message)
    assert done.returncode == ISSUED, done.stdout + done.stderr
    issued = pkcs7.load_der_pkcs7_certificates(decrypt(certmonger, requester, done.stdout))[0]
    assert issued.subject.rfc4514_string() == "CN=scep-cm-1"


def test_poll_after_manual_approval(certmonger: Scene) -> None:
    requester = Requester.new()
    ra = certmonger.ra("approval")
    trust = trust_files(certmonger, "approval")
    csr = csr_der(requester.key, "CN=scep-cm-approved", None, [DOMAIN_SAN])
    first = submit(certmonger, "approval", "-p", *trust,
                   message=requester.message(MessageType.PKCS_REQ, csr, ra)[0])
    assert first.returncode in PENDING, first.stdout + first.stderr

    poll = encode_issuer_and_subject(certmonger.pki.authorities.get(CA).certificate.subject,
                                     x509.load_der_x509_csr(csr).subject)
    waiting = submit(certmonger, "approval", "-p", *trust,
                     message=requester.message(MessageType.CERT_POLL, poll, ra)[0])
    assert waiting.returncode in PENDING, waiting.stdout + waiting.stderr

    pending = next(p for p in certmonger.pki.enrollment.approval.find() if p.csr == csr)
    certmonger.pki.enrollment.approval.approve(pending.id, "operator")
    done = submit(certmonger, "approval", "-p", *trust,
                  message=requester.message(MessageType.CERT_POLL, poll, ra)[0])
    assert done.returncode == ISSUED, done.stdout + done.stderr
    issued = pkcs7.load_der_pkcs7_certificates(decrypt(certmonger, requester, done.stdout))[0]
    assert issued.subject.rfc4514_string() == "CN=scep-cm-approved"


def test_get_crl(certmonger: Scene, tmp_path: Path) -> None:
    requester = Requester.new()
    issuer = certmonger.pki.authorities.get(CA).certificate
    query = encode_issuer_and_serial(issuer.subject, 1)
    done = submit(certmonger, "", "-p", *trust_files(certmonger, ""),
                  message=requester.message(MessageType.GET_CRL, query, certmonger.ra())[0])
    assert done.returncode == ISSUED, done.stdout + done.stderr
    (tmp_path / "crls.p7").write_bytes(decrypt(certmonger, requester, done.stdout))
    printed = run("openssl", "pkcs7", "-inform", "DER", "-in", "crls.p7", "-print_certs",
                  cwd=tmp_path).stdout
    assert "-----BEGIN X509 CRL-----" in printed


def test_replay_is_rejected(certmonger: Scene) -> None:
    requester = Requester.new()
    message, _ = requester.message(MessageType.PKCS_REQ, csr_der(
        requester.key, "CN=sensor-7", certmonger.secret_registration("CN=scep-cm-replay")),
        certmonger.ra())
    trust = trust_files(certmonger, "")
    assert submit(certmonger, "", "-p", *trust, message=message).returncode == ISSUED
    again = submit(certmonger, "", "-p", *trust, message=message)
    assert again.returncode == REJECTED, again.stdout + again.stderr
    assert certmonger.issued_here() == 1
    assert [r["reason"] for r in certmonger.refusals()] == ["replayed"]


def test_renewal_signed_by_the_current_certificate(certmonger: Scene) -> None:
    """RenewalReq (§3.3.1) signed by the certificate issued a moment ago: the endpoint's
    renewal method (current-certificate), a new key, the same subject and SANs."""
    requester = Requester.new()
    trust = trust_files(certmonger, "")
    first = submit(certmonger, "", "-p", *trust, message=requester.message(
        MessageType.PKCS_REQ, csr_der(requester.key, "CN=sensor-7",
                                      certmonger.secret_registration("CN=scep-cm-renew")),
        certmonger.ra())[0])
    assert first.returncode == ISSUED, first.stdout + first.stderr
    current = pkcs7.load_der_pkcs7_certificates(decrypt(certmonger, requester, first.stdout))[0]

    renewing = Requester(requester.key, current)  # signs with the issued certificate
    new = Requester.new()
    sans = list(current.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    csr = csr_der(new.key, "CN=scep-cm-renew", None, sans)
    done = submit(certmonger, "", "-p", *trust,
                  message=renewing.message(MessageType.RENEWAL_REQ, csr, certmonger.ra())[0])
    assert done.returncode == ISSUED, done.stdout + done.stderr
    renewed = pkcs7.load_der_pkcs7_certificates(decrypt(certmonger, renewing, done.stdout))[0]
    assert renewed.subject == current.subject and renewed.public_key() == new.key.public_key()
    methods = [e["method"] for e in certmonger.audit("certificate.issue")
               if e["outcome"] == "success" and e.get("profile") == "operational"]
    assert methods == ["one-time-secret", "current-certificate"]


def test_wrong_challenge_is_rejected(certmonger: Scene) -> None:
    registration = certmonger.secret_registration("CN=scep-cm-wrong").split(":")[0]
    requester = Requester.new()
    message, _ = requester.message(MessageType.PKCS_REQ, csr_der(
        requester.key, "CN=sensor-7", f"{registration}:wrong"), certmonger.ra())
    done = submit(certmonger, "", "-p", *trust_files(certmonger, ""), message=message)
    assert done.returncode == REJECTED, done.stdout + done.stderr
    assert certmonger.issued_here() == 0
    assert [r["reason"] for r in certmonger.refusals()] == ["bad-secret"]
