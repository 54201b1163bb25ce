"""Certificate repository: DER plus indexed issuer, serial, fingerprint, subject, SANs,
notAfter, status and revocation facts. Every insert and status change also tells the unit's
`TallyLedger` (store.certificate_tallies), which keeps the fleet overview's counters in step."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Connection, Row, Select, bindparam, func, select, update
from sqlalchemy.exc import IntegrityError

from iotpki.core.ca.certificate import CertificateRecord, CertificateStatus
from iotpki.core.ca.key_facts import KeyFacts
from iotpki.core.ca.ports import (
    CandidateCount,
    CertificateQuery,
    Protected,
    RevocationCandidate,
)
from iotpki.core.ca.serial import serial_hex
from iotpki.core.errors import ConflictError
from iotpki.store.certificate_tallies import TallyLedger, day_of
from iotpki.store.ids import IdCache
from iotpki.store.prepared import Prepared
from iotpki.store.schema import authorities, certificates, organizations
from iotpki.store.unindexed import unindexed

SAN_SEPARATOR = "\n"
_COLUMNS = ("authority_id", "serial", "fingerprint", "subject", "sans", "not_before",
            "not_after", "profile", "status", "revoked_at", "revocation_reason", "issued_at",
            "der", "crl_shard", "key_id", "key_algorithm", "key_bits", "domain")
# Prepared (store.prepared): every issuance inserts, every renewal and CMP request looks up.
_INSERT = Prepared(certificates.insert().inline(), _COLUMNS)
_SET_STATUS = Prepared(update(certificates).where(
    certificates.c.authority_id == bindparam("authority"),
    certificates.c.serial == bindparam("serial_hex"),
).values(status=bindparam("status"), revoked_at=bindparam("revoked"),
         revocation_reason=bindparam("reason")))
# The row a status change moves between counters, locked first (FOR UPDATE on PostgreSQL): a
# concurrent change of the same certificate waits, then reads the status it left.
_BEFORE_CHANGE = Prepared(select(certificates.c.status, certificates.c.profile,
                                 certificates.c.not_after).where(
    certificates.c.authority_id == bindparam("authority"),
    certificates.c.serial == bindparam("serial_hex")).with_for_update())
_BY_FINGERPRINT = Prepared(select(*(certificates.c[name] for name in _COLUMNS)).where(
    certificates.c.fingerprint == bindparam("fingerprint")).limit(1))
# Every renewal reads the lineage of the presented identity (`enrollment._check_lineage`).
_OF_SUBJECT = Prepared(select(*(certificates.c[name] for name in _COLUMNS)).where(
    certificates.c.authority_id == bindparam("authority"),
    certificates.c.subject == bindparam("subject")).order_by(certificates.c.id))


class SQLCertificateRepository:
    def __init__(self, conn: Connection, ids: IdCache,
                 tallies: TallyLedger | None = None) -> None:
        """`tallies`: the unit's ledger; without one (a reader's helper) nothing is written."""
        self._conn = conn
        self._ids = ids
        self._tallies = tallies

    @property
    def _ledger(self) -> TallyLedger:
        assert self._tallies is not None, "certificates are written through the unit of work"
        return self._tallies

    def add(self, record: CertificateRecord) -> None:
        authority_id = self._ids.id_of(self._conn, authorities, record.authority)
        try:
            # The caller's transaction is lost on a collision; issuance retries in a new one.
            _INSERT.execute(self._conn, _row(record, authority_id))
        except IntegrityError as exc:
            raise ConflictError(
                f"serial {record.serial_hex} or fingerprint already present for "
                f"{record.authority}") from exc
        self._count(record, authority_id)

    def add_many(self, records: list[CertificateRecord]) -> None:
        rows = [_row(r, self._ids.id_of(self._conn, authorities, r.authority)) for r in records]
        try:
            _INSERT.execute_many(self._conn, rows)
        except IntegrityError as exc:
            raise ConflictError("a serial or fingerprint in the batch is already present") from exc
        for record, row in zip(records, rows, strict=True):
            self._count(record, row["authority_id"])

    def _count(self, record: CertificateRecord, authority_id: int) -> None:
        self._ledger.issued(authority_id, record.profile, record.status.value,
                            record.not_after, record.issued_at)

    def get(self, authority: str, serial: int) -> CertificateRecord | None:
        authority_id = self._ids.id_of(self._conn, authorities, authority)
        row = self._conn.execute(select(certificates).where(
            certificates.c.authority_id == authority_id,
            certificates.c.serial == serial_hex(serial))).first()
        return self._record(row) if row is not None else None

    def get_by_fingerprint(self, fingerprint: str) -> CertificateRecord | None:
        row = _BY_FINGERPRINT.first(
            self._conn, {"fingerprint": fingerprint.lower().replace(":", "")})
        return self._record(dict(zip(_COLUMNS, row, strict=True))) if row is not None else None

    def find(self, query: CertificateQuery) -> list[CertificateRecord]:
        if _is_lineage(query):  # one authority and subject, all: prepared (every renewal)
            assert query.authority is not None and query.subject is not None
            rows = _OF_SUBJECT.all(self._conn, {
                "authority": self._ids.id_of(self._conn, authorities, query.authority),
                "subject": query.subject})
            return [self._record(dict(zip(_COLUMNS, row, strict=True))) for row in rows]
        stmt = self._filtered(select(certificates), query)
        order = certificates.c.id.desc() if query.newest_first else certificates.c.id
        if query.after is not None:
            stmt = stmt.where(certificates.c.id < query.after if query.newest_first
                              else certificates.c.id > query.after)
        stmt = stmt.order_by(order).limit(query.limit)
        if query.offset:
            stmt = stmt.offset(query.offset)
        return [self._record(r) for r in self._conn.execute(stmt)]

    def _filtered(self, stmt: Select[Any], query: CertificateQuery) -> Select[Any]:
        c = self._terms(query)
        if query.authority is not None:
            stmt = stmt.where(c.authority_id == self._ids.id_of(
                self._conn, authorities, query.authority))
        if query.status is not None:
            stmt = stmt.where(c.status == query.status.value)
        if query.subject_contains:
            stmt = stmt.where(certificates.c.subject.contains(query.subject_contains, autoescape=True))
        if query.subject is not None:
            stmt = stmt.where(certificates.c.subject == query.subject)
        if query.subject_prefix:
            stmt = stmt.where(*subject_starting_with(self._conn.dialect.name, query.subject_prefix))
        if query.expires_before is not None:
            stmt = stmt.where(c.not_after < query.expires_before)
        if query.profile is not None:
            stmt = stmt.where(c.profile == query.profile)
        if query.organization is not None:
            organization_id = self._ids.id_of(self._conn, organizations, query.organization)
            stmt = stmt.where(c.authority_id.in_(select(authorities.c.id).where(
                authorities.c.organization_id == organization_id)))
        return stmt

    def _terms(self, query: CertificateQuery) -> _Terms:
        """The columns a filter compares. SQLite keeps no statistics here: offered an
        equality on (authority, status) and a subject prefix's range, it reads every
        certificate of the authority. With a prefix, the unary + keeps the other terms off
        the indexes, so the subject's index range is read (sqlite.org/optoverview.html,
        "Disqualifying WHERE clause terms using unary-'+'"); PostgreSQL weighs them itself."""
        steer = bool(query.subject_prefix) and self._conn.dialect.name == "sqlite"
        return _Terms(*(unindexed(column) if steer else column for column in (
            certificates.c.authority_id, certificates.c.status, certificates.c.not_after,
            certificates.c.profile)))

    def revocation_candidates(self, query: CertificateQuery,
                              statuses: frozenset[CertificateStatus],
                              protected: Protected) -> list[RevocationCandidate]:
        c = certificates.c
        stmt = self._candidates(select(c.authority_id, c.serial, c.subject, c.status, c.profile,
                                       c.fingerprint), query, statuses)
        labels: dict[int, str] = {}
        found = []
        for authority_id, serial, subject, status, profile, fingerprint in self._conn.execute(
                stmt.where(*_unprotected(protected)).order_by(c.id)):
            label = labels.get(authority_id)
            if label is None:
                label = labels[authority_id] = self._ids.label_of(
                    self._conn, authorities, authority_id)
            found.append(RevocationCandidate(label, serial, subject, CertificateStatus(status),
                                             profile, fingerprint))
        return found

    def count_revocation_candidates(self, query: CertificateQuery,
                                    statuses: frozenset[CertificateStatus],
                                    protected: Protected) -> CandidateCount:
        """Three COUNTs, each over an index: all the filter matches, then its protected
        ones by profile (ix_certificates_profile) and by fingerprint (unique), the latter
        only outside those profiles so that none is counted twice."""
        c = certificates.c
        matching = self._candidates(select(func.count()).select_from(certificates), query,
                                    statuses)
        profiles, fingerprints = sorted(protected.profiles), sorted(protected.fingerprints)
        left_alone = 0
        if profiles:
            left_alone += self._conn.execute(matching.where(c.profile.in_(profiles))
                                             ).scalar_one()
        if fingerprints:
            by_fingerprint = matching.where(c.fingerprint.in_(fingerprints))
            if profiles:
                by_fingerprint = by_fingerprint.where(c.profile.not_in(profiles))
            left_alone += self._conn.execute(by_fingerprint).scalar_one()
        return CandidateCount(self._conn.execute(matching).scalar_one() - left_alone,
                              left_alone)

    def _candidates(self, stmt: Select[Any], query: CertificateQuery,
                    statuses: frozenset[CertificateStatus]) -> Select[Any]:
        return self._filtered(stmt, query).where(
            self._terms(query).status.in_(sorted(s.value for s in statuses)))

    def set_status(self, authority: str, serial: int, status: CertificateStatus,
                   revoked_at: Any, reason: str | None) -> None:
        authority_id = self._ids.id_of(self._conn, authorities, authority)
        key = {"authority": authority_id, "serial_hex": serial_hex(serial)}
        before = _BEFORE_CHANGE.first(self._conn, key)
        _SET_STATUS.execute(self._conn, {**key, "status": status.value, "revoked": revoked_at,
                                         "reason": reason})
        if before is not None:
            old, profile, not_after = before
            self._ledger.moved(authority_id, profile, day_of(not_after), old, status.value)

    def record(self, row: Row) -> CertificateRecord:  # type: ignore[type-arg]
        """The record of a `certificates` row another repository selected."""
        return self._record(row)

    def _record(self, row: Row | Mapping[str, Any]) -> CertificateRecord:  # type: ignore[type-arg]
        r = row if isinstance(row, Mapping) else row._mapping
        return CertificateRecord(
            authority=self._ids.label_of(self._conn, authorities, r["authority_id"]),
            serial=int(r["serial"], 16), fingerprint=r["fingerprint"], subject=r["subject"],
            sans=tuple(r["sans"].split(SAN_SEPARATOR)) if r["sans"] else (),
            not_before=r["not_before"], not_after=r["not_after"], profile=r["profile"],
            der=bytes(r["der"]), issued_at=r["issued_at"], status=CertificateStatus(r["status"]),
            revoked_at=r["revoked_at"], revocation_reason=r["revocation_reason"],
            crl_shard=r["crl_shard"], position=r.get("id"),
            key=KeyFacts(r["key_id"], r["key_algorithm"], r["key_bits"])
            if r["key_id"] is not None else None,
        )


class _Terms(NamedTuple):
    authority_id: ColumnElement[Any]
    status: ColumnElement[Any]
    not_after: ColumnElement[Any]
    profile: ColumnElement[Any]


def subject_starting_with(dialect: str, prefix: str) -> list[ColumnElement[bool]]:
    """Subjects beginning with `prefix`, case-sensitive, as an index range (the bulk
    revocation filter, the console's device search). PostgreSQL's
    ix_certificates_subject is in varchar_pattern_ops, which serves a LIKE prefix whatever
    the database's collation; SQLite's LIKE ignores case and cannot use the index, but its
    BINARY order keeps the subjects beginning with `prefix` in one range."""
    subject = certificates.c.subject
    if dialect == "postgresql":
        return [subject.startswith(prefix, autoescape=True)]
    past = _past(prefix)
    bounds: list[ColumnElement[bool]] = [subject >= prefix]
    return bounds + ([subject < past] if past is not None else [])


def _past(prefix: str) -> str | None:
    """The least string above every string beginning with `prefix`, in code point order
    (UTF-8 byte order); None: no string is (`prefix` is all U+10FFFF)."""
    stem = prefix.rstrip("\U0010ffff")
    if not stem:
        return None
    following = ord(stem[-1]) + 1
    if 0xD800 <= following <= 0xDFFF:  # surrogates are not characters: past them
        following = 0xE000
    return stem[:-1] + chr(following)


def _unprotected(protected: Protected) -> list[ColumnElement[bool]]:
    c = certificates.c
    clauses: list[ColumnElement[bool]] = []
    if protected.profiles:
        clauses.append(c.profile.not_in(sorted(protected.profiles)))
    if protected.fingerprints:
        clauses.append(c.fingerprint.not_in(sorted(protected.fingerprints)))
    return clauses


def _is_lineage(query: CertificateQuery) -> bool:
    return (query.authority is not None and query.subject is not None
            and query == CertificateQuery(authority=query.authority, subject=query.subject,
                                          limit=None))


def _row(record: CertificateRecord, authority_id: int) -> dict[str, Any]:
    key = record.key_facts
    return {
        "authority_id": authority_id, "serial": record.serial_hex,
        "fingerprint": record.fingerprint, "subject": record.subject,
        "sans": SAN_SEPARATOR.join(record.sans), "not_before": record.not_before,
        "not_after": record.not_after, "profile": record.profile, "status": record.status.value,
        "revoked_at": record.revoked_at, "revocation_reason": record.revocation_reason,
        "issued_at": record.issued_at, "der": record.der, "crl_shard": record.crl_shard,
        "key_id": key.key_id, "key_algorithm": key.algorithm, "key_bits": key.bits,
        "domain": record.domain,
    }
