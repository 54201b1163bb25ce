"""RFC 7030 §4.4 server-side key generation: multipart/mixed with the PKCS#8 key and the
certificate; openssl checks that they belong together and that the chain verifies."""

from __future__ import annotations

import re

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.est.conftest import EST

pytestmark = pytest.mark.interop


def _parts(content_type: str, body: bytes) -> dict[str, bytes]:
    boundary = re.search(r"boundary=([^;]+)", content_type)
    assert boundary is not None, content_type
    parts = {}
    for part in body.split(b"--" + boundary.group(1).encode())[1:-1]:
        head, _, content = part.partition(b"\r\n\r\n")
        media = re.search(rb"Content-Type: ([^\r\n]+)", head)
        assert media is not None and b"Content-Transfer-Encoding: base64" in head
        parts[media.group(1).decode()] = content
    return parts


def test_serverkeygen_returns_a_key_and_its_certificate(est: EST) -> None:
    registration, secret = est.secret_registration("CN=sensor-keyless")
    body = est.new_key_and_csr("request", "/CN=sensor-keyless")
    answer = est.curl("serverkeygen", "-u", f"{registration}:{secret}", body=body)
    assert answer.status == 200, answer.body
    assert answer.headers["content-type"].startswith("multipart/mixed; boundary=")
    parts = _parts(answer.headers["content-type"], answer.body)
    assert set(parts) == {"application/pkcs8", "application/pkcs7-mime; smime-type=certs-only"}
    (est.dir / "key.b64").write_bytes(parts["application/pkcs8"])
    est.openssl("base64", "-d", "-in", "key.b64", "-out", "key.der")
    key_public = est.openssl("pkey", "-inform", "DER", "-in", "key.der", "-pubout")
    (est.dir / "cert.b64").write_bytes(parts["application/pkcs7-mime; smime-type=certs-only"])
    est.openssl("base64", "-d", "-in", "cert.b64", "-out", "cert.p7")
    est.openssl("pkcs7", "-inform", "DER", "-in", "cert.p7", "-print_certs", "-out", "cert.pem")
    assert est.openssl("x509", "-in", "cert.pem", "-noout", "-pubkey") == key_public
    est.verify("cert")
    request_key = est.openssl("pkey", "-in", "request.key", "-pubout")
    assert request_key != key_public  # the server made the key
    assert "prime256v1" in est.openssl("pkey", "-inform", "DER", "-in", "key.der", "-noout",
                                       "-text")
    _assert_not_kept((est.dir / "key.der").read_bytes(), est)


def _assert_not_kept(key_der: bytes, est: EST) -> None:
    """No archival (§4.4): the key is in no file of the data directory (the SQLite database
    included) and in no audit entry."""
    data_dir = est.pki.settings.data_dir
    key = serialization.load_der_private_key(key_der, None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    secret_part = key.private_numbers().private_value.to_bytes(32, "big")
    for path in data_dir.rglob("*"):
        if path.is_file():
            assert secret_part not in path.read_bytes(), path
    assert all(secret_part.hex() not in str(e.record.details)
               for e in est.pki.audit.entries(limit=None))
