"""A small run of the CMP fuzzer (`bench/fuzz_cmp.py`, whose full run takes 100,000
inputs): a few hundred mutated messages through the decoder and the server, in process;
none may produce an exception, a traceback in the log, an answer that is no PKIMessage, or
systemFailure (RFC 9483 §3.6.4). Not timed. Plus the inputs the full run found."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from bench.fuzz_cmp import Client, prepare, run
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from iotpki.app import PKI, build_pki
from iotpki.protocols.cmp.routes import answer_bytes
from iotpki.settings import Settings
from iotpki.wire.cmp.requests import encode_cert_req_msg, encode_signed_request
from iotpki.wire.keys import generate_private_key
from iotpki.wire.names import parse_subject
from tests.cmp.conftest import error_failures


@pytest.fixture
def fuzzed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[PKI, Client]]:
    monkeypatch.setenv("IOTPKI_CA_PASSPHRASE", "test passphrase, not a secret")
    pki = build_pki(Settings(data_dir=tmp_path / "data"))
    try:
        yield pki, prepare(pki)
    finally:
        pki.close()


def test_a_few_hundred_mutated_messages(fuzzed: tuple[PKI, Client]) -> None:
    pki, client = fuzzed
    report = run(pki, client, 300, seed=20261206)
    assert report.inputs == 300
    assert (report.escaped, report.not_a_message, report.system_failures,
            report.tracebacks) == (0, 0, 0, 0), report
    assert report.bodies["error"] > 0 and sum(report.bodies.values()) == 300


def test_a_protection_certificate_with_an_invalid_key_is_bad_data_format(
        fuzzed: tuple[PKI, Client]) -> None:
    """Found by the full run: an extraCerts certificate whose EC point is not on the curve
    (`public_key()` raises ValueError) was a systemFailure."""
    pki, client = fuzzed
    der = bytearray(client.chain[0].public_bytes(Encoding.DER))
    point = client.chain[0].public_key().public_bytes(Encoding.X962,
                                                      PublicFormat.UncompressedPoint)
    at = bytes(der).index(point)
    der[at + len(point) - 1] ^= 0x01  # the last octet of Y: off the curve
    broken = x509.load_der_x509_certificate(bytes(der))
    request = encode_cert_req_msg(generate_private_key("ec-p256"), parse_subject("CN=x"))
    message = encode_signed_request("cr", request, client.key, (broken, *client.chain[1:]),
                                    datetime.now(UTC))
    assert error_failures(answer_bytes(pki.cmp, "", message)) == ("error", {"badDataFormat"})
