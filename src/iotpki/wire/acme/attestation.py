"""Attestation objects of the ACME device-attest-01 challenge (draft-ietf-acme-device-attest):
the client's response is `{"attObj": base64url(CBOR)}`, a WebAuthn-style attestation object
`{"fmt": text, "attStmt": map, "authData": bytes}`.

Formats are plug-ins (`AttestationFormat`): each checks its statement against the key
authorization and returns the attested certificate chain, leaf first. iotpki ships
`previous-stage`: the statement is `{"alg": COSE alg, "sig": signature, "x5c": [DER...]}`,
where `sig` is the signature of the key authorization (UTF-8) by the key of `x5c[0]`, the
device's previous-stage certificate (chip or device certificate). Whether that certificate
is trusted, registered and not revoked is the server's decision, not the codec's. TPM
(`tpm`) or Apple (`apple`) formats plug in beside it.

`current-certificate` has the same statement, signed by the key of the device's current
operational certificate (`x5c[0]`, issued here): a device that enrolled once renews its
`permanent-identifier` with it (the server decides with the current-certificate method).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import NameOID

from iotpki.wire import cbor
from iotpki.wire.acme.jws import JWSError, b64url_decode
from iotpki.wire.errors import DecodeError

MAX_CHAIN = 8
# COSE algorithms (RFC 9053) a previous-stage statement may use.
COSE_ES256, COSE_ES384, COSE_EDDSA, COSE_RS256 = -7, -35, -8, -257


def permanent_identifier(certificate: x509.Certificate) -> str | None:
    """The permanent-identifier an attested certificate names: its subject serialNumber,
    else its CN (server and device agent agree on it)."""
    for oid in (NameOID.SERIAL_NUMBER, NameOID.COMMON_NAME):
        values = certificate.subject.get_attributes_for_oid(oid)
        if values:
            return str(values[0].value)
    return None


class AttestationError(JWSError):
    """The statement does not hold; the ACME problem is `badAttestationStatement`."""

    def __init__(self, detail: str) -> None:
        super().__init__("badAttestationStatement", detail)


@dataclass(frozen=True)
class AttestationObject:
    fmt: str
    statement: Mapping[str, Any]
    auth_data: bytes


class AttestationFormat(Protocol):
    def verify(self, statement: Mapping[str, Any], auth_data: bytes,
               key_authorization: str) -> tuple[x509.Certificate, ...]:
        """The attested chain, leaf first; `AttestationError` if the statement fails."""
        ...


def decode_attestation_response(payload: Mapping[str, Any]) -> AttestationObject:
    """The challenge response `{"attObj": ...}`; `AttestationError` for anything else."""
    try:
        raw = b64url_decode(payload.get("attObj"), "attObj")
        document = cbor.decode(raw)
    except (JWSError, DecodeError) as exc:
        raise AttestationError(f"attObj is not base64url CBOR: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("fmt"), str) or \
            not isinstance(document.get("attStmt"), dict):
        raise AttestationError("attObj needs fmt (text) and attStmt (map)")
    auth_data = document.get("authData", b"")
    if not isinstance(auth_data, bytes):
        raise AttestationError("authData must be a byte string")
    return AttestationObject(document["fmt"], document["attStmt"], auth_data)


def encode_attestation_object(fmt: str, statement: Mapping[str, Any],
                              auth_data: bytes = b"") -> bytes:
    return cbor.encode({"fmt": fmt, "attStmt": dict(statement), "authData": auth_data})


class PreviousStageFormat:
    """`previous-stage`: the previous-stage key signs the key authorization."""

    name = "previous-stage"

    def verify(self, statement: Mapping[str, Any], auth_data: bytes,
               key_authorization: str) -> tuple[x509.Certificate, ...]:
        chain = _chain(statement.get("x5c"))
        signature, alg = statement.get("sig"), statement.get("alg")
        if not isinstance(signature, bytes) or not isinstance(alg, int):
            raise AttestationError("previous-stage statement needs alg and sig")
        _verify(chain[0].public_key(), alg, signature, key_authorization.encode("utf-8"))
        return chain


class CurrentCertificateFormat(PreviousStageFormat):
    """`current-certificate`: the key of the current (operational) certificate signs the key
    authorization; renewal of a device that enrolled before."""

    name = "current-certificate"


def _chain(value: Any) -> tuple[x509.Certificate, ...]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_CHAIN or \
            not all(isinstance(c, bytes) for c in value):
        raise AttestationError(f"x5c must hold 1 to {MAX_CHAIN} DER certificates")
    try:
        return tuple(x509.load_der_x509_certificate(c) for c in value)
    except ValueError as exc:
        raise AttestationError("x5c holds a certificate that does not decode") from exc


def _verify(key: Any, alg: int, signature: bytes, data: bytes) -> None:
    try:
        if alg in (COSE_ES256, COSE_ES384) and isinstance(key, ec.EllipticCurvePublicKey):
            digest = hashes.SHA256() if alg == COSE_ES256 else hashes.SHA384()
            key.verify(signature, data, ec.ECDSA(digest))
        elif alg == COSE_EDDSA and isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
        elif alg == COSE_RS256 and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        else:
            raise AttestationError(f"COSE algorithm {alg} does not fit the attested key")
    except InvalidSignature as exc:
        raise AttestationError("the statement's signature of the key authorization does not "
                               "verify with the previous-stage key") from exc


def sign_previous_stage(key: Any, chain: list[bytes], key_authorization: str,
                        fmt: str = PreviousStageFormat.name) -> bytes:
    """A client's attObj for `previous-stage` (devices, tests), or for another format with
    the same statement (`current-certificate`)."""
    data = key_authorization.encode("utf-8")
    if isinstance(key, ec.EllipticCurvePrivateKey):
        alg = COSE_ES256 if key.curve.key_size == 256 else COSE_ES384
        digest = hashes.SHA256() if alg == COSE_ES256 else hashes.SHA384()
        signature = key.sign(data, ec.ECDSA(digest))
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        alg, signature = COSE_EDDSA, key.sign(data)
    else:
        alg, signature = COSE_RS256, key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return encode_attestation_object(fmt, {"alg": alg, "sig": signature, "x5c": chain})
