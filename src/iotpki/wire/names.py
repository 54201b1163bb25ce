"""Text forms of subject names and subjectAltNames, for the CLI, the API and the store.

Subjects use RFC 4514 strings (`CN=sensor-1,O=DeviceCo`). SANs use `type:value`
(`dns:a.example`, `ip:192.0.2.1`, `uri:urn:iotpki:domain:x`, `email:a@b`).
"""

from __future__ import annotations

import ipaddress

from cryptography import x509

from iotpki.wire.errors import DecodeError

SAN_TYPES = ("dns", "ip", "uri", "email")


def parse_subject(text: str) -> x509.Name:
    """An RFC 4514 string as a Name; raise `DecodeError` on a malformed one."""
    try:
        return x509.Name.from_rfc4514_string(text)
    except ValueError as exc:
        raise DecodeError(f"malformed subject {text!r}: expected RFC 4514 attribute=value "
                          f"pairs like CN=sensor-1,O=Example ({exc})"
                          if str(exc) else f"malformed subject {text!r}: expected RFC 4514 "
                          "attribute=value pairs like CN=sensor-1,O=Example") from exc


def parse_san(text: str) -> x509.GeneralName:
    """One `type:value` SAN as a GeneralName."""
    kind, sep, value = text.partition(":")
    kind = kind.strip().lower()
    if not sep or not value:
        raise DecodeError(f"malformed SAN {text!r}: expected type:value, type one of {SAN_TYPES}")
    try:
        if kind == "dns":
            return x509.DNSName(value)
        if kind == "ip":
            return x509.IPAddress(ipaddress.ip_address(value))
        if kind == "uri":
            return x509.UniformResourceIdentifier(value)
        if kind == "email":
            return x509.RFC822Name(value)
    except ValueError as exc:
        raise DecodeError(f"malformed SAN {text!r}: {exc}") from exc
    raise DecodeError(f"unsupported SAN type {kind!r}; use one of {SAN_TYPES}")


def format_san(name: x509.GeneralName) -> str:
    """The `type:value` text of a GeneralName (inverse of `parse_san`)."""
    if isinstance(name, x509.DNSName):
        return f"dns:{name.value}"
    if isinstance(name, x509.IPAddress):
        return f"ip:{name.value}"
    if isinstance(name, x509.UniformResourceIdentifier):
        return f"uri:{name.value}"
    if isinstance(name, x509.RFC822Name):
        return f"email:{name.value}"
    return f"other:{name!r}"


def san_kind(name: x509.GeneralName) -> str:
    """The short type name (`dns`, `ip`, `uri`, `email`, or `other`) of a GeneralName."""
    return format_san(name).partition(":")[0]
