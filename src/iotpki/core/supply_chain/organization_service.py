"""Organizations' domains and the suppliers (with trust anchors) they accept identities from."""

from __future__ import annotations

from iotpki.core.audit.log import AuditRecord, append_audit
from iotpki.core.ca.authority import AuthorityKind
from iotpki.core.clock import Clock
from iotpki.core.errors import ConfigurationError, NotFoundError
from iotpki.core.ports import UnitOfWorkFactory
from iotpki.core.supply_chain.domain import Domain, check_domain_name


class OrganizationService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    def add_domain(self, organization: str, name: str, actor: str) -> Domain:
        """Claim an operational domain; one owner per name."""
        domain = Domain(check_domain_name(name), organization, self._clock.now())
        with self._uow() as uow:
            if uow.organizations.get(organization) is None:
                raise NotFoundError(f"unknown organization {organization!r}")
            uow.domains.add(domain)
            append_audit(uow.audit, domain.created_at, AuditRecord(
                "domain.create", "success", actor, name, {"organization": organization}))
            uow.commit()
        return domain

    def domains(self, organization: str | None = None) -> list[Domain]:
        with self._uow() as uow:
            return uow.domains.list(organization)

    def trust_supplier(self, organization: str, supplier: str, anchor: str, actor: str) -> None:
        """`organization` accepts identities from `supplier` that chain to `anchor`."""
        now = self._clock.now()
        with self._uow() as uow:
            for label in (organization, supplier):
                if uow.organizations.get(label) is None:
                    raise NotFoundError(f"unknown organization {label!r}")
            authority = uow.authorities.get(anchor)
            if authority is None:
                raise NotFoundError(f"unknown authority {anchor!r}")
            if authority.kind is AuthorityKind.TRUST_ANCHOR and authority.organization != supplier \
                    and authority.organization != organization:
                raise ConfigurationError(f"trust anchor {anchor} belongs to {authority.organization}")
            uow.trust.add(organization, supplier, anchor, now)
            append_audit(uow.audit, now, AuditRecord(
                "trust.add", "success", actor, organization,
                {"supplier": supplier, "anchor": anchor}))
            uow.commit()

    def suppliers(self, organization: str) -> list[tuple[str, str]]:
        with self._uow() as uow:
            return uow.trust.suppliers(organization)
