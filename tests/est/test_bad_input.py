"""Bad input (RFC 7030 §4.2.3: a 4xx with a human-readable text/plain explanation): nothing
is issued, and every refusal is in the audit log."""

from __future__ import annotations

import pytest

from tests.est.conftest import EST

pytestmark = pytest.mark.interop


def test_malformed_bodies_and_media_types(est: EST) -> None:
    registration, secret = est.secret_registration()
    auth = ("-u", f"{registration}:{secret}")
    before = len(est.issued())
    (est.dir / "garbage.b64").write_bytes(b"this is %%% not base64 ***\n")
    answer = est.curl("simpleenroll", *auth, body=est.dir / "garbage.b64")
    assert answer.status == 400 and b"not valid base64" in answer.body
    assert answer.headers["content-type"].startswith("text/plain")

    (est.dir / "notder.b64").write_bytes(b"aGVsbG8gd29ybGQ=\n")  # "hello world"
    answer = est.curl("simpleenroll", *auth, body=est.dir / "notder.b64")
    assert answer.status == 400 and b"PKCS#10" in answer.body

    good = est.new_key_and_csr("good", "/CN=sensor-9")
    answer = est.curl("simpleenroll", *auth, body=good, content_type="text/plain")
    assert answer.status == 415 and b"application/pkcs10" in answer.body
    answer = est.curl("simpleenroll", "-H", "Authorization: Basic ???", body=good)
    assert answer.status == 401 and "www-authenticate" in answer.headers
    answer = est.curl("simpleenroll", *auth)  # GET
    assert answer.status == 405 and answer.headers["allow"] == "POST"

    assert len(est.issued()) == before
    audited = [r for r in est.refusals() if r.get("protocol") == "est"]
    assert {r["operation"] for r in audited} == {"simpleenroll"}
    assert len(audited) == 4  # base64, DER, media type, credentials
    # The registration was not used up by the refused requests:
    answer = est.curl("simpleenroll", *auth, body=good)
    assert answer.status == 200


def test_csr_whose_signature_does_not_verify(est: EST) -> None:
    registration, secret = est.secret_registration()
    est.new_key_and_csr("csr", "/CN=sensor-9")
    der = bytearray((est.dir / "csr.der").read_bytes())
    der[-1] ^= 0x01  # the last byte of the signature value
    (est.dir / "broken.der").write_bytes(bytes(der))
    est.openssl("base64", "-in", "broken.der", "-out", "broken.b64")
    before = len(est.issued())
    answer = est.curl("simpleenroll", "-u", f"{registration}:{secret}",
                      body=est.dir / "broken.b64")
    assert answer.status == 400 and b"bad-signature" in answer.body
    assert len(est.issued()) == before
    assert any(r.get("reason") == "bad-signature" for r in est.refusals())
