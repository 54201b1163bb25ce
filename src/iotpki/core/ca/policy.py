"""Policy: the profile and the issuing authority decide; the request only asks.

`decide()` turns a request into a `CertificateTemplate` or raises `PolicyError`
naming the problem. RFC 5280 sections cited where they decide.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from iotpki.core.ca.authority import Authority
from iotpki.core.ca.extensions import key_usage
from iotpki.core.ca.profile import SUBJECT_ATTRIBUTES, Profile
from iotpki.core.errors import PolicyError
from iotpki.core.errors import RefusalReason as R
from iotpki.core.supply_chain.domain_claims import DomainClaims, canonical_sans, claims_of
from iotpki.wire.keys import UnsupportedKeyError, key_type_of
from iotpki.wire.names import format_san, san_kind

_OID_NAMES = {oid: name for name, oid in SUBJECT_ATTRIBUTES.items()}
_DNS_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
MIN_RSA_EXPONENT = 65537
# A subject names one thing; hundreds of RDNs are an attack on parsers and displays.
MAX_SUBJECT_ATTRIBUTES = 16
# RFC 5280 Appendix A: ub-common-name 64, ub-locality-name and ub-state-name 128, ...
_UPPER_BOUNDS = {"CN": 64, "O": 64, "OU": 64, "C": 2, "ST": 128, "L": 128, "serialNumber": 64}
_BIDI_CONTROLS = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                           "\u2066\u2067\u2068\u2069")
# Devices' clocks drift; a certificate valid from one minute ago avoids "not yet valid".
BACKDATE = timedelta(minutes=1)


@dataclass(frozen=True)
class CertificateTemplate:
    """Everything that goes into a certificate except the serial and the signature."""

    subject: x509.Name
    sans: tuple[x509.GeneralName, ...]
    public_key: Any
    key_type: str
    not_before: datetime
    not_after: datetime
    component_digest: bytes | None = None
    # The domains the names speak for, checked against their owners when the certificate
    # is stored (`domain_claims.check_claims`); decided here, before the write lock.
    claims: DomainClaims = field(default_factory=DomainClaims)

    def bound_to(self, digest: bytes | None) -> CertificateTemplate:
        return self if digest is None else replace(self, component_digest=digest)


def decide(
    *, profile: Profile, issuer: Authority, public_key: Any, subject: x509.Name,
    sans: Sequence[x509.GeneralName], now: datetime, not_after: datetime | None = None,
) -> CertificateTemplate:
    if not issuer.can_issue:
        raise PolicyError(R.AUTHORITY_CANNOT_ISSUE, f"authority {issuer.label} holds no signing key")
    key_type = check_key(profile, public_key)
    check_subject(profile, subject)
    sans = canonical_sans(sans)  # RFC 8141 §3.1: URN scheme and NID are case-insensitive
    check_sans(profile, subject, sans)
    check_name_constraints(issuer.name_constraints, sans)
    claims = claims_of(subject, sans)  # a name whose domain cannot be told is refused here
    start, end = validity(profile, issuer, now, not_after)
    return CertificateTemplate(subject, sans, public_key, key_type, start, end, claims=claims)


def check_key(profile: Profile, public_key: Any) -> str:
    try:
        key_type = key_type_of(public_key)
    except UnsupportedKeyError as exc:
        raise PolicyError(R.UNSUPPORTED_KEY, str(exc)) from exc
    if not usable_key_usage(profile, public_key):
        raise PolicyError(R.KEY_NOT_ALLOWED, f"none of profile {profile.name}'s key usages "
                                             f"({', '.join(profile.key_usage)}) fits a {key_type} key")
    if key_type not in profile.key_types:
        raise PolicyError(
            R.KEY_NOT_ALLOWED,
            f"key type {key_type} is not allowed by profile {profile.name} "
            f"(allowed: {', '.join(profile.key_types)})",
        )
    if isinstance(public_key, rsa.RSAPublicKey):
        check_rsa_exponent(public_key.public_numbers().e)
    return key_type


def check_rsa_exponent(e: int) -> None:
    """An odd public exponent from 65537 to 2^256 - 1 (CA/Browser Forum BR §6.1.6, NIST
    SP 800-89 §5.3.3): small exponents invite the low-exponent attacks on padding."""
    if e < MIN_RSA_EXPONENT or e % 2 == 0 or e.bit_length() > 256:
        raise PolicyError(R.KEY_NOT_ALLOWED, f"RSA public exponent {e} is refused: an odd "
                                             f"number from {MIN_RSA_EXPONENT} to 2^256-1")


def usable_key_usage(profile: Profile, public_key: Any) -> bool:
    """RFC 5280 §4.2.1.3: at least one bit must be set once bits the key cannot serve go."""
    usage = key_usage(profile.key_usage, public_key)
    return any((usage.digital_signature, usage.content_commitment, usage.key_encipherment,
                usage.data_encipherment, usage.key_agreement))


def check_subject(profile: Profile, subject: x509.Name) -> None:
    attributes = list(subject)
    if len(attributes) > MAX_SUBJECT_ATTRIBUTES:
        raise PolicyError(R.SUBJECT_NOT_ALLOWED, f"subject has {len(attributes)} attributes; "
                                                 f"at most {MAX_SUBJECT_ATTRIBUTES} are issued")
    present = set()
    for attribute in attributes:
        name = _OID_NAMES.get(attribute.oid)
        if name is None or name not in profile.subject.allowed:
            label = name or attribute.oid.dotted_string
            raise PolicyError(
                R.SUBJECT_NOT_ALLOWED,
                f"subject attribute {label} is not allowed by profile {profile.name} "
                f"(allowed: {', '.join(profile.subject.allowed)})",
            )
        check_text(f"subject {name}", attribute.value, _UPPER_BOUNDS.get(name, 64))
        present.add(name)
    missing = [a for a in profile.subject.required if a not in present]
    if missing:
        raise PolicyError(
            R.SUBJECT_NOT_ALLOWED,
            f"subject lacks {', '.join(missing)} required by profile {profile.name}",
        )


def check_text(what: str, value: str | bytes, limit: int) -> None:
    """No control characters (NUL included) nor bidirectional overrides, which make a name
    display as another; at most `limit` characters (RFC 5280 Appendix A upper bounds)."""
    if not isinstance(value, str) or not value:
        raise PolicyError(R.SUBJECT_NOT_ALLOWED, f"{what} must be non-empty text")
    if len(value) > limit:
        raise PolicyError(R.SUBJECT_NOT_ALLOWED, f"{what} is longer than {limit} characters")
    if any(unicodedata.category(c) == "Cc" or c in _BIDI_CONTROLS for c in value):
        raise PolicyError(R.SUBJECT_NOT_ALLOWED, f"{what} contains a control character")


def check_sans(profile: Profile, subject: x509.Name, sans: Sequence[x509.GeneralName]) -> None:
    rules = profile.san
    if (rules.required or len(subject) == 0) and not sans:
        raise PolicyError(R.SAN_NOT_ALLOWED, f"profile {profile.name} requires a subjectAltName")
    if len(sans) > rules.max_count:
        raise PolicyError(R.SAN_NOT_ALLOWED, f"{len(sans)} SANs; profile allows {rules.max_count}")
    for name in sans:
        kind = san_kind(name)
        if kind not in rules.allowed:
            raise PolicyError(
                R.SAN_NOT_ALLOWED,
                f"SAN {format_san(name)} is not allowed: profile {profile.name} "
                f"accepts {', '.join(rules.allowed) or 'none'}",
            )
        if isinstance(name, x509.DNSName):
            check_dns_name(profile, name.value)
        if isinstance(name, x509.UniformResourceIdentifier):
            check_uri(profile, name.value)
        if isinstance(name, x509.IPAddress) and not isinstance(
                name.value, ipaddress.IPv4Address | ipaddress.IPv6Address):
            # RFC 5280 §4.2.1.6: in a SAN, an iPAddress is one address (4 or 16 octets).
            raise PolicyError(R.SAN_NOT_ALLOWED, f"SAN {format_san(name)} is a network")
        if isinstance(name, x509.UniformResourceIdentifier | x509.RFC822Name) and any(
                unicodedata.category(c) in ("Cc", "Zs") or c in _BIDI_CONTROLS
                for c in name.value):
            raise PolicyError(R.SAN_NOT_ALLOWED, f"SAN {name.value!r} contains a control "
                                                 "character or a space")


def check_dns_name(profile: Profile, value: str) -> None:
    if "*" in value:
        raise PolicyError(R.WILDCARD, f"wildcard DNS name {value!r} is never issued")
    labels = value.lower().rstrip(".").split(".")
    if len(value) > 253 or not all(_DNS_LABEL.match(label) for label in labels):
        raise PolicyError(R.SAN_NOT_ALLOWED, f"malformed DNS name {value!r}")
    suffixes = profile.san.dns_suffixes
    if suffixes and not any(_within_dns(value, s) for s in suffixes):
        raise PolicyError(
            R.SAN_NOT_ALLOWED,
            f"DNS name {value!r} is outside the profile's domains ({', '.join(suffixes)})",
        )


def check_uri(profile: Profile, value: str) -> None:
    if "*" in value:
        raise PolicyError(R.WILDCARD, f"wildcard URI {value!r} is never issued")
    prefixes = profile.san.uri_prefixes
    if prefixes and not any(value.startswith(p) for p in prefixes):
        raise PolicyError(
            R.SAN_NOT_ALLOWED,
            f"URI {value!r} does not start with an allowed prefix ({', '.join(prefixes)})",
        )


def _within_dns(name: str, suffix: str) -> bool:
    name, suffix = name.lower().rstrip("."), suffix.lower().strip(".")
    return name == suffix or name.endswith("." + suffix)


def check_name_constraints(
    nc: x509.NameConstraints | None, sans: Sequence[x509.GeneralName]
) -> None:
    """RFC 5280 §4.2.1.10, for DNS and IP names: refuse what a validator would reject."""
    if nc is None:
        return
    for name in sans:
        if _matches_any(name, nc.excluded_subtrees or []):
            raise PolicyError(R.NAME_CONSTRAINTS, f"{format_san(name)} is excluded by the CA")
        permitted = [t for t in nc.permitted_subtrees or [] if type(t) is type(name)]
        if permitted and not _matches_any(name, permitted):
            raise PolicyError(R.NAME_CONSTRAINTS, f"{format_san(name)} is not permitted by the CA")


def _matches_any(name: x509.GeneralName, subtrees: Sequence[x509.GeneralName]) -> bool:
    for tree in subtrees:
        if (isinstance(name, x509.DNSName) and isinstance(tree, x509.DNSName)
                and _within_dns(name.value, tree.value)):
            return True
        if isinstance(name, x509.IPAddress) and isinstance(tree, x509.IPAddress):
            network = tree.value
            if isinstance(network, ipaddress.IPv4Network | ipaddress.IPv6Network) and (
                name.value in network
            ):
                return True
    return False


def validity(
    profile: Profile, issuer: Authority, now: datetime, not_after: datetime | None
) -> tuple[datetime, datetime]:
    """RFC 5280 §6.1.3: a certificate outliving its issuer fails validation, so never issue one."""
    start = now - BACKDATE
    issuer_end = issuer.not_after
    if now >= issuer_end:
        raise PolicyError(R.AUTHORITY_CANNOT_ISSUE, f"authority {issuer.label} has expired")
    if not_after is None:
        return start, min(now + profile.validity, issuer_end)
    if not_after > issuer_end:
        raise PolicyError(
            R.VALIDITY_EXCEEDS_ISSUER,
            f"requested notAfter {not_after.isoformat()} is past the issuer's "
            f"notAfter {issuer_end.isoformat()}",
        )
    if not_after > now + profile.validity:
        raise PolicyError(
            R.VALIDITY_EXCEEDS_PROFILE,
            f"requested notAfter {not_after.isoformat()} exceeds profile {profile.name}'s "
            f"validity of {profile.validity}",
        )
    if not_after <= now:
        raise PolicyError(R.MALFORMED_REQUEST, "requested notAfter is in the past")
    return start, not_after
