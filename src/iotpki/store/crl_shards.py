"""CRL shards of sharded authorities (RFC 5280 §5.2.5): registration at issuance, the live
ones, and their build leases (compare-and-set, as webhook deliveries are claimed)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, bindparam, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.expression import Executable

from iotpki.core.revocation.ports import CRLShard
from iotpki.store.ids import IdCache
from iotpki.store.prepared import Prepared
from iotpki.store.schema import authorities, crl_shards

_S = crl_shards.c


def _register(dialect: str) -> Executable:
    # ON CONFLICT DO NOTHING: two nodes issuing the shard's first certificates at once.
    insert_ = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert_(crl_shards).values(
        authority_id=bindparam("authority"), shard=bindparam("shard"),
        expires_at=bindparam("expires_at", type_=_S.expires_at.type),
        last_number=0).on_conflict_do_nothing()


_REGISTER = Prepared(_register)
_SCOPE = (_S.authority_id == bindparam("authority"), _S.shard == bindparam("shard"))
_CLAIM = Prepared(update(crl_shards).where(
    *_SCOPE, or_(_S.lease_until.is_(None),
                 _S.lease_until <= bindparam("now", type_=_S.lease_until.type)),
).values(lease_holder=bindparam("holder"), lease_until=bindparam("until")))
_RELEASE = Prepared(update(crl_shards).where(
    *_SCOPE, _S.lease_holder == bindparam("holder")).values(lease_until=None))


class SQLCRLShardRepository:
    def __init__(self, conn: Connection, ids: IdCache) -> None:
        self._conn = conn
        self._ids = ids

    def _id(self, authority: str) -> int:
        return self._ids.id_of(self._conn, authorities, authority)

    def register(self, authority: str, shard: int, expires_at: datetime) -> None:
        _REGISTER.execute(self._conn, {"authority": self._id(authority), "shard": shard,
                                       "expires_at": expires_at})

    def live(self, now: datetime) -> list[CRLShard]:
        rows = self._conn.execute(select(_S.authority_id, _S.shard, _S.expires_at).where(
            _S.expires_at > now).order_by(_S.authority_id, _S.shard)).all()
        return [CRLShard(self._ids.label_of(self._conn, authorities, a), int(s), at)
                for a, s, at in rows]

    def has_live(self, authority: str, now: datetime) -> bool:
        return self._conn.execute(select(_S.shard).where(
            _S.authority_id == self._id(authority), _S.expires_at > now).limit(1)).first() \
            is not None

    def claim(self, authority: str, shard: int, holder: str, now: datetime,
              until: datetime) -> bool:
        return _CLAIM.execute(self._conn, {"authority": self._id(authority), "shard": shard,
                                           "now": now, "holder": holder, "until": until}) == 1

    def release(self, authority: str, shard: int, holder: str) -> None:
        _RELEASE.execute(self._conn, {"authority": self._id(authority), "shard": shard,
                                      "holder": holder})
