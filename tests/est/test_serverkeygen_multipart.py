"""RFC 7030 §4.4.2 serverkeygen answers read by a strict third-party multipart parser
(python-multipart, `tests/est/multipart_peer.py`), RFC 2046 §5.1.1 framing: CRLF after
every header and base64 line, CRLF before every delimiter. Plain (application/pkcs8) and
encrypted (server-generated-key, opened with `openssl cms`) forms; EC and RSA server-made
keys; EC and RSA recipients; the key matches the certificate. When the key cannot be
handed over, nothing is issued and the registration stays open."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

from iotpki.app import PKI, build_sealer
from iotpki.core.ra.key_delivery import KeyDelivery
from iotpki.wire.est import encode_serverkeygen
from iotpki.wire.est_keygen import ASYMMETRIC_DECRYPT_KEY_ID, SERVER_GENERATED_KEY
from iotpki.wire.keys import generate_private_key
from tests.cmp.keygen_peer import open_key_delivery, same_key
from tests.est.inprocess import InProcessEST
from tests.est.multipart_peer import base64_content, strict_parts
from tests.factories import make_csr

CERTS_ONLY = b"application/pkcs7-mime; smime-type=certs-only"


def _key_delivery(pki: PKI, key_type: str) -> KeyDelivery:
    """The deployment's key delivery, with the operational profile generating `key_type`."""
    operational = pki.profiles["operational"]
    profiles = {**pki.profiles, "operational": replace(
        operational, key_types=(key_type, *(t for t in operational.key_types if t != key_type)))}
    uow = pki.database.unit_of_work
    return KeyDelivery(uow, profiles, pki.service_certificates, build_sealer(pki.settings),
                       pki.clock)


@pytest.fixture(params=["ec-p256", "rsa-2048"])
def est(demo_pki: PKI, request: pytest.FixtureRequest) -> Iterator[InProcessEST]:
    client = InProcessEST(demo_pki, {"kg": ("one-time-secret",)},
                          _key_delivery(demo_pki, request.param))
    client.generated_key_type = request.param
    try:
        yield client
    finally:
        client.close()


def _csr(recipient: x509.Certificate | None = None, key_id: bytes | None = None) -> bytes:
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sensor-9")]))
    if recipient is not None or key_id is not None:
        ski = key_id or recipient.extensions.get_extension_for_class(  # type: ignore[union-attr]
            x509.SubjectKeyIdentifier).value.digest
        builder = builder.add_attribute(ASYMMETRIC_DECRYPT_KEY_ID, ski,
                                        _tag=_ASN1Type.OctetString)
    key = generate_private_key("ec-p256")
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _certificate(part_der: bytes) -> x509.Certificate:
    from cryptography.hazmat.primitives.serialization import pkcs7
    certificates = pkcs7.load_der_pkcs7_certificates(part_der)
    assert len(certificates) == 1
    return certificates[0]


def test_plain_answer_reads_strictly(est: InProcessEST) -> None:
    """§4.4.2: application/pkcs8 + certs-only, each `Content-Transfer-Encoding: base64`."""
    registration, secret = est.secret_registration()
    answer = est.post("serverkeygen", _csr(), "kg", (registration, secret))
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    parts = strict_parts(answer.headers["content-type"], answer.content)
    assert [p.header(b"Content-Type") for p in parts] == [b"application/pkcs8", CERTS_ONLY]
    assert all(p.header(b"Content-Transfer-Encoding") == b"base64" for p in parts)
    key = serialization.load_der_private_key(base64_content(parts[0]), None)
    certificate = _certificate(base64_content(parts[1]))
    assert same_key(key, certificate)
    generated = "rsa-2048" if isinstance(key, rsa.RSAPrivateKey) else "ec-p256"
    assert generated == est.generated_key_type


