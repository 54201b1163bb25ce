"""The CMP protection of each authority's answers (RFC 9483 §3.1, §3.3): signed with the
CA's `cmp-protection` service certificate (`core.ca.service_certificates`), which goes
first in extraCerts followed by the CA chain."""

from __future__ import annotations

from iotpki.core.ca.ports import Purpose
from iotpki.core.ca.service_certificates import ServiceCertificates
from iotpki.wire.cmp.protection import SignatureProtection


class CMPProtection:
    def __init__(self, certificates: ServiceCertificates) -> None:
        self._certificates = certificates

    def signer(self, authority: str) -> SignatureProtection:
        """The authority's protection; a new certificate once the old one nears its end."""
        current = self._certificates.current(authority, Purpose.CMP_PROTECTION)
        return SignatureProtection(current.key, current.certificate, current.chain)
