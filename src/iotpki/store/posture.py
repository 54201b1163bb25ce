"""The posture checks' queries (`core.lifecycle.posture`), each one statement over indexes:
keys by identity (`ix_certificates_key_id`) and strength (`ix_certificates_key_strength`,
migration 0022), expiry ranges per authority and status (`ix_certificates_fleet`), renewals
by subject (`ix_certificates_subject`), domains by name (`ix_certificates_domain`), and the
owner's devices (`ix_devices_owner`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, distinct, exists, func, select

from iotpki.core.ca.key_facts import MINIMUM_BITS
from iotpki.core.lifecycle.posture import CertificateRef, DeviceRef, ForeignDomain, SharedKey
from iotpki.store.ids import IdCache
from iotpki.store.schema import (
    authorities,
    certificates,
    device_identities,
    devices,
    domains,
    organizations,
)

c, i, d = certificates.c, device_identities.c, devices.c
_OWNED_IDENTITIES = devices.join(device_identities, i.device_id == d.id).join(
    certificates, c.fingerprint == i.fingerprint)


def _unindexed(column: Any) -> Any:
    """The same value, but SQLite no longer drives the query from an index on it (it has no
    statistics to know a join from a handful of rows beats a range over every device or
    certificate; PostgreSQL, which has them, plans the same either way)."""
    return func.coalesce(column, column)


class SQLPostureQueries:
    def __init__(self, conn: Connection, ids: IdCache) -> None:
        self._conn = conn
        self._ids = ids

    def _organization(self, label: str) -> int:
        return self._ids.id_of(self._conn, organizations, label)

    def _authorities(self, labels: Sequence[str]) -> list[int]:
        return [self._ids.id_of(self._conn, authorities, label) for label in labels]

    def shared_keys(self, organization: str, limit: int) -> list[SharedKey]:
        """Keys in more than one certificate, from the key index alone (no table rows), then
        only those keys' certificates: which of the organization's devices hold them."""
        owner = self._organization(organization)
        repeated = (select(c.key_id).where(c.key_id.is_not(None)).group_by(c.key_id)
                    .having(func.count() > 1).subquery())
        shared = (select(c.key_id).select_from(_OWNED_IDENTITIES)
                  .where(c.key_id.in_(select(repeated.c.key_id)),
                         _unindexed(d.owner_id) == owner)
                  .group_by(c.key_id).having(func.count(distinct(d.id)) > 1)
                  .order_by(c.key_id).limit(limit).subquery())
        rows = self._conn.execute(
            select(c.key_id, d.id, d.name).distinct().select_from(_OWNED_IDENTITIES)
            .where(_unindexed(d.owner_id) == owner, c.key_id.in_(select(shared.c.key_id)))
            .order_by(c.key_id, d.name, d.id)).all()
        found: dict[str, list[DeviceRef]] = {}
        for key_id, device_id, name in rows:
            found.setdefault(key_id, []).append(DeviceRef(device_id, name))
        return [SharedKey(k, tuple(v)) for k, v in found.items()]

    def weak_keys(self, labels: Sequence[str], now: datetime,
                  limit: int) -> list[CertificateRef]:
        """One index range per algorithm (authority, algorithm, bits below its minimum)."""
        found: list[Any] = []
        for algorithm, bits in MINIMUM_BITS.items():
            stmt = select(c.authority_id, c.serial, c.subject, c.profile, c.not_after,
                          c.key_algorithm, c.key_bits).where(
                c.authority_id.in_(self._authorities(labels)), c.key_algorithm == algorithm,
                c.key_bits < bits, _unindexed(c.status) == "good", c.not_after > now
            ).order_by(c.not_after, c.id).limit(limit)
            found.extend(self._conn.execute(stmt))
        found.sort(key=lambda r: r.not_after)
        return [self._reference(r, f"{r.key_algorithm.upper()} {r.key_bits}")
                for r in found[:limit]]

    def unrenewed(self, labels: Sequence[str], now: datetime, until: datetime,
                  skipped_profiles: Sequence[str], limit: int) -> list[CertificateRef]:
        own = self._authorities(labels)
        later = certificates.alias("later")
        # By subject (a renewal keeps it): a few rows each, not the authority's later issues.
        renewed = exists(select(1).select_from(later).where(
            later.c.subject == c.subject, _unindexed(later.c.authority_id).in_(own),
            later.c.issued_at > c.issued_at))
        stmt = select(c.authority_id, c.serial, c.subject, c.profile, c.not_after).where(
            c.authority_id.in_(own), c.status == "good", c.not_after >= now,
            c.not_after < until, c.profile.not_in(skipped_profiles), ~renewed
        ).order_by(c.not_after, c.id).limit(limit)
        return [self._reference(r) for r in self._conn.execute(stmt)]

    def leaves_after(self, authority: str, moment: datetime) -> tuple[int, datetime | None]:
        count, last = self._conn.execute(select(func.count(), func.max(c.not_after)).where(
            c.authority_id == self._ids.id_of(self._conn, authorities, authority),
            c.status == "good", c.not_after > moment)).one()
        return int(count), last

    def foreign_domains(self, organization: str, now: datetime,
                        limit: int) -> list[ForeignDomain]:
        """From the other organizations' domains (few) to the certificates naming them,
        then their devices: not from every device of the owner."""
        owner = self._organization(organization)
        dm = domains.c
        foreign = select(dm.name).where(dm.organization_id != owner)
        stmt = (select(d.id, d.name, c.domain, dm.organization_id).distinct()
                .select_from(certificates.join(device_identities, i.fingerprint == c.fingerprint)
                             .join(devices, d.id == i.device_id)
                             .join(domains, dm.name == c.domain))
                .where(c.domain.in_(foreign), _unindexed(d.owner_id) == owner,
                       _unindexed(c.status) == "good", c.not_after > now)
                .order_by(d.name, d.id, c.domain).limit(limit))
        return [ForeignDomain(DeviceRef(device_id, name), domain,
                              self._ids.label_of(self._conn, organizations, domain_owner))
                for device_id, name, domain, domain_owner in self._conn.execute(stmt)]

    def _reference(self, row: object, key: str = "") -> CertificateRef:
        r = row._mapping  # type: ignore[attr-defined]
        return CertificateRef(self._ids.label_of(self._conn, authorities, r["authority_id"]),
                              r["serial"], r["subject"], r["profile"], r["not_after"], key)