@pytest.mark.interop
@pytest.mark.parametrize("recipient_type", ["ec-p256", "rsa-2048"])
def test_encrypted_answer_reads_strictly(est: InProcessEST, recipient_type: str,
                                         tmp_path: Path) -> None:
    """§4.4.1.2 / §4.4.2: the key part is server-generated-key, EnvelopedData to the TLS
    client certificate (EC: key agreement, RSA: key transport); openssl opens it."""
    client, client_key = est.operational("sensor-client", recipient_type)
    est.tls = client
    registration, secret = est.secret_registration()
    answer = est.post("serverkeygen", _csr(client), "kg", (registration, secret))
    assert answer.status_code == 200, answer.text
    parts = strict_parts(answer.headers["content-type"], answer.content)
    assert [p.header(b"Content-Type") for p in parts] == [SERVER_GENERATED_KEY.encode(),
                                                          CERTS_ONLY]
    certificate = _certificate(base64_content(parts[1]))
    key = open_key_delivery(tmp_path, _enveloped_data(base64_content(parts[0])),
                            *_openssl_recipient(tmp_path, client, client_key, est))
    assert same_key(key, certificate)


def _enveloped_data(content_info: bytes) -> bytes:
    from pyasn1.codec.der import decoder
    from pyasn1_alt_modules import rfc5652
    info, _ = decoder.decode(content_info, asn1Spec=rfc5652.ContentInfo())
    assert str(info["contentType"]) == "1.2.840.113549.1.7.3"
    return bytes(info["content"])


def _openssl_recipient(directory: Path, certificate: x509.Certificate, key: Any,
                       est: InProcessEST) -> tuple[list[str], Path]:
    (directory / "client.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (directory / "client.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    root = est.pki.authorities.get("operatorco-operations").full_chain[-1]
    (directory / "root.pem").write_bytes(root.public_bytes(serialization.Encoding.PEM))
    return ["-recip", "client.pem", "-inkey", "client.key"], directory / "root.pem"


def test_nothing_issued_when_the_key_cannot_be_handed_over(est: InProcessEST) -> None:
    """§4.4.2: an Ed25519 client certificate can neither transport nor agree a key. The
    answer is built before issuance, so the refusal leaves no certificate, no consumed
    registration and no `key.server-generated` record."""
    client, _ = est.operational("sensor-ed", "ed25519")
    est.tls = client
    registration, secret = est.secret_registration()
    before = est.issued_count()
    answer = est.post("serverkeygen", _csr(client), "kg", (registration, secret))
    assert answer.status_code == 400, answer.text
    assert est.issued_count() == before
    assert est.pki.registrations.get(registration).status.value == "open"
    assert not [e for e in est.pki.audit.entries(limit=None)
                if e.record.action == "key.server-generated"]
    assert any(e.record.outcome == "refused" and e.record.details.get("operation")
               == "serverkeygen" for e in est.pki.audit.entries(limit=None))


def test_wire_encoding_has_crlf_everywhere() -> None:
    """RFC 2046 §5.1.1 on the codec alone: no bare LF, CRLF before each delimiter."""
    csr, key = make_csr("sensor-1")
    del csr
    pkcs8 = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
    certificate = _self_signed(key)
    content_type, body = encode_serverkeygen(pkcs8, certificate)
    boundary = content_type.split("boundary=")[1].encode()
    assert body.replace(b"\r\n", b"").count(b"\n") == 0
    assert body.replace(b"\r\n", b"").count(b"\r") == 0
    assert body.startswith(b"--" + boundary + b"\r\n")
    assert body.count(b"\r\n--" + boundary + b"\r\n") == 1
    assert body.endswith(b"\r\n--" + boundary + b"--\r\n")
    parts = strict_parts(content_type, body)
    assert base64_content(parts[0]) == pkcs8
    assert base64.b64encode(pkcs8)[:64] == parts[0].data[:64]


def _self_signed(key: Any) -> x509.Certificate:
    from datetime import UTC, datetime, timedelta
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sensor-1")])
    now = datetime.now(UTC)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(now)
            .not_valid_after(now + timedelta(days=1)).sign(key, hashes.SHA256()))
