"""X.509 extensions of issued certificates (RFC 5280 §4.2), decided by profile and authority."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID

from iotpki.core.ca.profile import EXTENDED_KEY_USAGES, Profile
from iotpki.core.ca.urls import PublicURLs


def key_usage(usages: Sequence[str], public_key: Any, *, ca: bool = False) -> x509.KeyUsage:
    """RFC 5280 §4.2.1.3. Bits a key cannot serve (keyEncipherment on EC, keyAgreement on
    RSA or EdDSA) are dropped rather than asserted falsely."""
    is_rsa = isinstance(public_key, rsa.RSAPublicKey)
    is_ec = isinstance(public_key, ec.EllipticCurvePublicKey)
    wanted = set(usages)
    return x509.KeyUsage(
        digital_signature="digital_signature" in wanted or ca,
        content_commitment="content_commitment" in wanted,
        key_encipherment="key_encipherment" in wanted and is_rsa,
        data_encipherment="data_encipherment" in wanted and is_rsa,
        key_agreement="key_agreement" in wanted and is_ec,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def crl_distribution_points(url: str) -> tuple[x509.ExtensionType, bool]:
    """One distribution point, by URI (§4.2.1.13: the issuer is the CRL issuer, so no
    cRLIssuer; all reasons)."""
    return x509.CRLDistributionPoints([x509.DistributionPoint(
        full_name=[x509.UniformResourceIdentifier(url)], relative_name=None, reasons=None,
        crl_issuer=None)]), False


def issuer_links(issuer_label: str, urls: PublicURLs,
                 with_cdp: bool = True) -> list[tuple[x509.ExtensionType, bool]]:
    """CRL distribution point and AIA (OCSP + caIssuers) of the issuing CA (§4.2.1.13,
    §4.2.2.1). `with_cdp` False: the caller adds the CDP (a CRL shard's, per certificate)."""
    aia = x509.AuthorityInformationAccess([
        x509.AccessDescription(
            AuthorityInformationAccessOID.OCSP,
            x509.UniformResourceIdentifier(urls.ocsp(issuer_label)),
        ),
        x509.AccessDescription(
            AuthorityInformationAccessOID.CA_ISSUERS,
            x509.UniformResourceIdentifier(urls.ca_issuers(issuer_label)),
        ),
    ])
    cdp = [crl_distribution_points(urls.crl(issuer_label))] if with_cdp else []
    return [*cdp, (aia, False)]


def key_identifiers(
    public_key: Any, issuer: x509.Certificate
) -> list[tuple[x509.ExtensionType, bool]]:
    """SKI (§4.2.1.2) from our key, AKI (§4.2.1.1) copied from the issuer's SKI."""
    ski = x509.SubjectKeyIdentifier.from_public_key(public_key)
    try:
        issuer_ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski)
    except x509.ExtensionNotFound:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key())  # type: ignore[arg-type]
    return [(ski, False), (aki, False)]


def issuer_extensions(
    issuer_label: str, issuer: x509.Certificate, urls: PublicURLs, with_cdp: bool = True,
) -> list[tuple[x509.ExtensionType, bool]]:
    """The part that depends on the issuer alone (AKI, CDP, AIA): computed once per authority.
    A sharded authority's CDP depends on the certificate (`with_cdp` False)."""
    return [key_identifiers(issuer.public_key(), issuer)[1],
            *issuer_links(issuer_label, urls, with_cdp)]


def subject_extensions(
    profile: Profile, public_key: Any, subject: x509.Name, sans: Sequence[x509.GeneralName],
) -> list[tuple[x509.ExtensionType, bool]]:
    """The part decided by the profile and the request's key and names."""
    exts: list[tuple[x509.ExtensionType, bool]] = [
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (key_usage(profile.key_usage, public_key), True),
    ]
    if profile.extended_key_usage:
        oids = [EXTENDED_KEY_USAGES[u] for u in profile.extended_key_usage]
        exts.append((x509.ExtendedKeyUsage(oids), False))
    if sans:
        # §4.2.1.6: critical when the subject is empty.
        exts.append((x509.SubjectAlternativeName(list(sans)), len(subject) == 0))
    exts.append((x509.SubjectKeyIdentifier.from_public_key(public_key), False))
    if profile.ocsp_no_check:
        exts.append((x509.OCSPNoCheck(), False))  # RFC 6960 §4.2.2.2.1
    return exts
