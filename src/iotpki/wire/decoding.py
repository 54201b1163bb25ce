"""Total decoders: every exception a parser of hostile bytes can raise becomes `DecodeError`.

`cryptography` does not raise only `ValueError` for bad input: a CSR or certificate whose
version is unknown raises `x509.InvalidVersion` (an `Exception`), a key on an unknown curve
`UnsupportedAlgorithm`; pyasn1 raises `PyAsn1Error`. Names and extensions are parsed
lazily, on first access, so a decoder that returns an object must touch them while it can
still turn the failure into a `DecodeError`. Each protocol adapter maps `DecodeError` to its
own answer (HTTP 400, OCSP malformedRequest, CMP badDataFormat, problem JSON).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from pyasn1.error import PyAsn1Error

from iotpki.wire.errors import DecodeError

__all__ = ["MALFORMED", "decoding", "loaded_csr", "short_reason"]

MALFORMED: tuple[type[Exception], ...] = (
    ValueError, TypeError, IndexError, KeyError, OverflowError, RecursionError,
    x509.InvalidVersion, UnsupportedAlgorithm, PyAsn1Error)
REASON_LIMIT = 200  # characters of a parser's message repeated to the client


# What the parsers' own messages mean, in our words: their text names library internals
# ("ParseError { kind: ShortData }") and a URL of the library's FAQ.
_WORDED = (
    ("Unable to load PEM file", "not valid PEM (bad header, base64 or framing)"),
    ("error parsing asn1 value", "not valid DER"),
    ("ShortData", "not valid DER (truncated)"),
    ("ExtraData", "not valid DER (trailing bytes)"),
    ("InvalidLength", "not valid DER (bad length)"),
)


def short_reason(exc: BaseException) -> str:
    """What was wrong, bounded (parser messages may quote the hostile input): our words for
    the failures we know, else `Class: message`."""
    message = str(exc)
    worded = [ours for theirs, ours in _WORDED if theirs in message]
    if worded:
        return worded[-1]
    text = f"{exc.__class__.__name__}: {message}"
    return text if len(text) <= REASON_LIMIT else text[:REASON_LIMIT] + "…"


@contextmanager
def decoding(what: str) -> Iterator[None]:
    """Raise `DecodeError("malformed <what>: ...")` for any parser failure in the block."""
    try:
        yield
    except DecodeError:
        raise
    except MALFORMED as exc:
        raise DecodeError(f"malformed {what}: {short_reason(exc)}") from exc


def loaded_csr(csr: x509.CertificateSigningRequest) -> x509.CertificateSigningRequest:
    """`csr` after parsing what `cryptography` parses lazily (subject, attributes,
    extensions); call inside `decoding`. The public key is left to the key policy, which
    refuses unknown key types with its own reason."""
    csr.subject.rfc4514_string()
    list(csr.attributes)
    list(csr.extensions)
    return csr
