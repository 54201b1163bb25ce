"""Authority repository: CA certificates (DER), their chains (PEM) and key references."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import Connection, Row, Select, bindparam, select, update
from sqlalchemy.exc import IntegrityError

from iotpki.core.ca.authority import Authority, AuthorityKind
from iotpki.core.errors import ConflictError
from iotpki.store.ids import IdCache
from iotpki.store.prepared import Prepared
from iotpki.store.schema import authorities, organizations
from iotpki.wire.chain import decode_certificates, encode_pem_chain

# Writes (store.prepared: the one write path).
_ADD = Prepared(authorities.insert().inline(), (
    "label", "organization_id", "kind", "certificate", "chain_pem", "key_ref", "parent",
    "created_at"))
_SET_CRL_SHARDS = Prepared(update(authorities).where(authorities.c.label == bindparam("label"))
                           .values(crl_shard_seconds=bindparam("seconds")))


class SQLAuthorityRepository:
    def __init__(self, conn: Connection, ids: IdCache) -> None:
        self._conn = conn
        self._ids = ids

    def add(self, authority: Authority) -> None:
        org_id = self._ids.id_of(self._conn, organizations, authority.organization)
        try:
            _ADD.execute(self._conn, dict(
                label=authority.label, organization_id=org_id, kind=authority.kind.value,
                certificate=authority.certificate.public_bytes(Encoding.DER),
                chain_pem=encode_pem_chain(authority.chain).decode(),
                key_ref=authority.key_ref, parent=authority.parent,
                created_at=authority.created_at,
            ))
            if authority.crl_shard_window is not None:
                self.set_crl_shard_window(authority.label, authority.crl_shard_window)
        except IntegrityError as exc:
            raise ConflictError(f"authority {authority.label!r} already exists") from exc

    def set_crl_shard_window(self, label: str, window: timedelta | None) -> None:
        seconds = int(window.total_seconds()) if window is not None else None
        _SET_CRL_SHARDS.execute(self._conn, {"label": label, "seconds": seconds})

    def get(self, label: str) -> Authority | None:
        row = self._conn.execute(self._select().where(authorities.c.label == label)).first()
        return _authority(row) if row is not None else None

    def list(self) -> list[Authority]:
        return [_authority(r) for r in self._conn.execute(
            self._select().order_by(authorities.c.id))]

    @staticmethod
    def _select() -> Select[Any]:
        return select(authorities, organizations.c.label.label("organization")).join(
            organizations, organizations.c.id == authorities.c.organization_id)


def _authority(row: Row) -> Authority:  # type: ignore[type-arg]
    chain = decode_certificates(row.chain_pem.encode()) if row.chain_pem else []
    return Authority(
        label=row.label, organization=row.organization, kind=AuthorityKind(row.kind),
        certificate=x509.load_der_x509_certificate(row.certificate), key_ref=row.key_ref,
        chain=tuple(chain), created_at=row.created_at, parent=row.parent,
        crl_shard_window=(timedelta(seconds=row.crl_shard_seconds)
                          if row.crl_shard_seconds is not None else None),
    )
