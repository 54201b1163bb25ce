"""The posture checks' queries (`core.lifecycle.posture`), each bounded by the findings it
returns, not by the store: shared keys from the keys recorded as shared (`shared_keys`,
migration 0024) and their holders by key (`ix_certificates_key_id`), weak keys by strength
(`ix_certificates_key_strength`, migration 0022), expiry ranges per authority and status in
notAfter order (`ix_certificates_fleet`) with renewals by subject (`ix_certificates_subject`),
domains by name (`ix_certificates_domain`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, exists, func, select

from iotpki.core.ca.key_facts import MINIMUM_BITS
from iotpki.core.lifecycle.posture import (
    HOLDERS_COUNTED,
    CertificateRef,
    DeviceRef,
    ForeignDomain,
    SharedKey,
)
from iotpki.store.ids import IdCache
from iotpki.store.schema import (
    authorities,
    certificates,
    device_identities,
    devices,
    domains,
    organizations,
    shared_keys,
)
from iotpki.store.shared_keys import holders
from iotpki.store.unindexed import unindexed

c, i, d, sk = certificates.c, device_identities.c, devices.c, shared_keys.c



class SQLPostureQueries:
    def __init__(self, conn: Connection, ids: IdCache) -> None:
        self._conn = conn
        self._ids = ids

    def _organization(self, label: str) -> int:
        return self._ids.id_of(self._conn, organizations, label)

    def _authorities(self, labels: Sequence[str]) -> list[int]:
        return [self._ids.id_of(self._conn, authorities, label) for label in labels]

    def shared_keys(self, organization: str, limit: int) -> list[SharedKey]:
        """The keys recorded as on two of the owner's devices (`store.shared_keys`), in key
        order, a page at a time until `limit` are confirmed: each by its holders, read from the
        key's certificates up to `HOLDERS_COUNTED` + 1 devices. (A record the owner's devices
        no longer make true is passed over.)"""
        owner = self._organization(organization)
        found: list[SharedKey] = []
        after = ""
        while len(found) < limit:
            keys = self._conn.execute(
                select(sk.key_id).where(sk.owner_id == owner, sk.key_id > after)
                .order_by(sk.key_id).limit(limit)).scalars().all()
            for key_id in keys:
                devices_ = holders(self._conn, owner, key_id, HOLDERS_COUNTED + 1)
                if len(devices_) > 1:
                    found.append(SharedKey(
                        key_id, tuple(sorted(devices_[:HOLDERS_COUNTED],
                                             key=lambda r: (r.name, r.id))),
                        len(devices_) > HOLDERS_COUNTED))
                    if len(found) == limit:
                        break
            if len(keys) < limit:
                break
            after = keys[-1]
        return found

    def weak_keys(self, labels: Sequence[str], now: datetime,
                  limit: int) -> list[CertificateRef]:
        """One index range per algorithm (authority, algorithm, bits below its minimum)."""
        found: list[Any] = []
        for algorithm, bits in MINIMUM_BITS.items():
            stmt = select(c.authority_id, c.serial, c.subject, c.profile, c.not_after,
                          c.key_algorithm, c.key_bits).where(
                c.authority_id.in_(self._authorities(labels)), c.key_algorithm == algorithm,
                c.key_bits < bits, unindexed(c.status) == "good", c.not_after > now
            ).order_by(c.not_after, c.id).limit(limit)
            found.extend(self._conn.execute(stmt))
        found.sort(key=lambda r: r.not_after)
        return [self._reference(r, f"{r.key_algorithm.upper()} {r.key_bits}")
                for r in found[:limit]]

    def unrenewed(self, labels: Sequence[str], now: datetime, until: datetime,
                  skipped_profiles: Sequence[str], limit: int) -> list[CertificateRef]:
        """Per authority, its good certificates in notAfter order (`ix_certificates_fleet`),
        each with its renewal lookup, until `limit` have none; merged here. The statement
        stops at the `limit`-th unrenewed certificate: what it reads is those plus the
        renewed ones expiring before them (at worst every good certificate of the authority
        expiring within the horizon, when all of them were renewed)."""
        own = self._authorities(labels)
        later = certificates.alias("later")
        # By subject (a renewal keeps it): a few rows each, not the authority's later issues.
        renewed = exists(select(1).select_from(later).where(
            later.c.subject == c.subject, unindexed(later.c.authority_id).in_(own),
            later.c.issued_at > c.issued_at))
        found: list[Any] = []
        for authority in own:
            found.extend(self._conn.execute(
                select(c.authority_id, c.serial, c.subject, c.profile, c.not_after, c.id).where(
                    c.authority_id == authority, c.status == "good", c.not_after >= now,
                    c.not_after < until, c.profile.not_in(skipped_profiles), ~renewed
                ).order_by(c.not_after, c.id).limit(limit)))
        found.sort(key=lambda r: (r.not_after, r.id))
        return [self._reference(r) for r in found[:limit]]

    def leaves_after(self, authority: str, moment: datetime,
                     most: int) -> tuple[int, datetime | None]:
        """A count that stops at `most` and the last notAfter, both from the end of the
        authority's good range of `ix_certificates_fleet`."""
        outliving = (c.authority_id == self._ids.id_of(self._conn, authorities, authority),
                     c.status == "good", c.not_after > moment)
        count = self._conn.execute(select(func.count()).select_from(
            select(c.not_after).where(*outliving).limit(most).subquery())).scalar_one()
        last = self._conn.execute(select(c.not_after).where(*outliving).order_by(
            c.not_after.desc()).limit(1)).scalar()
        return int(count), last

    def foreign_domains(self, organization: str, now: datetime,
                        limit: int) -> list[ForeignDomain]:
        """From the other organizations' domains (few) to the certificates naming them,
        then their devices: not from every device of the owner."""
        owner = self._organization(organization)
        dm = domains.c
        # The other organizations' domains first (a handful, often none): then the planner
        # knows the values it looks up in `ix_certificates_domain`, and none means no query.
        foreign = self._conn.execute(select(dm.name).where(dm.organization_id != owner)
                                     ).scalars().all()
        if not foreign:
            return []
        stmt = (select(d.id, d.name, c.domain, dm.organization_id).distinct()
                .select_from(certificates.join(device_identities, i.fingerprint == c.fingerprint)
                             .join(devices, d.id == i.device_id)
                             .join(domains, dm.name == c.domain))
                .where(c.domain.in_(foreign), unindexed(d.owner_id) == owner,
                       unindexed(c.status) == "good", c.not_after > now)
                .order_by(d.name, d.id, c.domain).limit(limit))
        return [ForeignDomain(DeviceRef(device_id, name), domain,
                              self._ids.label_of(self._conn, organizations, domain_owner))
                for device_id, name, domain, domain_owner in self._conn.execute(stmt)]

    def _reference(self, row: object, key: str = "") -> CertificateRef:
        r = row._mapping  # type: ignore[attr-defined]
        return CertificateRef(self._ids.label_of(self._conn, authorities, r["authority_id"]),
                              r["serial"], r["subject"], r["profile"], r["not_after"], key)
