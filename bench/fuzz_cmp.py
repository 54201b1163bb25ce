"""Bounded fuzz run of the CMP decoder and server, in process (issue 13 "Done means", issue 15).

Every input goes through `protocols.cmp.routes.answer_bytes`, what the HTTP route calls with
the request body: decode (`wire.cmp`), header checks, authentication, dispatch, the core.
Two kinds of input, half each:

- raw: a valid request of every body type (ir, cr, kur, p10cr, rr, certConf, genm, pollReq,
  error; MAC-protected with PasswordBasedMac and PBMAC1, and signed) with 1 to 4 byte-level
  mutations (bit flips, random bytes, inserted and deleted runs, truncation, length octets,
  duplicated runs, splices with another seed): the decoder's input;
- structured: a fresh request whose *body* (or one header field) is mutated and which is then
  protected correctly (a good MAC with a usable reusable credential, or a good signature by
  a current certificate), so that mutated CRMF, PKCS #10, RevDetails, CertStatus and
  InfoTypeAndValue reach the server behind valid protection.

It counts what a client would see and what the log shows: answers that are no PKIMessage,
exceptions escaping `answer_bytes` (an HTTP 500 on the route), answers with failInfo
systemFailure (a fault of ours), and log records carrying a traceback; all must be 0. It
reports the process RSS before and after and the answers by body type and failInfo.

    python bench/fuzz_cmp.py [--count 100000] [--seed 1] [--failures DIR]

Inputs that trip a check are written to DIR (hex, one file each) to replay.
"""

from __future__ import annotations

import argparse
import collections
import logging
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from pyasn1_alt_modules import rfc9480

from iotpki.app import PKI, build_pki
from iotpki.cli.demo_setup import create_demo_hierarchy
from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.core.outcomes import Issued
from iotpki.core.ra.registration import RegistrationMethod
from iotpki.core.ra.registration_service import RegistrationSpec
from iotpki.protocols.cmp.routes import answer_bytes
from iotpki.settings import Settings
from iotpki.wire.cmp.client_requests import encode_cert_conf
from iotpki.wire.cmp.messages import decode_pki_message
from iotpki.wire.cmp.pbmac1 import PBMAC1Parameters
from iotpki.wire.cmp.protection import MACProtection, PBMParameters
from iotpki.wire.cmp.requests import (
    KeySignature,
    RequestProtection,
    encode_cert_req_msg,
    genm_body,
    subject_key_id,
)
from iotpki.wire.cmp.tlv import check_tlv_tree
from iotpki.wire.cms_envelope import oid as encode_oid
from iotpki.wire.der import (
    BIT_STRING,
    INTEGER,
    OCTET_STRING,
    SEQUENCE,
    children,
    generalized_time,
    read_tlv,
    tlv,
)
from iotpki.wire.errors import DecodeError
from iotpki.wire.keys import generate_private_key
from iotpki.wire.names import parse_subject

CA = "operatorco-operations"
DOMAIN = "building-42.operator.example"
REFERENCE = "fuzz-line"
# RFC 9810 §5.1.2 PKIBody tags (EXPLICIT)
TAGS = {"ir": 0xA0, "cr": 0xA2, "p10cr": 0xA4, "kur": 0xA7, "rr": 0xAB, "genm": 0xB5,
        "error": 0xB7, "certConf": 0xB8, "pollReq": 0xB9}
INFO_TYPES = ["1.3.6.1.5.5.7.4.17", "1.3.6.1.5.5.7.4.18", "1.3.6.1.5.5.7.4.19",
              "1.3.6.1.5.5.7.4.6", "1.3.6.1.5.5.7.4.20", "1.3.6.1.5.5.7.4.22"]
SHA256, HMAC_SHA256 = "2.16.840.1.101.3.4.2.1", "1.2.840.113549.2.9"
_IMPLICIT_CONFIRM = tlv(SEQUENCE, tlv(SEQUENCE, encode_oid("1.3.6.1.5.5.7.4.13") + b"\x05\x00"))


@dataclass
class Client:
    """What the fuzzer protects with: the reusable credential's secret, a current
    certificate and its key."""

    secret: str
    key: Any
    chain: tuple[x509.Certificate, ...]


