"""Certification requests: PKCS#10 (RFC 2986), and CRMF (RFC 4211) as CMP carries them;
decode and check the proof of possession."""

from __future__ import annotations

from typing import Any, Protocol

from cryptography import x509

from iotpki.wire.decoding import decoding, loaded_csr
from iotpki.wire.der import SEQUENCE, children, read_tlv
from iotpki.wire.errors import DecodeError, PKIError


class CertificationRequest(Protocol):
    """What the issuance path reads from a request: a PKCS#10 CSR or a CRMF CertReqMsg."""

    @property
    def subject(self) -> x509.Name: ...

    @property
    def extensions(self) -> x509.Extensions: ...

    @property
    def is_signature_valid(self) -> bool: ...

    def public_key(self) -> Any: ...


class BadSignatureError(PKIError):
    """A self-signature (proof of possession) that does not verify."""


def decode_csr(data: bytes) -> x509.CertificateSigningRequest:
    """Decode a CSR given as PEM or DER; raise `DecodeError` with the reason."""
    with decoding("certification request"):
        if data.lstrip().startswith(b"-----BEGIN"):
            return loaded_csr(x509.load_pem_x509_csr(data))
        return loaded_csr(x509.load_der_x509_csr(data))


def decode_certification_request(data: bytes) -> CertificationRequest:
    """A PKCS#10 CSR (PEM or DER), else the DER of a CRMF CertReqMsg (RFC 4211 §3)."""
    try:
        return decode_csr(data)
    except DecodeError:
        if data.lstrip().startswith(b"-----BEGIN"):
            raise
    return _crmf_request(data)


def request_identity(csr: x509.CertificateSigningRequest) -> tuple[bytes, bytes]:
    """The DER of the subject and of the subjectPKInfo of a PKCS#10 request, as signed
    (RFC 2986 §4.1 CertificationRequestInfo): what stays the same when a client signs the
    same request again, whatever its attributes (a new challengePassword) or signature."""
    info = csr.tbs_certrequest_bytes
    tag, start, end = read_tlv(info, 0)
    elements = list(children(info, start, end))
    if tag != SEQUENCE or len(elements) < 3 or elements[1][0] != SEQUENCE \
            or elements[2][0] != SEQUENCE:
        raise DecodeError("CertificationRequestInfo without subject and subjectPKInfo")
    (_, subject_start, subject_end), (_, key_start, key_end) = elements[1], elements[2]
    return info[subject_start:subject_end], info[key_start:key_end]


def _crmf_request(data: bytes) -> CertificationRequest:
    from iotpki.wire.cmp.crmf import decode_crmf_request  # CMP's requests are rarer than CSRs
    return decode_crmf_request(data)


def verify_csr(csr: CertificationRequest) -> None:
    """RFC 2986 §3: the requester proves possession by signing the request."""
    try:
        valid = csr.is_signature_valid
    except Exception as exc:  # unsupported algorithm inside the CSR
        raise BadSignatureError(f"certification request signature cannot be checked: {exc}") from exc
    if not valid:
        raise BadSignatureError("certification request signature does not verify")


def requested_sans(csr: CertificationRequest) -> tuple[x509.GeneralName, ...]:
    """The subjectAltName entries a CSR asks for (RFC 2985 extensionRequest), if any."""
    try:
        ext = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return ()
    except ValueError as exc:
        raise DecodeError(f"malformed extension request in CSR: {exc}") from exc
    return tuple(ext.value)
