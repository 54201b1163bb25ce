"""ACME server state (`core.ra.acme`): one JSON document per object beside its lookup columns."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from iotpki.core.ra.acme import (
    VALID,
    ACMEAccount,
    ACMEAuthorization,
    ACMEChallenge,
    ACMEOrder,
    EABKey,
)
from iotpki.store.prepared import Prepared
from iotpki.store.schema import (
    acme_accounts,
    acme_authorizations,
    acme_eab_keys,
    acme_nonces,
    acme_orders,
)


def _dump(value: dict[str, Any]) -> str:
    return json.dumps(value, default=lambda v: v.isoformat() if isinstance(v, datetime) else v,
                      separators=(",", ":"))


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _account(data: str) -> ACMEAccount:
    d = json.loads(data)
    return ACMEAccount(d["id"], d["label"], d["thumbprint"], d["jwk"], d["status"],
                       tuple(d["contact"]), d["organization"], d["eab_key_id"],
                       datetime.fromisoformat(d["created_at"]))


def _order(data: str) -> ACMEOrder:
    d = json.loads(data)
    return ACMEOrder(d["id"], d["account_id"], d["label"], d["status"],
                     tuple((t, v) for t, v in d["identifiers"]), tuple(d["authorizations"]),
                     datetime.fromisoformat(d["expires"]),
                     datetime.fromisoformat(d["created_at"]), d["certificate"], d["error"],
                     d["replaces"])


def _authorization(data: str) -> ACMEAuthorization:
    d = json.loads(data)
    challenges = tuple(ACMEChallenge(c["type"], c["token"], c["status"],
                                     _time(c["validated"]), c["error"],
                                     tuple(c.get("evidence", ())), c.get("method"))
                       for c in d["challenges"])
    return ACMEAuthorization(d["id"], d["account_id"], d["label"], d["identifier_type"],
                             d["identifier_value"], d["status"],
                             datetime.fromisoformat(d["expires"]), challenges,
                             datetime.fromisoformat(d["created_at"]))



# Writes (store.prepared: the one write path).
_ADD_NONCE = Prepared(insert(acme_nonces).inline(), ("nonce", "issued_at"))
_USE_NONCE = Prepared(delete(acme_nonces).where(
    acme_nonces.c.nonce == bindparam("nonce"), acme_nonces.c.issued_at > bindparam("after")))
_PRUNE_NONCES = Prepared(delete(acme_nonces).where(acme_nonces.c.issued_at <= bindparam("before")))
_ADD_ACCOUNT = Prepared(insert(acme_accounts).inline(), ("id", "thumbprint", "organization",
                                                         "status", "data", "created_at"))
_UPDATE_ACCOUNT = Prepared(update(acme_accounts).where(acme_accounts.c.id == bindparam("account"))
                           .values(thumbprint=bindparam("thumbprint"),
                                   status=bindparam("status"), data=bindparam("data")))
_ADD_AUTHORIZATION = Prepared(insert(acme_authorizations).inline(),
                              ("id", "account_id", "identifier", "status", "expires", "data"))
_ADD_ORDER = Prepared(insert(acme_orders).inline(), ("id", "account_id", "organization",
                                                     "status", "data", "created_at"))
_UPDATE_ORDER = Prepared(update(acme_orders).where(
    acme_orders.c.id == bindparam("order"), acme_orders.c.status == bindparam("expected"))
    .values(status=bindparam("status"), certificate=bindparam("certificate"),
            data=bindparam("data")))
_UPDATE_AUTHORIZATION = Prepared(update(acme_authorizations).where(
    acme_authorizations.c.id == bindparam("authz"),
    acme_authorizations.c.status == bindparam("expected"))
    .values(status=bindparam("status"), expires=bindparam("expires"), data=bindparam("data")))
_ADD_EAB_KEY = Prepared(insert(acme_eab_keys).inline(), ("key_id", "organization", "label",
                                                         "sealed_key", "account_id",
                                                         "created_at"))
_BIND_EAB_KEY = Prepared(update(acme_eab_keys).where(
    acme_eab_keys.c.key_id == bindparam("key"), acme_eab_keys.c.account_id.is_(None))
    .values(account_id=bindparam("account")))

class SQLACMERepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    # -- nonces (RFC 8555 §6.5) -----------------------------------------------------------------

    def add_nonce(self, nonce: str, at: datetime) -> None:
        _ADD_NONCE.execute(self._conn, {"nonce": nonce, "issued_at": at})

    def use_nonce(self, nonce: str, issued_after: datetime) -> bool:
        return _USE_NONCE.execute(self._conn, {"nonce": nonce, "after": issued_after}) == 1

    def prune_nonces(self, before: datetime) -> None:
        _PRUNE_NONCES.execute(self._conn, {"before": before})

    # -- accounts -------------------------------------------------------------------------------

    def add_account(self, account: ACMEAccount) -> bool:
        try:
            with self._conn.begin_nested():
                _ADD_ACCOUNT.execute(self._conn, {
                    "id": account.id, "thumbprint": account.thumbprint,
                    "organization": account.organization, "status": account.status,
                    "data": _dump(asdict(account)), "created_at": account.created_at})
        except IntegrityError:
            return False
        return True

    def account(self, account_id: str) -> ACMEAccount | None:
        data = self._conn.execute(select(acme_accounts.c.data).where(
            acme_accounts.c.id == account_id)).scalar()
        return None if data is None else _account(data)

    def account_by_thumbprint(self, thumbprint: str) -> ACMEAccount | None:
        data = self._conn.execute(select(acme_accounts.c.data).where(
            acme_accounts.c.thumbprint == thumbprint)).scalar()
        return None if data is None else _account(data)

    def update_account(self, account: ACMEAccount) -> bool:
        try:
            with self._conn.begin_nested():
                _UPDATE_ACCOUNT.execute(self._conn, {
                    "account": account.id, "thumbprint": account.thumbprint,
                    "status": account.status, "data": _dump(asdict(account))})
        except IntegrityError:
            return False
        return True

    # -- orders and authorizations ------------------------------------------------------------

    def add_order(self, order: ACMEOrder, authorizations: list[ACMEAuthorization]) -> None:
        organization = self._conn.execute(select(acme_accounts.c.organization).where(
            acme_accounts.c.id == order.account_id)).scalar()
        _ADD_AUTHORIZATION.execute_many(self._conn, [{
            "id": authz.id, "account_id": authz.account_id,
            "identifier": f"{authz.identifier_type}:{authz.identifier_value}",
            "status": authz.status, "expires": authz.expires, "data": _dump(asdict(authz)),
        } for authz in authorizations])
        _ADD_ORDER.execute(self._conn, {
            "id": order.id, "account_id": order.account_id, "organization": organization,
            "status": order.status, "data": _dump(asdict(order)), "created_at": order.created_at})

    def order(self, order_id: str) -> ACMEOrder | None:
        data = self._conn.execute(select(acme_orders.c.data).where(
            acme_orders.c.id == order_id)).scalar()
        return None if data is None else _order(data)

    def update_order(self, order: ACMEOrder, expected_status: str) -> bool:
        return _UPDATE_ORDER.execute(self._conn, {
            "order": order.id, "expected": expected_status, "status": order.status,
            "certificate": order.certificate, "data": _dump(asdict(order))}) == 1

    def order_for_certificate(self, fingerprint: str) -> ACMEOrder | None:
        data = self._conn.execute(select(acme_orders.c.data).where(
            acme_orders.c.certificate == fingerprint).limit(1)).scalar()
        return None if data is None else _order(data)

    def orders_of(self, account_id: str, limit: int) -> list[ACMEOrder]:
        rows = self._conn.execute(select(acme_orders.c.data).where(
            acme_orders.c.account_id == account_id).order_by(
            acme_orders.c.created_at.desc()).limit(limit)).scalars()
        return [_order(data) for data in rows]

    def count_orders(self, account_id: str | None, organization: str | None,
                     since: datetime) -> int:
        query = select(func.count()).select_from(acme_orders).where(
            acme_orders.c.created_at >= since)
        if account_id is not None:
            query = query.where(acme_orders.c.account_id == account_id)
        if organization is not None:
            query = query.where(acme_orders.c.organization == organization)
        return int(self._conn.execute(query).scalar() or 0)

    def authorization(self, authz_id: str) -> ACMEAuthorization | None:
        data = self._conn.execute(select(acme_authorizations.c.data).where(
            acme_authorizations.c.id == authz_id)).scalar()
        return None if data is None else _authorization(data)

    def update_authorization(self, authz: ACMEAuthorization, expected_status: str) -> bool:
        return _UPDATE_AUTHORIZATION.execute(self._conn, {
            "authz": authz.id, "expected": expected_status, "status": authz.status,
            "expires": authz.expires, "data": _dump(asdict(authz))}) == 1

    def valid_authorization(self, account_id: str, identifier_type: str,
                            identifier_value: str, at: datetime) -> ACMEAuthorization | None:
        data = self._conn.execute(select(acme_authorizations.c.data).where(
            acme_authorizations.c.account_id == account_id,
            acme_authorizations.c.identifier == f"{identifier_type}:{identifier_value}",
            acme_authorizations.c.status == VALID,
            acme_authorizations.c.expires > at).order_by(
            acme_authorizations.c.expires.desc()).limit(1)).scalar()
        return None if data is None else _authorization(data)

    # -- External Account Binding keys ---------------------------------------------------------

    def add_eab_key(self, key: EABKey) -> None:
        _ADD_EAB_KEY.execute(self._conn, {
            "key_id": key.key_id, "organization": key.organization, "label": key.label,
            "sealed_key": key.sealed_key, "account_id": key.account_id,
            "created_at": key.created_at})

    def eab_key(self, key_id: str) -> EABKey | None:
        row = self._conn.execute(select(acme_eab_keys).where(
            acme_eab_keys.c.key_id == key_id)).first()
        if row is None:
            return None
        return EABKey(row.key_id, row.organization, bytes(row.sealed_key), row.created_at,
                      row.label, row.account_id)

    def bind_eab_key(self, key_id: str, account_id: str) -> bool:
        return _BIND_EAB_KEY.execute(self._conn, {"key": key_id, "account": account_id}) == 1