@dataclass
class Report:
    inputs: int = 0
    not_a_message: int = 0  # our answer did not decode: must be 0
    escaped: int = 0  # exceptions out of answer_bytes (HTTP 500): must be 0
    system_failures: int = 0  # failInfo systemFailure: must be 0
    tracebacks: int = 0  # log records with exc_info: must be 0
    bodies: collections.Counter[str] = field(default_factory=collections.Counter)
    failures: collections.Counter[str] = field(default_factory=collections.Counter)
    rss_before_kib: int = 0
    rss_after_kib: int = 0
    seconds: float = 0.0

    @property
    def bad(self) -> int:
        return self.not_a_message + self.escaped + self.system_failures + self.tracebacks


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


# -- seeds ------------------------------------------------------------------------------------

def make_csr(name: str) -> tuple[bytes, Any]:
    """A PKCS #10 request (DER) for CN=name in the demo domain, and its key."""
    key = generate_private_key("ec-p256")
    csr = (x509.CertificateSigningRequestBuilder().subject_name(parse_subject(f"CN={name}"))
           .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(
               f"urn:iotpki:domain:{DOMAIN}")]), critical=False)
           .sign(key, hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.DER), key


def _body(kind: str, client: Client, rng: random.Random) -> bytes:
    subject = parse_subject(f"CN=fuzz-{rng.randrange(1000)}")
    if kind in ("ir", "cr", "kur"):
        return tlv(SEQUENCE, encode_cert_req_msg(generate_private_key("ec-p256"), subject))
    if kind == "p10cr":
        return make_csr(f"fuzz-{rng.randrange(1000)}")[0]
    if kind == "rr":
        leaf = client.chain[0]
        serial = leaf.serial_number.to_bytes((leaf.serial_number.bit_length() + 8) // 8, "big")
        template = tlv(0x81, serial) + tlv(0xA3, leaf.issuer.public_bytes())
        reason = tlv(SEQUENCE, tlv(SEQUENCE, encode_oid("2.5.29.21")
                                   + tlv(OCTET_STRING, b"\x0a\x01\x04")))
        return tlv(SEQUENCE, tlv(SEQUENCE, tlv(SEQUENCE, template) + reason))
    if kind == "genm":
        return genm_body(rng.sample(INFO_TYPES, rng.randint(1, 3)))
    if kind == "certConf":
        return encode_cert_conf(rng.randbytes(32))
    if kind == "pollReq":
        return tlv(SEQUENCE, tlv(SEQUENCE, tlv(INTEGER, b"\x00")))
    return tlv(SEQUENCE, tlv(SEQUENCE, tlv(INTEGER, b"\x02")))  # error: rejection


def _protection(choice: int, client: Client) -> tuple[RequestProtection, bytes, x509.Name,
                                                      tuple[x509.Certificate, ...]]:
    """(protection, senderKID, sender, extraCerts): PBM, PBMAC1 or a signature."""
    if choice == 0:
        pbm = PBMParameters(os.urandom(16), SHA256, 1000, HMAC_SHA256)
        return MACProtection(client.secret.encode(), pbm), REFERENCE.encode(), \
            parse_subject("CN=fuzz-line"), ()
    if choice == 1:
        pbmac1 = PBMAC1Parameters(os.urandom(16), 1000, None, HMAC_SHA256, HMAC_SHA256)
        return MACProtection(client.secret.encode(), pbmac1), REFERENCE.encode(), \
            parse_subject("CN=fuzz-line"), ()
    return KeySignature(client.key), subject_key_id(client.chain[0]) or b"", \
        client.chain[0].subject, client.chain


def encode(kind: str, body: bytes, client: Client, rng: random.Random,
           header_mutation: Callable[[bytes], bytes] | None = None) -> bytes:
    """A protected PKIMessage (RFC 9810 §5.1) of any body type, written here because the
    fuzzer needs every tag and a hook to mutate a header field before protecting."""
    protection, kid, sender, extra = _protection(rng.randrange(3), client)
    oid, parameters = protection.algorithm()
    fields = [tlv(INTEGER, b"\x02"), tlv(0xA4, sender.public_bytes()),
              tlv(0xA4, tlv(SEQUENCE, b"")), tlv(0xA0, generalized_time(datetime.now(UTC))),
              tlv(0xA1, tlv(SEQUENCE, encode_oid(oid) + (parameters or b""))),
              tlv(0xA2, tlv(OCTET_STRING, kid)), tlv(0xA4, tlv(OCTET_STRING, os.urandom(16))),
              tlv(0xA5, tlv(OCTET_STRING, os.urandom(16)))]
    if rng.random() < 0.5:
        fields.append(tlv(0xA8, _IMPLICIT_CONFIRM))
    if header_mutation is not None:
        index = rng.randrange(len(fields))
        fields[index] = header_mutation(fields[index])
    protected = tlv(SEQUENCE, b"".join(fields)) + tlv(TAGS[kind], body)
    signature = protection.protect(tlv(SEQUENCE, protected))
    message = protected + tlv(0xA0, tlv(BIT_STRING, b"\x00" + signature))
    if extra:
        message += tlv(0xA1, tlv(SEQUENCE, b"".join(
            c.public_bytes(serialization.Encoding.DER) for c in extra)))
    return tlv(SEQUENCE, message)


# -- mutations --------------------------------------------------------------------------------

def mutate(data: bytes, rng: random.Random, pool: list[bytes]) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not out:
            out = bytearray(rng.randbytes(rng.randint(1, 16)))
        i = rng.randrange(len(out))
        op = rng.randrange(8)
        if op == 0:
            out[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            out[i] = rng.randrange(256)
        elif op == 2:
            out[i:i] = rng.randbytes(rng.randint(1, 16))
        elif op == 3:
            del out[i:i + rng.randint(1, 32)]
        elif op == 4:
            del out[i:]
        elif op == 5:  # a length octet that lies, or a long form
            out[i] = rng.choice((0x00, 0x01, 0x7F, 0x80, 0x81, 0x82, 0x83, 0x84, 0xFF))
        elif op == 6:
            j = rng.randrange(len(out))
            out[i:i] = out[j:j + rng.randint(1, 64)]
        else:
            other = rng.choice(pool)
            out = out[:i] + bytearray(other[rng.randrange(len(other)):])
    return bytes(out)


def next_input(rng: random.Random, client: Client, pool: list[bytes]) -> bytes:
    if rng.random() < 0.5:
        return mutate(rng.choice(pool), rng, pool)
    kind = rng.choice(list(TAGS))
    body = _body(kind, client, rng)
    if rng.random() < 0.8:
        return encode(kind, mutate(body, rng, pool), client, rng)
    return encode(kind, body, client, rng, lambda f: mutate(f, rng, pool))


# -- the run ----------------------------------------------------------------------------------

class _Tracebacks(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0
        self.first: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.count += 1
            if len(self.first) < 5:
                self.first.append(self.format(record))


def prepare(pki: PKI) -> Client:
    """The demo PKI, a usable reusable credential and a current certificate."""
    create_demo_hierarchy(pki)
    created = pki.registrations.create(RegistrationSpec(
        "operatorco", CA, "operational", RegistrationMethod.ONE_TIME_SECRET, domain=DOMAIN,
        reference=REFERENCE, uses=1_000_000, lifetime=timedelta(days=3650)), "fuzz")
    assert created.secret is not None
    csr, key = make_csr("fuzz-current")
    outcome = pki.issuance.issue(IssuanceRequest(CA, "operational", csr, "fuzz"))
    assert isinstance(outcome, Issued), outcome
    return Client(created.secret, key, (outcome.certificate, *outcome.chain[:-1]))


def run(pki: PKI, client: Client, count: int, seed: int,
        failures: Path | None = None, progress: int = 0) -> Report:
    rng = random.Random(seed)
    pool = [encode(kind, _body(kind, client, rng), client, rng) for kind in TAGS for _ in range(4)]
    report = Report(rss_before_kib=rss_kib())
    started = time.monotonic()
    with _watching_log() as tracebacks:
        for n in range(count):
            data = next_input(rng, client, pool)
            address = f"203.0.113.{n % 250}"
            if not _check(pki, data, address, report, n % 20 == 0) and failures is not None:
                failures.mkdir(parents=True, exist_ok=True)
                (failures / f"input-{n}.hex").write_text(data.hex())
            report.inputs += 1
            if progress and report.inputs % progress == 0:
                print(f"{report.inputs} inputs, {time.monotonic() - started:.0f} s, bad "
                      f"{report.bad + tracebacks.count}, RSS {rss_kib() // 1024} MiB",
                      file=sys.stderr, flush=True)
        report.tracebacks = tracebacks.count
        for text in tracebacks.first:
            print(text, file=sys.stderr)
    report.seconds = time.monotonic() - started
    report.rss_after_kib = rss_kib()
    return report


def _check(pki: PKI, data: bytes, address: str, report: Report, full: bool) -> bool:
    try:
        answer = answer_bytes(pki.cmp, "", data, address)
    except Exception:  # what the route would turn into HTTP 500
        report.escaped += 1
        return False
    try:
        if full:  # the whole answer through our decoder (pyasn1: slow, so now and then)
            decode_pki_message(answer)
        kind, failures = summarize(answer)
    except DecodeError:
        report.not_a_message += 1
        return False
    report.bodies[kind] += 1
    report.failures.update(failures)
    if "systemFailure" in failures:
        report.system_failures += 1
        return False
    return True


_ANSWERS = {0xA1: "ip", 0xA3: "cp", 0xA8: "kup", 0xAC: "rp", 0xB3: "pkiconf", 0xB6: "genp",
            0xB7: "error", 0xBA: "pollRep"}
_FAILURE_NAMES = {bit: name for name, bit in rfc9480.PKIFailureInfo.namedValues.items()}


def summarize(answer: bytes) -> tuple[str, tuple[str, ...]]:
    """(body type, PKIFailureInfo names of an error) read with the DER walker alone."""
    check_tlv_tree(answer)
    _, start, end = read_tlv(answer, 0)
    parts = list(children(answer, start, end))  # header, body, protection, extraCerts
    tag, body_start, _ = parts[1]
    if tag != 0xB7:
        return _ANSWERS.get(tag, f"tag-{tag:02x}"), ()
    _, content, _ = read_tlv(answer, body_start)  # [23] EXPLICIT ErrorMsgContent
    _, fields_start, fields_end = read_tlv(answer, content)
    _, info_at, _ = next(children(answer, fields_start, fields_end))  # PKIStatusInfo
    _, info_start, info_end = read_tlv(answer, info_at)
    for field_tag, at, _ in children(answer, info_start, info_end):
        if field_tag == 0x03:  # failInfo BIT STRING: unused-bits octet, then the bits
            _, bits_start, bits_end = read_tlv(answer, at)
            bits = answer[bits_start + 1:bits_end]
            return "error", tuple(_FAILURE_NAMES.get(i, str(i)) for i in range(len(bits) * 8)
                                  if bits[i // 8] & (0x80 >> i % 8))
    return "error", ()


@contextmanager
def _watching_log() -> Iterator[_Tracebacks]:
    handler = _Tracebacks()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(min(level, logging.ERROR))  # log.exception records must reach the handler
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--failures", type=Path, default=None)
    arguments = parser.parse_args()
    os.environ.setdefault("IOTPKI_CA_PASSPHRASE", "fuzz passphrase, not a secret")
    # The store on tmpfs where there is one: every refusal is audited (a commit each), and
    # the run measures the code, not the disk's fsync.
    memory = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(dir=memory) as directory:
        pki = build_pki(Settings(data_dir=Path(directory) / "data"))
        try:
            client = prepare(pki)
            report = run(pki, client, arguments.count, arguments.seed, arguments.failures,
                         progress=5000)
        finally:
            pki.close()
    print(f"inputs {report.inputs} in {report.seconds:.0f} s "
          f"({report.inputs / max(report.seconds, 1e-9):.0f}/s)")
    print(f"answers that are no PKIMessage {report.not_a_message}, escaped exceptions (HTTP 500) "
          f"{report.escaped}, systemFailure {report.system_failures}, logged tracebacks "
          f"{report.tracebacks}")
    print(f"RSS before {report.rss_before_kib / 1024:.1f} MiB, after "
          f"{report.rss_after_kib / 1024:.1f} MiB")
    print("bodies:", dict(report.bodies.most_common()))
    print("failInfo:", dict(report.failures.most_common()))
    sys.exit(1 if report.bad else 0)


if __name__ == "__main__":
    main()
