"""The one-pass CRL encoder (RFC 5280 §5.1) read back by `cryptography` and OpenSSL."""

from __future__ import annotations

import random
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from iotpki.wire.crl import REASON_CODES, RevokedEntry, encode_revoked_certificates, splice_revoked
from iotpki.wire.der import integer_from_hex
from iotpki.wire.keys import signature_hash_for

NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)


def frame(key: object) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    builder = (x509.CertificateRevocationListBuilder().issuer_name(name).last_update(NOW)
               .next_update(NOW + timedelta(days=1)).add_extension(x509.CRLNumber(7), False))
    return builder.sign(key, signature_hash_for(key)).public_bytes(Encoding.DER)  # type: ignore[arg-type]


def entries(count: int, seed: int = 1) -> list[RevokedEntry]:
    rng = random.Random(seed)
    reasons = [None, *REASON_CODES]
    start = int(NOW.timestamp())
    return [RevokedEntry(format(rng.getrandbits(rng.choice([8, 63, 64, 127])) or 1, "x"),
                         start - rng.randrange(10**9) + rng.choice([0, 10**9]),  # past 2050 too
                         rng.choice([r for r in reasons if r != "removeFromCRL"]),
                         start - 3 * 86400 if rng.random() < 0.2 else None)
            for _ in range(count)]


@pytest.mark.parametrize("key", [ec.generate_private_key(ec.SECP256R1()),
                                 ed25519.Ed25519PrivateKey.generate(),
                                 rsa.generate_private_key(65537, 2048)],
                         ids=["ec", "ed25519", "rsa"])
def test_spliced_crl_reads_back_entry_for_entry(key: object) -> None:
    wanted = entries(2000)
    revoked, count = encode_revoked_certificates(wanted)
    crl = x509.load_der_x509_crl(splice_revoked(frame(key), revoked, key,
                                                signature_hash_for(key)))
    assert count == len(crl) == 2000
    assert crl.is_signature_valid(key.public_key())  # type: ignore[attr-defined]
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 7
    for expected, got in zip(wanted, crl, strict=True):
        assert got.serial_number == int(expected.serial_hex, 16)
        assert got.revocation_date_utc == datetime.fromtimestamp(expected.revocation_date, UTC)
        if expected.invalidity_date is not None:
            assert got.extensions.get_extension_for_class(
                x509.InvalidityDate).value.invalidity_date_utc == datetime.fromtimestamp(
                    expected.invalidity_date, UTC)
        reasons = [e.value for e in got.extensions if isinstance(e.value, x509.CRLReason)]
        if expected.reason in (None, "unspecified"):
            assert reasons == []
        else:
            assert reasons[0].reason.value == expected.reason


def test_openssl_verifies_a_spliced_crl(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    revoked, _ = encode_revoked_certificates(entries(500, seed=2))
    der = splice_revoked(frame(key), revoked, key, hashes.SHA384())
    (tmp_path / "crl.der").write_bytes(der)
    done = subprocess.run(["openssl", "crl", "-inform", "DER", "-in", "crl.der", "-noout",
                           "-text"], cwd=tmp_path, capture_output=True, text=True, timeout=30,
                          check=False)
    assert done.returncode == 0 and done.stdout.count("Serial Number:") == 500


def test_no_entries_means_no_revoked_certificates_field() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    revoked, count = encode_revoked_certificates([])
    assert (revoked, count) == (b"", 0)
    framed = frame(key)
    assert splice_revoked(framed, revoked, key, hashes.SHA256()) == framed
    assert len(x509.load_der_x509_crl(framed)) == 0


def test_der_integers() -> None:
    assert integer_from_hex("1") == b"\x02\x01\x01"
    assert integer_from_hex("80") == b"\x02\x02\x00\x80"  # a leading zero keeps it positive
    assert integer_from_hex("abc") == b"\x02\x02\x0a\xbc"


def test_times_switch_to_generalized_time_in_2050() -> None:
    """RFC 5280 §5.1.2.6 / §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050."""
    last_utc = int(datetime(2049, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp())
    revoked, _ = encode_revoked_certificates([RevokedEntry("01", last_utc, None),
                                              RevokedEntry("02", last_utc + 1, None)])
    assert b"\x17\x0d491231235959Z" in revoked
    assert b"\x18\x0f20500101000000Z" in revoked
