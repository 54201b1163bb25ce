"""Bounded fuzz run of the CMC decoder and server, in process (issue 14: hostile input).

Every input goes through `CMCServer.answer`, what both HTTP routes (`/cmc`, EST's
`/fullcmc`) call with the request body. Two kinds of input, half each:

- raw: a valid Full PKI Request of every kind (identity-proof enrollment with PKCS #10,
  renewal and revokeRequest signed by a current certificate, queryPending), in DER and in
  BER (indefinite lengths, as BouncyCastle sends), with 1 to 4 byte-level mutations (bit
  flips, random bytes, inserted and deleted runs, truncation);
- structured: a PKIData with such mutations, then signed correctly by a current
  certificate, so that mutated controls and requests reach the server behind a good
  signature.

It counts what a client would see and what the log shows: exceptions escaping `answer` (an
HTTP 500 on the route), answers that do not decode as a signed PKIResponse, failed
statuses with internalCAError (a fault of ours), and log records carrying a traceback; all
must be 0.

    python bench/fuzz_cmc.py [--count 20000] [--seed 1]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.*

import argparse
import collections
import logging
import os
import random
import tempfile
import time
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from tests.cmc.client import indefinite_lengths

from iotpki.app import build_cmc_server, build_pki
from iotpki.cli.demo_setup import create_demo_hierarchy
from iotpki.core.ra.registration import RegistrationMethod
from iotpki.core.ra.registration_service import RegistrationSpec
from iotpki.settings import Settings
from iotpki.wire.cmc import pki_data as P
from iotpki.wire.cmc.identity_proof import identity_witness
from iotpki.wire.cmc.request import sign_full_pki_request
from iotpki.wire.cmc.response import decode_pki_response
from iotpki.wire.cmc.signed_data import decode_signed_data
from iotpki.wire.names import parse_subject

CA, DOMAIN = "operatorco-operations", "building-42.operator.example"
SHA256, HMAC_SHA256 = "2.16.840.1.101.3.4.2.1", "1.2.840.113549.2.9"


class Tracebacks(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.count += 1


def csr(key: Any, subject: str) -> bytes:
    return (x509.CertificateSigningRequestBuilder().subject_name(parse_subject(subject))
            .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))


def mutate(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not out:
            break
        at = rng.randrange(len(out))
        kind = rng.randrange(5)
        if kind == 0:
            out[at] ^= 1 << rng.randrange(8)
        elif kind == 1:
            out[at] = rng.randrange(256)
        elif kind == 2:
            out[at:at] = os.urandom(rng.randint(1, 8))
        elif kind == 3:
            del out[at:at + rng.randint(1, 8)]
        else:
            del out[at:]
    return bytes(out)


def seeds(pki: Any, server: Any) -> tuple[list[bytes], list[bytes], Any, x509.Certificate]:
    """Valid requests (raw seeds), valid PKIData (structured seeds) and a current
    certificate with its key to sign the structured ones."""
    key = ec.generate_private_key(ec.SECP256R1())
    created = pki.registrations.create(RegistrationSpec(
        "operatorco", CA, "operational", RegistrationMethod.ONE_TIME_SECRET,
        subject=parse_subject("CN=fuzz-holder"), domain=DOMAIN), "fuzz")
    requests = [P.tcr(1, csr(key, "CN=fuzz-holder"))]
    witness = identity_witness(created.secret.encode(), P.tlv(0x30, b"".join(requests)),
                               SHA256, HMAC_SHA256)
    enroll = P.encode_pki_data([
        P.control(2, P.TRANSACTION_ID, P.integer(5)),
        P.control(3, P.SENDER_NONCE, P.octet_string(b"fuzz")),
        P.control(4, P.IDENTIFICATION, P.identification(created.registration.id)),
        P.control(5, P.IDENTITY_PROOF_V2, P.identity_proof_v2(SHA256, HMAC_SHA256, witness))],
        requests)
    first = sign_full_pki_request(enroll, key)
    answer = server.answer("cmc", "", first, "fuzz-seed")
    signed = decode_signed_data(answer.der)
    holder = next(c for c in signed.certificates if c.public_key() == key.public_key())
    renew_key = ec.generate_private_key(ec.SECP256R1())
    renew = P.encode_pki_data([], [P.tcr(1, csr(renew_key, "CN=fuzz-holder"))])
    revoke = P.encode_pki_data([P.control(1, P.REVOKE_REQUEST, P.revoke_request(
        holder.issuer.public_bytes(), holder.serial_number, 1))], [])
    query = P.encode_pki_data([P.control(1, P.QUERY_PENDING, P.octet_string(b"x:1"))], [])
    raw = [first, sign_full_pki_request(renew, key, [holder]),
           sign_full_pki_request(revoke, key, [holder]), sign_full_pki_request(query, key)]
    raw += [indefinite_lengths(r) for r in raw]
    return raw, [enroll, renew, revoke, query], key, holder


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=1)
    options = parser.parse_args()
    rng = random.Random(options.seed)
    tracebacks = Tracebacks()
    logging.getLogger().addHandler(tracebacks)
    logging.getLogger().setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as directory:
        os.environ.setdefault("IOTPKI_CA_PASSPHRASE", "fuzz passphrase, not a secret")
        pki = build_pki(Settings(data_dir=Path(directory) / "data"))
        create_demo_hierarchy(pki)
        server = build_cmc_server(pki)
        raw, structured, key, holder = seeds(pki, server)
        escaped = undecodable = internal = 0
        fail_infos: collections.Counter[str] = collections.Counter()
        started = time.perf_counter()
        for n in range(options.count):
            if n % 2:
                body = mutate(rng.choice(raw), rng)
            else:
                body = sign_full_pki_request(mutate(rng.choice(structured), rng), key, [holder])
            try:
                answer = server.answer("cmc", "", body, "fuzz")
            except Exception:
                escaped += 1
                continue
            try:
                response = decode_pki_response(decode_signed_data(answer.der).content)
            except Exception:
                undecodable += 1
                continue
            for status in response.statuses:
                fail_infos[status.fail_info or status.status.name.lower()] += 1
                internal += status.fail_info == "internalCAError"
        elapsed = time.perf_counter() - started
        pki.close()
    print(f"{options.count} inputs in {elapsed:.1f} s ({options.count / elapsed:.0f}/s)")
    print(f"escaped exceptions {escaped}, undecodable answers {undecodable}, "
          f"internalCAError {internal}, logged tracebacks {tracebacks.count}")
    print("statuses:", dict(fail_infos.most_common()))


if __name__ == "__main__":
    main()
