"""Organizations' domains and the suppliers (with trust anchors) they accept identities from."""

from __future__ import annotations

from iotpki.core.audit.log import AuditRecord, append_audit
from iotpki.core.ca.authority import AuthorityKind
from iotpki.core.clock import Clock
from iotpki.core.errors import ConfigurationError, ConflictError, NotFoundError
from iotpki.core.ports import UnitOfWork, UnitOfWorkFactory
from iotpki.core.supply_chain.domain import Domain, DomainNetwork, check_domain_name, check_network
from iotpki.core.supply_chain.domain_claims import enclosing


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
            _check_tree(uow, domain)
            uow.domains.add(domain)
            append_audit(uow.audit, domain.created_at, AuditRecord(
                "domain.create", "success", actor, name, {"organization": organization}))
            uow.commit()
        return domain

    def add_network(self, domain: str, network: str, actor: str) -> DomainNetwork:
        """Give `domain` an IP network: its addresses become the domain's (IP SANs in it are
        issued only by the domain owner's CAs). Networks of different organizations may
        not overlap; the same organization may nest them."""
        with self._uow() as uow:
            owner = uow.domains.owner(domain)
            if owner is None:
                raise NotFoundError(f"unknown domain {domain!r}")
            claimed = DomainNetwork(check_network(network), domain, owner, self._clock.now())
            for other in uow.domains.networks():
                if other.organization != owner and other.network.version == \
                        claimed.network.version and other.network.overlaps(claimed.network):
                    raise ConflictError(f"network {claimed.network} overlaps {other.network} of "
                                        f"domain {other.domain} ({other.organization})")
            uow.domains.add_network(claimed)
            append_audit(uow.audit, claimed.created_at, AuditRecord(
                "domain.network", "success", actor, domain,
                {"organization": owner, "network": str(claimed.network)}))
            uow.commit()
        return claimed

    def networks(self) -> list[DomainNetwork]:
        with self._uow() as uow:
            return uow.domains.networks()

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


def _check_tree(uow: UnitOfWork, domain: Domain) -> None:
    """A domain tree has one owner: no domain inside, or enclosing, another organization's
    (else the inner owner could issue names of the outer one, or the reverse)."""
    parents = uow.domains.owners(enclosing(domain.name)[1:])
    for name, owner in parents.items():
        if owner != domain.organization:
            raise ConflictError(f"domain {domain.name} lies inside {name}, owned by {owner}")
    suffix = "." + domain.name
    for other in uow.domains.list():
        if other.name.endswith(suffix) and other.organization != domain.organization:
            raise ConflictError(f"domain {domain.name} encloses {other.name}, owned by "
                                f"{other.organization}")
