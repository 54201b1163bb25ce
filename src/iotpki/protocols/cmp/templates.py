"""What an ir, cr, kur or p10cr asks for, checked before anything is tried (RFC 9483
§4.1.1-§4.1.4), and how an issued certificate differs from it.

- A CSR must be version v1 (0) (RFC 2986 §4.1): otherwise badDataFormat.
- raVerified POP (RFC 4211 §4.1) is for an RA vouching for a key; from an end entity it
  is notAuthorized (RFC 9483 §4.1.1: POP is the end entity's own signature).
- A template whose extensions do not parse (a pathLen without cA, ...) or that asks for
  a CA certificate (basicConstraints cA) is badCertTemplate: the profiles issue end-entity
  certificates only, and a CA certificate cannot be "granted with modifications".
- A key the profile does not accept (type or size) is badCertTemplate, decided before the
  proof of possession is verified (a huge RSA key costs its verification).
- `modifications`: the differences between what was asked and what was issued; any makes
  the answer grantedWithMods (RFC 9810 §5.2.3), never a silent "accepted".
"""

from __future__ import annotations

from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from iotpki.core.ca.policy import check_key
from iotpki.core.ca.profile import Profile
from iotpki.core.errors import PolicyError
from iotpki.core.errors import RefusalReason as R
from iotpki.protocols.cmp.refusals import RequestRefusal
from iotpki.wire.cmp.crmf import CRMFRequest
from iotpki.wire.cmp.messages import CertRequests, P10Request, PKIMessage
from iotpki.wire.der import INTEGER, children, read_tlv
from iotpki.wire.errors import DecodeError


def requested(message: PKIMessage) -> Any:
    """The request as the issuance path reads it (a CSR or a `CRMFRequest`); None when the
    server is asked to generate the key (RFC 9483 §4.1.6)."""
    body = message.body
    if isinstance(body, P10Request):
        return _csr(body.csr)
    assert isinstance(body, CertRequests)
    request: CRMFRequest = body.requests[0]
    if request.pop_kind == "raVerified":
        raise RequestRefusal("notAuthorized", "RFC 9483 §4.1.1: raVerified proof of possession "
                                          "is for an RA, not an end entity")
    if request.template_problem is not None:
        raise RequestRefusal("badCertTemplate", request.template_problem)
    return None if request.central_keygen else request


def check_request(asked: Any, profile: Profile | None) -> None:
    """badCertTemplate for a CA certificate or a key the profile refuses (before POP)."""
    if asked is None:
        return
    try:
        constraints = asked.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    except (ValueError, DecodeError) as exc:
        raise RequestRefusal("badCertTemplate", f"the requested extensions are invalid: {exc}") \
            from exc
    if constraints is not None and constraints.ca:
        raise RequestRefusal("badCertTemplate", "a CA certificate (basicConstraints cA) is not "
                                            "issued to an end entity")
    try:
        public_key = asked.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:  # an EC point off its curve (fuzzer)
        raise RequestRefusal("badDataFormat", f"the requested public key cannot be read: "
                                              f"{exc}") from exc
    if profile is None:
        return
    try:
        check_key(profile, public_key)
    except PolicyError as exc:
        known = isinstance(public_key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey)
        if exc.reason is R.UNSUPPORTED_KEY and not known:
            raise RequestRefusal("badAlg", exc.detail) from exc
        raise RequestRefusal("badCertTemplate", exc.detail) from exc


def modifications(asked: Any, certificate: x509.Certificate) -> list[str]:
    """What the certificate grants other than asked: the subject, or a requested extension
    left out or with another value."""
    if asked is None:
        return []
    changes = []
    if len(asked.subject) and asked.subject != certificate.subject:
        changes.append(f"subject {certificate.subject.rfc4514_string()}")
    granted = {e.oid: e.value for e in certificate.extensions}
    for extension in asked.extensions:
        if extension.oid not in granted:
            changes.append(f"extension {extension.oid.dotted_string} not granted")
        elif granted[extension.oid] != extension.value:
            changes.append(f"extension {extension.oid.dotted_string} changed")
    return changes


def _csr(der: bytes) -> x509.CertificateSigningRequest:
    """RFC 2986 §4.1: version is v1 (0); anything else, or no CSR, is badDataFormat."""
    try:
        _, start, end = read_tlv(der, 0)
        _, info, _ = next(iter(children(der, start, end)))  # CertificationRequestInfo
        _, start, end = read_tlv(der, info)
        _, version, _ = next(iter(children(der, start, end)))
        tag, start, end = read_tlv(der, version)
        if tag != INTEGER or der[start:end] != b"\x00":
            raise RequestRefusal("badDataFormat", "RFC 2986 §4.1: the CSR version must be v1 (0)")
        csr = x509.load_der_x509_csr(der)
        _ = csr.subject.rfc4514_string(), list(csr.extensions)
    except RequestRefusal:
        raise
    except (DecodeError, ValueError, StopIteration, IndexError) as exc:
        raise RequestRefusal("badDataFormat", f"malformed PKCS #10 request: {exc}") from exc
    return csr

