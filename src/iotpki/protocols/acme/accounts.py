"""ACME accounts (RFC 8555 §7.3): creation with optional or required External Account
Binding (§7.3.4), lookup (§7.3.1), update (§7.3.2), orders list (§7.1.2.1), key rollover
(§7.3.5) and deactivation (§7.3.6).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

from iotpki.core.clock import Clock
from iotpki.core.errors import ConfigurationError
from iotpki.core.errors import RefusalReason as R
from iotpki.core.ra.acme import DEACTIVATED, VALID, ACMEAccount
from iotpki.core.ra.acme_keys import EABKeys
from iotpki.protocols.acme.problems import ACMEProblem, NotFound
from iotpki.protocols.acme.resources import account_json
from iotpki.protocols.acme.server import ACMEAnswer, ACMEServer, Signed
from iotpki.wire.acme.jws import (
    JWSError,
    PublicKey,
    decode_jws,
    decode_mac_jws,
    jwk_of,
    public_key_from_jwk,
    thumbprint,
    verify_jws,
    verify_mac_jws,
)
from iotpki.wire.acme.messages import decode_new_account

ORDERS_LISTED = 1000
T = TypeVar("T")


class ACMEAccounts:
    def __init__(self, server: ACMEServer, eab: EABKeys, clock: Clock) -> None:
        self._server = server
        self._state = server.state
        self._eab = eab
        self._clock = clock
        server.on_post("new-account", self.new_account)
        server.on_post("acct", self.account)
        server.on_post("key-change", self.key_change)

    # -- §7.3 newAccount ---------------------------------------------------------------------

    def new_account(self, signed: Signed, rest: tuple[str, ...]) -> ACMEAnswer:
        if rest:
            raise NotFound("no such resource")
        request = _decoded(lambda: decode_new_account(signed.jws.json_payload()))
        existing = signed.account
        if existing is not None:  # §7.3.1: the key has an account already
            return self._answer(signed, existing, 200)
        if request.only_return_existing:
            raise ACMEProblem("accountDoesNotExist", "no account has this key (RFC 8555 §7.3.1)")
        eab = request.external_account_binding
        if eab is None and signed.endpoint.eab == "required":
            raise ACMEProblem("externalAccountRequired",
                              "this endpoint requires External Account Binding (RFC 8555 §7.3.4)")
        account_id = uuid.uuid4().hex
        key_id, organization = (None, None) if eab is None else self._binding(signed, eab)
        account = ACMEAccount(account_id, signed.endpoint.label, thumbprint(signed.key),
                              jwk_of(signed.key), VALID, request.contact, organization, key_id,
                              self._clock.now())
        creation = self._state.create_account(account)
        if creation.refusal == "eab-used":
            raise ACMEProblem("unauthorized", "the EAB key was used already",
                              R.REGISTRATION_CONSUMED)
        if not creation.created:  # a concurrent request with the same key
            raise ACMEProblem("malformed", "an account with this key was just created")
        self._server.audit("acme.account.create", "success", f"acme:{account_id}",
                           signed.endpoint.label or "-",
                           {"organization": organization, "eab_key": key_id})
        return self._answer(signed, account, 201)

    def _binding(self, signed: Signed, value: object) -> tuple[str, str]:
        """§7.3.4: the inner JWS is a MAC over the account key with a key we issued; its url is
        the newAccount URL. Returns the key id and its organization."""
        try:
            inner = decode_mac_jws(value)
        except JWSError as exc:
            raise ACMEProblem(exc.problem, exc.detail) from exc
        if inner.header["url"] != signed.url:
            raise ACMEProblem("unauthorized", "the EAB url is not the newAccount URL")
        try:
            bound = public_key_from_jwk(json.loads(inner.payload))
        except (ValueError, TypeError, AttributeError, JWSError) as exc:
            raise ACMEProblem("malformed", "the EAB payload is not a JWK") from exc
        if thumbprint(bound) != thumbprint(signed.key):
            raise ACMEProblem("unauthorized", "the EAB payload is not the account key")
        key = self._state.eab_key(inner.kid)
        if key is None or (key.label is not None and key.label != signed.endpoint.label):
            raise ACMEProblem("unauthorized", f"unknown EAB key {inner.kid!r}", R.BAD_SECRET)
        if key.account_id is not None:
            raise ACMEProblem("unauthorized", "the EAB key was used already",
                              R.REGISTRATION_CONSUMED)
        try:
            verify_mac_jws(inner, self._eab.unseal(key))
        except JWSError as exc:
            raise ACMEProblem("unauthorized", exc.detail, R.BAD_SECRET) from exc
        except ConfigurationError as exc:
            raise ACMEProblem("serverInternal", "EAB keys cannot be read now",
                              R.UNKNOWN_AUTHORITY) from exc
        return key.key_id, key.organization

    def _answer(self, signed: Signed, account: ACMEAccount, status: int) -> ACMEAnswer:
        return ACMEAnswer(status, account_json(signed.links, account),
                          headers={"Location": signed.links.account(account.id)})

    # -- §7.3.2 update, §7.3.6 deactivation, §7.1.2.1 orders ----------------------------------

    def account(self, signed: Signed, rest: tuple[str, ...]) -> ACMEAnswer:
        account = signed.owned()
        if not rest or rest[0] != account.id or len(rest) > 2:
            raise ACMEProblem("unauthorized", "that is not the signing account")
        if len(rest) == 2:
            if rest[1] != "orders":
                raise NotFound("no such resource")
            return self._orders(signed, account)
        if signed.post_as_get:
            return self._answer(signed, account, 200)
        payload = signed.jws.json_payload()
        if payload.get("status") == DEACTIVATED:
            return self._deactivate(signed, account)
        if "status" in payload and payload["status"] != account.status:
            raise ACMEProblem("malformed", "only status deactivated may be requested")
        if "contact" in payload:
            request = _decoded(lambda: decode_new_account({"contact": payload["contact"]}))
            account = replace(account, contact=request.contact)
            self._state.update_account(account)
        return self._answer(signed, account, 200)

    def _deactivate(self, signed: Signed, account: ACMEAccount) -> ACMEAnswer:
        account = replace(account, status=DEACTIVATED)
        self._state.update_account(account)
        self._server.audit("acme.account.deactivate", "success", signed.actor,
                           signed.endpoint.label or "-", {"account": account.id})
        return self._answer(signed, account, 200)

    def _orders(self, signed: Signed, account: ACMEAccount) -> ACMEAnswer:
        orders = self._state.orders_of(account.id, ORDERS_LISTED)
        return ACMEAnswer(200, {"orders": [signed.links.order(o.id) for o in orders]})

    # -- §7.3.5 key rollover -------------------------------------------------------------------

    def key_change(self, signed: Signed, rest: tuple[str, ...]) -> ACMEAnswer:
        account = signed.owned()
        if rest:
            raise NotFound("no such resource")
        try:
            inner = decode_jws(signed.jws.payload)
            new_key = public_key_from_jwk(inner.jwk or {})
            verify_jws(inner, new_key)
        except JWSError as exc:
            raise ACMEProblem(exc.problem, f"inner JWS: {exc.detail}") from exc
        if inner.jwk is None or inner.nonce is not None or inner.url != signed.url:
            raise ACMEProblem("malformed", "the inner JWS needs jwk and the outer url, and no "
                                           "nonce (RFC 8555 §7.3.5)")
        payload = inner.json_payload()
        _check_rollover(payload, signed, account)
        updated = replace(account, thumbprint=thumbprint(new_key), jwk=jwk_of(new_key))
        if not self._state.update_account(updated):
            raise ACMEProblem("malformed", "the new key belongs to an account already",
                              status=409)
        self._server.audit("acme.account.key_change", "success", signed.actor,
                           signed.endpoint.label or "-",
                           {"account": account.id, "thumbprint": updated.thumbprint})
        return self._answer(signed, updated, 200)


def _check_rollover(payload: dict[str, object], signed: Signed, account: ACMEAccount) -> None:
    if payload.get("account") != signed.links.account(account.id):
        raise ACMEProblem("malformed", "the inner payload's account is not the signer")
    try:
        old: PublicKey = public_key_from_jwk(payload.get("oldKey"))  # type: ignore[arg-type]
    except (JWSError, AttributeError) as exc:
        raise ACMEProblem("malformed", "oldKey is not a JWK") from exc
    if thumbprint(old) != account.thumbprint:
        raise ACMEProblem("malformed", "oldKey is not the account's current key")


def _decoded(decode: Callable[[], T]) -> T:
    try:
        return decode()
    except JWSError as exc:
        raise ACMEProblem(exc.problem, exc.detail) from exc
