"""A small run of the CMP fuzzer (`bench/fuzz_cmp.py`, whose full run takes 100,000
inputs): a few hundred mutated messages through the decoder and the server, in process;
none may produce an exception, a traceback in the log, an answer that is no PKIMessage, or
systemFailure (RFC 9483 §3.6.4). Not timed. Plus the inputs the full run found."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from bench.fuzz_cmp import Client, encode, prepare, run
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from iotpki.app import PKI, build_pki
from iotpki.protocols.cmp.routes import answer_bytes
from iotpki.settings import Settings
from iotpki.wire.cmp.messages import ErrorReport, decode_pki_message
from iotpki.wire.cmp.requests import encode_cert_req_msg, encode_signed_request
from iotpki.wire.keys import generate_private_key
from iotpki.wire.names import parse_subject
from tests.cmp.conftest import error_failures

# A 237-octet input of the fuzzer (seed 5): well-formed DER with a tag pyasn1 did not expect
# where it expects a CHOICE; its error message formatted the whole schema (140 ms of CPU).
UNEXPECTED_TAG = bytes.fromhex(
    "3081ea3081b9020102a41630143112301006035504030c0966757a7a2d6c696e65a4023000a011180f323032"
    "36313230363036313633315aa13e303c06092a864886f67d07420d302f041080f6b4bc2b53275052023413b4"
    "fb648d300b0609608648016503040201020203e8300a06082a864886f70d0209a20b040966757a7a2d6c696e"
    "65a412041094a5c62e450d63c16ff5498335402419a51204107feb540dcd2c704eba29e25b94eb5948a81030"
    "0e300c06082b0601050507040d0500b907d4053003020900a0230321003f34d37d8fd99d69dba8bea1fc23ed"
    "8865bfc388b162bfee54c79e724f63c453")


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


def test_an_unexpected_tag_costs_no_schema_formatting(fuzzed: tuple[PKI, Client]) -> None:
    """`wire.asn1_cost`: pyasn1's error for an unexpected tag no longer formats the whole
    schema; the answer is badDataFormat and takes milliseconds of CPU, not 140."""
    pki, _ = fuzzed
    answer_bytes(pki.cmp, "", UNEXPECTED_TAG)  # warm up (the protection key is loaded)
    start = time.process_time()
    answer = answer_bytes(pki.cmp, "", UNEXPECTED_TAG)
    spent = time.process_time() - start
    assert error_failures(answer) == ("error", {"badDataFormat"})
    assert spent < 0.04, spent


# The PKCS #10 request of a p10cr the fuzzer made (seed 8): its SPKI algorithm OID is
# mutated (1.2.840.10045.14592.1...), so `public_key()` raises.
BAD_KEY_CSR = bytes.fromhex(
    "308201193081c102010030133111300f06035504030c0866757a7a2d3835323059301306072a8648ce3de0"
    "0106082a8648ce3d03010703420004ec206c756c83164b41483a75cb10572b209a5b7eea761a3ece9e06"
    "56dbc665d699847a2c83f9f94671c75d92226b38f3834399c37dfe7d8d3f84c478af8a8c78a04c304a06"
    "092a864886f70d01090e313d303b30390603551d1104323030862e75726e3a696f74706b693a646f6d61"
    "696e3a6275696c64696e672d34322e6f70657261746f722e6578616d706c65300a06082a8648ce3d0403"
    "02034700304402202a48eb7f7b18446a99d241d27245d25a7b6231cb2d026a0ba38ca6cac5ab35db0220"
    "48e420dbae7ae2e6b551fd871fc1d0b419a3e9590ac8307d193a3ce555f4608e")


@pytest.mark.parametrize("protection", [0, 1, 2])  # PasswordBasedMac, PBMAC1, signature
def test_a_requested_key_that_cannot_be_read_is_bad_data_format(
        fuzzed: tuple[PKI, Client], protection: int) -> None:
    """Found by the fuzzer: a correctly protected p10cr whose requested key cannot be read
    raised in the template check (systemFailure)."""
    pki, client = fuzzed
    rng = _Choosing(protection)
    answer = decode_pki_message(answer_bytes(pki.cmp, "", encode(
        "p10cr", BAD_KEY_CSR, client, rng)))  # type: ignore[arg-type]
    body = answer.body
    failures = (body.failures if isinstance(body, ErrorReport)
                else body.responses[0].failures)  # type: ignore[union-attr]
    assert "systemFailure" not in failures and failures, answer


class _Choosing(random.Random):
    """A random source whose first choice (the protection) is fixed."""

    def __init__(self, first: int) -> None:
        super().__init__(1)
        self._first: int | None = first

    def randrange(self, *args: Any, **kwargs: Any) -> int:
        if self._first is not None:
            first, self._first = self._first, None
            return first
        return super().randrange(*args, **kwargs)
