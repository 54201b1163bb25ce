"""Who sent a Full PKI Request (RFC 5272 §3.2, §6.2).

- The SignedData's one SignerInfo names its signer (RFC 5652 §5.3): issuerAndSerialNumber
  of a certificate carried in the SignedData (a current certificate: renewal; or a
  previous-stage certificate), or the subjectKeyIdentifier of the key being certified
  (RFC 5272 §3.2.1.3.1: a request signed with its own key; RFC 5280 §4.2.1.2 method 1, or
  the PKCS #10 request's subjectKeyIdentifier extension). The signature must verify
  (badMessageCheck otherwise, badAlg for an algorithm we do not verify).
- A shared secret is proven by identityProofV2 (§6.2.1) or identityProof (§6.2.2) with the
  identification control (§6.2.3) naming the registration (its id, or the reference of a
  reusable credential). The registration's sealed secret is unsealed and the witness
  recomputed over reqSequence. A witness that does not verify is handed to the
  one-time-secret enrollment method as a wrong secret: it is refused and counted exactly as
  a wrong EST password or CMP MAC (per client and per registration, then locked).
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from iotpki.core.keyring import SecretSealer
from iotpki.core.ports import UnitOfWorkFactory
from iotpki.core.ra.enrollment import registration_for_secret
from iotpki.protocols.cmc.refusals import CMCFailure
from iotpki.wire.cmc.identity_proof import ProofAlgorithmError, witness_matches
from iotpki.wire.cmc.pki_data import (
    IDENTIFICATION,
    IDENTITY_PROOF,
    IDENTITY_PROOF_V2,
    PKIData,
    TaggedRequest,
    decode_identification,
    decode_identity_proof,
    decode_identity_proof_v2,
)
from iotpki.wire.cmc.request import FullPKIRequest, subject_key_id
from iotpki.wire.cmc.signed_data import (
    CMSAlgorithmError,
    CMSSignatureError,
    SignerInfo,
    verify_signer,
)
from iotpki.wire.csr import decode_certification_request
from iotpki.wire.decoding import MALFORMED, decoding
from iotpki.wire.errors import DecodeError, PKIError

# What reading a hostile request's key or extensions may raise.
UNREADABLE: tuple[type[Exception], ...] = (DecodeError, *MALFORMED)
MAX_NAME = 128  # characters of an identification (a registration id is 36, a reference ≤ 128)


@dataclass(frozen=True)
class Signer:
    """The verified signer: a certificate (with the others the SignedData carried), or the
    key of one of the requests (`certificate` None)."""

    certificate: x509.Certificate | None
    chain: tuple[x509.Certificate, ...]  # leaf first; empty for a key signer
    key: Any


@dataclass(frozen=True)
class SharedSecret:
    """What the identity proof gives the one-time-secret method: the registration named and
    the secret (the real one if the witness verified, else one that cannot match)."""

    registration: str
    secret: str


def signer_info(request: FullPKIRequest) -> SignerInfo:
    signers = request.signed.signers
    if len(signers) != 1:
        raise CMCFailure("badMessageCheck", f"a Full PKI Request has one signer here, not "
                                            f"{len(signers)}")
    return signers[0]


def verified_signer(request: FullPKIRequest,
                    keys: Sequence[tuple[Any, frozenset[bytes]]] = ()) -> Signer:
    """The signer, its signature checked; `keys` are the public keys a
    subjectKeyIdentifier sid may name (those of the requests, or of a pending request)."""
    info = signer_info(request)
    key: Any
    if info.key_id is None:
        certificate = request.signed.certificate_of(info)
        if certificate is None:
            raise CMCFailure("badMessageCheck", "the signer's certificate is not in the "
                                                "SignedData")
        with decoding("signer certificate"):  # a key on an unknown curve: malformed input
            key = certificate.public_key()
        chain = (certificate, *(c for c in request.signed.certificates if c != certificate))
    else:
        certificate, chain = None, ()
        key = next((k for k, ids in keys if info.key_id in ids), None)
        if key is None:
            raise CMCFailure("badMessageCheck", "the signer's subjectKeyIdentifier names no "
                                                "key of the request")
    try:
        verify_signer(request.signed, info, key)
    except CMSAlgorithmError as exc:
        raise CMCFailure("badAlg", str(exc)) from exc
    except CMSSignatureError as exc:
        raise CMCFailure("badMessageCheck", str(exc)) from exc
    return Signer(certificate, chain, key)


def known_key(key: Any, declared: bytes | None = None) -> tuple[Any, frozenset[bytes]]:
    """A key a subjectKeyIdentifier sid may name: by RFC 5280 §4.2.1.2 method 1, or by the
    identifier its request declares."""
    ids = {declared} if declared is not None else set()
    with contextlib.suppress(ValueError, TypeError):
        ids.add(subject_key_id(key))
    return key, frozenset(ids)


def request_keys(requests: Sequence[TaggedRequest]) -> list[tuple[Any, frozenset[bytes]]]:
    """The public keys of the requests that decode, with their identifiers."""
    keys = []
    for tagged in requests:
        try:
            request = decode_certification_request(tagged.der)
            keys.append(known_key(request.public_key(), _extension_key_id(request)))
        except UNREADABLE:
            continue  # not a key we can verify with: the signature check refuses
    return keys


def _extension_key_id(request: Any) -> bytes | None:
    try:
        return bytes(request.extensions.get_extension_for_class(
            x509.SubjectKeyIdentifier).value.digest)
    except x509.ExtensionNotFound:
        return None
    except UNREADABLE:
        return None


def shared_secret(data: PKIData, uow: UnitOfWorkFactory,
                  sealer: SecretSealer | None) -> SharedSecret | None:
    """None without an identity proof control; else the registration it names and the
    secret to hand to the one-time-secret method."""
    proof_control = data.control(IDENTITY_PROOF_V2) or data.control(IDENTITY_PROOF)
    if proof_control is None:
        return None
    named = data.control(IDENTIFICATION)
    if named is None:
        raise CMCFailure("badIdentity", "RFC 5272 §6.2.3: an identity proof needs the "
                                        "identification control naming the registration")
    name = decode_identification(named.value)
    if not name or len(name) > MAX_NAME:
        raise CMCFailure("badIdentity", f"identification must be 1 to {MAX_NAME} characters")
    proof = (decode_identity_proof_v2(proof_control.value)
             if proof_control.type == IDENTITY_PROOF_V2
             else decode_identity_proof(proof_control.value))
    secret = _unsealed(uow, sealer, name)
    try:
        good = secret is not None and witness_matches(secret, data.req_sequence,
                                                      proof.hash_algorithm,
                                                      proof.mac_algorithm, proof.witness)
    except ProofAlgorithmError as exc:
        raise CMCFailure("badAlg", str(exc)) from exc
    if good and secret is not None:
        return SharedSecret(name, secret.decode("utf-8", "replace"))
    return SharedSecret(name, "\x00" + secrets.token_hex(16))  # refused as a wrong secret


def _unsealed(uow: UnitOfWorkFactory, sealer: SecretSealer | None, name: str) -> bytes | None:
    with uow() as work:
        registration = registration_for_secret(work, name)
    if registration is None or registration.secret_sealed is None or sealer is None:
        return None
    try:
        return sealer.unseal(registration.secret_sealed)
    except PKIError as exc:
        raise CMCFailure("internalCAError", "the registration's secret cannot be read") from exc
