"""The narrow port the ACME adapter works through (`protocols.acme`): every read and write of
ACME state, each in a transaction of its own, plus the few lookups of other state ACME
needs (domain owners, authorities by key identifier, certificates) and its audit entries.
The adapter never opens a unit of work itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509

from iotpki.core.audit.log import AuditRecord, append_audit
from iotpki.core.ca.certificate import CertificateRecord
from iotpki.core.clock import Clock
from iotpki.core.ports import UnitOfWorkFactory
from iotpki.core.ra.acme import ACMEAccount, ACMEAuthorization, ACMEOrder, EABKey


@dataclass(frozen=True)
class AccountCreation:
    created: bool
    refusal: str | None = None  # "eab-used" or "exists" when not created


def key_identifier(certificate: x509.Certificate) -> bytes:
    """The subjectKeyIdentifier (RFC 5280 §4.2.1.2), or the method-1 digest without one."""
    try:
        return certificate.extensions.get_extension_for_class(
            x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return x509.SubjectKeyIdentifier.from_public_key(certificate.public_key()).digest


class ACMEState:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock,
                 reads: UnitOfWorkFactory | None = None) -> None:
        self._uow = uow
        self._reads = reads or uow
        self._clock = clock

    # -- nonces (RFC 8555 §6.5) -----------------------------------------------------------------

    def add_nonce(self, nonce: str, prune_before: datetime | None = None) -> None:
        with self._uow() as uow:
            uow.acme.add_nonce(nonce, self._clock.now())
            if prune_before is not None:
                uow.acme.prune_nonces(prune_before)
            uow.commit()

    def swap_nonce(self, used: str | None, fresh: str, issued_after: datetime) -> bool:
        """Consume `used` (True if it was ours and unused) and issue `fresh`, atomically."""
        with self._uow() as uow:
            accepted = used is not None and uow.acme.use_nonce(used, issued_after)
            uow.acme.add_nonce(fresh, self._clock.now())
            uow.commit()
        return accepted

    # -- accounts --------------------------------------------------------------------------------

    def account(self, account_id: str) -> ACMEAccount | None:
        with self._reads() as uow:
            return uow.acme.account(account_id)

    def account_by_thumbprint(self, thumbprint: str) -> ACMEAccount | None:
        with self._reads() as uow:
            return uow.acme.account_by_thumbprint(thumbprint)

    def eab_key(self, key_id: str) -> EABKey | None:
        with self._reads() as uow:
            return uow.acme.eab_key(key_id)

    def create_account(self, account: ACMEAccount) -> AccountCreation:
        """Store the account and, in the same transaction, bind its EAB key (one use)."""
        with self._uow() as uow:
            if account.eab_key_id is not None and \
                    not uow.acme.bind_eab_key(account.eab_key_id, account.id):
                return AccountCreation(False, "eab-used")
            if not uow.acme.add_account(account):
                return AccountCreation(False, "exists")
            uow.commit()
        return AccountCreation(True)

    def update_account(self, account: ACMEAccount) -> bool:
        """False if the account's (new) key belongs to another account."""
        with self._uow() as uow:
            other = uow.acme.account_by_thumbprint(account.thumbprint)
            if other is not None and other.id != account.id:
                return False
            if not uow.acme.update_account(account):
                return False
            uow.commit()
        return True

    def orders_of(self, account_id: str, limit: int) -> list[ACMEOrder]:
        with self._reads() as uow:
            return uow.acme.orders_of(account_id, limit)

    # -- orders and authorizations -------------------------------------------------------------

    def count_orders(self, account_id: str | None, organization: str | None,
                     since: datetime) -> int:
        with self._reads() as uow:
            return uow.acme.count_orders(account_id, organization, since)

    def domain_owner(self, name: str) -> str | None:
        """The organization owning the most specific operational domain enclosing `name`."""
        labels = name.split(".")
        candidates = [".".join(labels[i:]) for i in range(len(labels))]  # most specific first
        with self._reads() as uow:
            owners = uow.domains.owners(candidates)
        return next((owners[d] for d in candidates if d in owners), None)

    def valid_authorization(self, account_id: str, identifier_type: str, identifier_value: str,
                            at: datetime) -> ACMEAuthorization | None:
        with self._reads() as uow:
            return uow.acme.valid_authorization(account_id, identifier_type,
                                                identifier_value, at)

    def add_order(self, order: ACMEOrder, authorizations: list[ACMEAuthorization]) -> None:
        with self._uow() as uow:
            uow.acme.add_order(order, authorizations)
            uow.commit()

    def order(self, order_id: str) -> ACMEOrder | None:
        with self._reads() as uow:
            return uow.acme.order(order_id)

    def order_for_certificate(self, fingerprint: str) -> ACMEOrder | None:
        with self._reads() as uow:
            return uow.acme.order_for_certificate(fingerprint)

    def update_order(self, order: ACMEOrder, expected_status: str) -> bool:
        with self._uow() as uow:
            done = uow.acme.update_order(order, expected_status)
            uow.commit()
        return done

    def authorization(self, authz_id: str) -> ACMEAuthorization | None:
        with self._reads() as uow:
            return uow.acme.authorization(authz_id)

    def update_authorization(self, authz: ACMEAuthorization, expected_status: str) -> bool:
        with self._uow() as uow:
            done = uow.acme.update_authorization(authz, expected_status)
            uow.commit()
        return done

    # -- certificates ----------------------------------------------------------------------------

    def issuing_chain(self, authority: str) -> tuple[x509.Certificate, ...]:
        """The authority's certificate and those above it, root last."""
        with self._reads() as uow:
            found = uow.authorities.get(authority)
        return found.full_chain if found is not None else ()

    def certificate_by_key_id(self, key_id: bytes, serial: int) -> CertificateRecord | None:
        """RFC 9773 §4.1: the certificate of the authority with that key identifier."""
        with self._reads() as uow:
            for authority in uow.authorities.list():
                if key_identifier(authority.certificate) == key_id:
                    return uow.certificates.get(authority.label, serial)
        return None

    # -- audit -----------------------------------------------------------------------------------

    def audit(self, action: str, outcome: str, actor: str, target: str,
              details: dict[str, Any]) -> None:
        with self._uow() as uow:
            append_audit(uow.audit, self._clock.now(),
                         AuditRecord(action, outcome, actor, target, details))
            uow.commit()
