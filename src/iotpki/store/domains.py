"""Repositories of what an organization owns: domains and supplier trust."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.exc import IntegrityError

from iotpki.core.ca.authority import Authority
from iotpki.core.errors import ConflictError
from iotpki.core.supply_chain.domain import Domain, DomainNetwork
from iotpki.store.authorities import SQLAuthorityRepository
from iotpki.store.ids import IdCache
from iotpki.store.prepared import Prepared
from iotpki.store.schema import (
    authorities,
    domain_networks,
    domains,
    organizations,
    supplier_trust,
)

_OWNER = Prepared(select(domains.c.organization_id).where(domains.c.name == bindparam("name")))


# Writes (store.prepared: the one write path).
_ADD = Prepared(domains.insert().inline(), ("name", "organization_id", "created_at"))
_ADD_NETWORK = Prepared(domain_networks.insert().inline(),
                        ("network", "domain_id", "created_at"))
_ADD_TRUST = Prepared(supplier_trust.insert().inline(),
                      ("organization_id", "supplier_id", "anchor_id", "created_at"))


class SQLDomainRepository:
    def __init__(self, conn: Connection, ids: IdCache) -> None:
        self._conn = conn
        self._ids = ids

    def add(self, domain: Domain) -> None:
        org_id = self._ids.id_of(self._conn, organizations, domain.organization)
        try:
            _ADD.execute(self._conn, dict(
                name=domain.name, organization_id=org_id, created_at=domain.created_at))
        except IntegrityError as exc:
            raise ConflictError(f"domain {domain.name!r} is already owned") from exc

    def owner(self, name: str) -> str | None:
        row = _OWNER.first(self._conn, {"name": name})  # checked for every issued domain
        return None if row is None else self._ids.label_of(self._conn, organizations, row[0])

    def owners(self, names: Sequence[str]) -> dict[str, str]:
        rows = self._conn.execute(select(domains.c.name, domains.c.organization_id).where(
            domains.c.name.in_(list(names))))
        return {name: self._ids.label_of(self._conn, organizations, org) for name, org in rows}

    def add_network(self, network: DomainNetwork) -> None:
        domain_id = self._conn.execute(select(domains.c.id).where(
            domains.c.name == network.domain)).scalar_one()
        try:
            with self._conn.begin_nested():  # PostgreSQL: keep the transaction usable
                _ADD_NETWORK.execute(self._conn, dict(
                    network=str(network.network), domain_id=domain_id,
                    created_at=network.created_at))
        except IntegrityError as exc:
            raise ConflictError(f"network {network.network} is already owned") from exc

    def networks(self) -> list[DomainNetwork]:
        rows = self._conn.execute(
            select(domain_networks.c.network, domains.c.name, domains.c.organization_id,
                   domain_networks.c.created_at)
            .join(domains, domains.c.id == domain_networks.c.domain_id)
            .order_by(domain_networks.c.id))
        return [DomainNetwork(ipaddress.ip_network(r.network), r.name,
                              self._ids.label_of(self._conn, organizations, r.organization_id),
                              r.created_at) for r in rows]

    def list(self, organization: str | None = None) -> list[Domain]:
        stmt = select(domains).order_by(domains.c.name)
        if organization is not None:
            stmt = stmt.where(domains.c.organization_id == self._ids.id_of(
                self._conn, organizations, organization))
        return [Domain(r.name, self._ids.label_of(self._conn, organizations, r.organization_id),
                       r.created_at) for r in self._conn.execute(stmt)]


class SQLTrustRepository:
    def __init__(self, conn: Connection, ids: IdCache) -> None:
        self._conn = conn
        self._ids = ids

    def add(self, organization: str, supplier: str, anchor: str, at: datetime) -> None:
        try:
            _ADD_TRUST.execute(self._conn, dict(
                organization_id=self._ids.id_of(self._conn, organizations, organization),
                supplier_id=self._ids.id_of(self._conn, organizations, supplier),
                anchor_id=self._ids.id_of(self._conn, authorities, anchor), created_at=at))
        except IntegrityError as exc:
            raise ConflictError(f"{organization} already trusts {supplier} via {anchor}") from exc

    def anchors(self, organization: str, supplier: str | None = None) -> list[Authority]:
        stmt = select(authorities.c.label).join(
            supplier_trust, supplier_trust.c.anchor_id == authorities.c.id
        ).where(supplier_trust.c.organization_id == self._ids.id_of(
            self._conn, organizations, organization))
        if supplier is not None:
            stmt = stmt.where(supplier_trust.c.supplier_id == self._ids.id_of(
                self._conn, organizations, supplier))
        repository = SQLAuthorityRepository(self._conn, self._ids)
        labels = sorted(set(self._conn.execute(stmt).scalars()))
        return [a for a in (repository.get(label) for label in labels) if a is not None]

    def suppliers(self, organization: str) -> list[tuple[str, str]]:
        stmt = select(supplier_trust.c.supplier_id, supplier_trust.c.anchor_id).where(
            supplier_trust.c.organization_id == self._ids.id_of(
                self._conn, organizations, organization))
        return [(self._ids.label_of(self._conn, organizations, s),
                 self._ids.label_of(self._conn, authorities, a))
                for s, a in self._conn.execute(stmt)]
