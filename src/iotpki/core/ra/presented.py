"""Whether a certificate a client presents (TLS client certificate, CMP protection
certificate) may speak at all, decided before any registration is looked up (RFC 9483
§3.5: the protection certificate is validated first; a revoked or untrusted signer is told
so, not that it is unregistered).

- A certificate issued here is known; one that is revoked or on hold is refused (REVOKED).
- Any other certificate must chain to a supplier anchor some organization trusts
  (UNTRUSTED_CHAIN otherwise); its supplier's revocation status is the enrollment
  method's to check (`core.ra.enrollment.PreviousStageCertificate`), with the registration
  that names it.
"""

from __future__ import annotations

from cryptography import x509

from iotpki.core.ca.certificate import CertificateRecord, CertificateStatus
from iotpki.core.clock import Clock
from iotpki.core.errors import PolicyError
from iotpki.core.errors import RefusalReason as R
from iotpki.core.ports import UnitOfWorkFactory
from iotpki.core.ra.enrollment import fingerprint, validated_path
from iotpki.wire.path import ChainError


class PresentedIdentities:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    def check(self, chain: tuple[x509.Certificate, ...],
              allow_held: bool = False) -> CertificateRecord | None:
        """`chain` leaf first; raise `PolicyError` (REVOKED, UNTRUSTED_CHAIN) or return the
        leaf's record if it was issued here (None for a supplier's certificate), read in the
        same unit of work: the caller needs it next and need not read it again (issue 21).
        `allow_held`: a certificate on hold may speak (to ask for its release)."""
        if not chain:
            raise PolicyError(R.NO_CLIENT_IDENTITY, "no certificate was presented")
        with self._uow() as uow:
            record = uow.certificates.get_by_fingerprint(fingerprint(chain[0]))
            if record is None:
                anchors = [a.certificate for o in uow.organizations.list()
                           for a in uow.trust.anchors(o.label)]
                try:  # completed with the CAs we know when the client sent its leaf alone
                    validated_path(uow, chain[0], chain[1:], anchors, self._clock.now())
                except (ChainError, ValueError) as exc:  # ValueError: unparsable fields
                    raise PolicyError(R.UNTRUSTED_CHAIN, f"the presented certificate was not "
                                                         f"issued here and chains to no "
                                                         f"trusted supplier anchor: {exc}"
                                      ) from exc
                return None
        held = allow_held and record.status is CertificateStatus.HELD
        if record.status is not CertificateStatus.GOOD and not held:
            raise PolicyError(R.REVOKED, f"the presented certificate is {record.status.value}")
        return record
