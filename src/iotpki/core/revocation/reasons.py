"""Revocation reasons (RFC 5280 §5.3.1) as operators type them."""

from __future__ import annotations

from cryptography import x509

REASONS = tuple(r.value for r in x509.ReasonFlags if r is not x509.ReasonFlags.remove_from_crl)


def parse_reason(text: str) -> x509.ReasonFlags:
    aliases = {r.value.lower(): r for r in x509.ReasonFlags}
    aliases.update({r.name.replace("_", "").lower(): r for r in x509.ReasonFlags})
    reason = aliases.get(text.replace("_", "").replace("-", "").lower())
    if reason is None or reason is x509.ReasonFlags.remove_from_crl:
        raise ValueError(f"unknown revocation reason {text!r}; use one of {', '.join(REASONS)}")
    return reason
