"""RFC 8894 against the Go SCEP client (Debian `scep`, micromdm scepclient 2.1.0): GetCACaps,
GetCACert and PKCSReq with a registration's one-time secret, renewal (RenewalReq signed by
the current certificate), a wrong challenge; answers checked with `openssl`."""

from __future__ import annotations

import hashlib
import subprocess

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.scep.conftest import Scene, require, run


def scepclient(scep: Scene, label: str, *args: str) -> subprocess.CompletedProcess[str]:
    tool = require("scepclient", "scepclient (Debian package scep)")
    ra = scep.ra(label)
    fingerprint = hashlib.sha256(ra.public_bytes(serialization.Encoding.DER)).hexdigest()
    return run(tool, "-server-url", scep.url(label), "-ca-fingerprint", fingerprint,
               "-private-key", "client.key", "-certificate", "client.pem", *args,
               cwd=scep.dir, check=False)


def test_get_ca_caps_s3_5_2(scep: Scene) -> None:
    status, media, body = scep.get("", "operation=GetCACaps")
    assert status == 200 and media.startswith("text/plain")
    assert set(body.decode().split()) == {"AES", "POSTPKIOperation", "Renewal", "SCEPStandard",
                                          "SHA-256", "SHA-512"}
    _, _, legacy = scep.get("legacy", "operation=GetCACaps")
    assert {"DES3", "SHA-1"} <= set(legacy.decode().split())


def test_get_ca_cert_s4_2_1_2_ra_and_chain(scep: Scene) -> None:
    status, media, body = scep.get("", "operation=GetCACert")
    assert status == 200 and media == "application/x-x509-ca-ra-cert"
    (scep.dir / "cacerts.p7").write_bytes(body)
    printed = run("openssl", "pkcs7", "-inform", "DER", "-in", "cacerts.p7", "-print_certs",
                  cwd=scep.dir).stdout
    assert printed.count("-----BEGIN CERTIFICATE-----") == 3  # RA, issuing CA, root
    ra = scep.ra()
    chain = scep.pki.authorities.get("operatorco-operations").full_chain
    assert set(scep.ca_certificates()) == {ra, *chain}
    usage = ra.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_encipherment and usage.digital_signature


GO_SUBJECT = "CN={cn},OU=MDM,O=scep-client,C=US"  # what scepclient asks for by default


def test_enroll_then_renew_s3_3_1(scep: Scene) -> None:
    """PKCSReq with a registration's one-time secret, then RenewalReq signed by the issued
    certificate (the endpoint's renewal method, current-certificate)."""
    subject = GO_SUBJECT.format(cn="scep-go-1")
    challenge = scep.secret_registration(subject, profile="service")
    done = scepclient(scep, "legacy", "-challenge", challenge, "-cn", "scep-go-1")
    assert done.returncode == 0, done.stdout + done.stderr
    issued = x509.load_pem_x509_certificate((scep.dir / "client.pem").read_bytes())
    assert issued.subject.rfc4514_string() == subject
    assert issued.issuer == scep.pki.authorities.get("operatorco-operations").certificate.subject
    assert scep.issued_here() == 1

    renewed = scepclient(scep, "legacy", "-cn", "scep-go-1")  # client.pem exists: RenewalReq
    assert renewed.returncode == 0, renewed.stdout + renewed.stderr
    assert scep.issued_here() == 2
    methods = [e["method"] for e in scep.audit("certificate.issue") if e["outcome"] == "success"
               and e.get("profile") == "service"]
    assert methods == ["one-time-secret", "current-certificate"]


def test_wrong_challenge_is_refused(scep: Scene) -> None:
    registration = scep.secret_registration(GO_SUBJECT.format(cn="scep-go-3"),
                                            profile="service").split(":")[0]
    done = scepclient(scep, "legacy", "-challenge", f"{registration}:wrong", "-cn", "scep-go-3")
    assert done.returncode != 0
    assert "failInfo: badRequest (2)" in done.stdout + done.stderr
    assert scep.issued_here() == 0
    assert [r["reason"] for r in scep.refusals()] == ["bad-secret"]


def test_des_refused_without_legacy_s3_5_2(scep: Scene) -> None:
    """The Go client 2.1.0 encrypts with DES: refused as badAlg where legacy is not allowed,
    nothing issued, the refusal audited."""
    challenge = scep.secret_registration("CN=scep-go-2")
    done = scepclient(scep, "", "-challenge", challenge, "-cn", "scep-go-2")
    assert done.returncode != 0
    assert "failInfo: badAlg (0)" in done.stdout + done.stderr
    assert scep.issued_here() == 0
    assert [(r["reason"], r["operation"]) for r in scep.refusals()] == [
        ("malformed-request", "PKCS_REQ")]
