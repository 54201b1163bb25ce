"""A small CMC client on iotpki's own codec (`iotpki.wire.cmc`), for the in-process
behaviour tests; interop is BouncyCastle's (tests/cmc/test_bouncycastle.py)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from iotpki.app import PKI
from iotpki.core.ra.registration import RegistrationMethod
from iotpki.core.ra.registration_service import RegistrationSpec
from iotpki.wire.cmc import pki_data as P
from iotpki.wire.cmc.identity_proof import identity_witness
from iotpki.wire.cmc.request import sign_full_pki_request
from iotpki.wire.cmc.response import PKIResponse, decode_pki_response
from iotpki.wire.cmc.signed_data import SignedContent, decode_signed_data, verify_signer
from iotpki.wire.der import SEQUENCE, read_tlv, tlv
from iotpki.wire.names import parse_subject

CA = "operatorco-operations"
DOMAIN = "building-42.operator.example"
SHA256, HMAC_SHA256 = "2.16.840.1.101.3.4.2.1", "1.2.840.113549.2.9"


def indefinite_lengths(der: bytes) -> bytes:
    """The BER form BouncyCastle sends: the same tree with every constructed element in
    indefinite-length form (the server rewrites it to definite lengths)."""
    tag, start, end = read_tlv(der, 0)
    if not tag & 0x20:
        return der
    inner, offset = b"", start
    while offset < end:
        _, _, child_end = read_tlv(der, offset)
        inner += indefinite_lengths(der[offset:child_end])
        offset = child_end
    return bytes((tag, 0x80)) + inner + b"\x00\x00"


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def csr(key: Any, subject: str = "CN=cmc-test") -> bytes:
    return (x509.CertificateSigningRequestBuilder().subject_name(parse_subject(subject))
            .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))


def registration(pki: PKI, subject: str) -> tuple[str, str]:
    created = pki.registrations.create(RegistrationSpec(
        "operatorco", CA, "operational", RegistrationMethod.ONE_TIME_SECRET,
        subject=parse_subject(subject), domain=DOMAIN), "operatorco:crm")
    assert created.secret is not None
    return created.registration.id, created.secret


def with_proof(requests: list[bytes], name: str, secret: str, controls: list[bytes] = (),
               version: int = 2, first_id: int = 10) -> bytes:
    """PKIData with identification and identityProofV2 (or version 1) over `requests`."""
    witness_hash, witness_mac = (SHA256, HMAC_SHA256) if version == 2 else (
        P.SHA1, P.HMAC_SHA1)
    witness = identity_witness(secret.encode(), tlv(SEQUENCE, b"".join(requests)),
                               witness_hash, witness_mac)
    proof = (P.control(first_id + 1, P.IDENTITY_PROOF_V2, P.identity_proof_v2(
        SHA256, HMAC_SHA256, witness)) if version == 2 else
        P.control(first_id + 1, P.IDENTITY_PROOF, P.octet_string(witness)))
    return P.encode_pki_data([*controls, P.control(first_id, P.IDENTIFICATION,
                                                   P.identification(name)), proof], requests)


def enrollment(pki: PKI, subject: str = "CN=cmc-test", key: Any = None,
               controls: list[bytes] = ()) -> tuple[bytes, Any]:
    """A self-signed Full PKI Request with a fresh registration's identity proof."""
    key = key or new_key()
    name, secret = registration(pki, subject)
    data = with_proof([P.tcr(1, csr(key, subject))], name, secret, controls)
    return sign_full_pki_request(data, key), key


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Any
    der: bytes
    signed: SignedContent
    response: PKIResponse

    @property
    def fail_info(self) -> str | None:
        return self.response.statuses[0].fail_info

    def certificate_for(self, key: Any) -> x509.Certificate:
        spki = serialization.PublicFormat.SubjectPublicKeyInfo
        mine = key.public_key().public_bytes(serialization.Encoding.DER, spki)
        return next(c for c in self.signed.certificates
                    if c.public_key().public_bytes(serialization.Encoding.DER, spki) == mine)


def read_answer(status: int, headers: Any, body: bytes, base64_body: bool) -> Answer:
    der = base64.b64decode(body) if base64_body else body
    signed = decode_signed_data(der)
    signer = signed.certificate_of(signed.signers[0])
    assert signer is not None
    verify_signer(signed, signed.signers[0], signer.public_key())
    return Answer(status, headers, der, signed, decode_pki_response(signed.content))
