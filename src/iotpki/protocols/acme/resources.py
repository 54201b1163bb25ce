"""URLs and JSON of ACME resources (RFC 8555 §7.1): directory, account, order,
authorization, challenge. One `Links` per request: every URL starts at the endpoint's base
(`https://<host>/acme[/<label>]`), so a client always follows URLs of the endpoint it used.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from iotpki.core.ra.acme import ACMEAccount, ACMEAuthorization, ACMEChallenge, ACMEOrder
from iotpki.core.ra.endpoints import ACME_RESERVED, Endpoint

# Path segments after the base; an endpoint label must not be one of them.
RESOURCES = ACME_RESERVED


def timestamp(at: datetime) -> str:
    """RFC 3339 in UTC, as §7.1 wants for `expires` and `validated`."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Links:
    base: str  # no trailing slash

    def url(self, *segments: str) -> str:
        return "/".join((self.base, *segments))

    @property
    def directory(self) -> str:
        return self.url("directory")

    def account(self, account_id: str) -> str:
        return self.url("acct", account_id)

    def order(self, order_id: str) -> str:
        return self.url("order", order_id)

    def authz(self, authz_id: str) -> str:
        return self.url("authz", authz_id)

    def challenge(self, authz_id: str, kind: str) -> str:
        return self.url("chall", authz_id, kind)

    def certificate(self, order_id: str) -> str:
        return self.url("cert", order_id)


def directory(links: Links, endpoint: Endpoint) -> dict[str, Any]:
    """RFC 8555 §7.1.1, plus `renewalInfo` (RFC 9773 §3)."""
    return {
        "newNonce": links.url("new-nonce"), "newAccount": links.url("new-account"),
        "newOrder": links.url("new-order"), "revokeCert": links.url("revoke-cert"),
        "keyChange": links.url("key-change"), "renewalInfo": links.url("renewal-info"),
        "meta": {"externalAccountRequired": endpoint.eab == "required",
                 "profiles": {endpoint.profile: f"certificates of the {endpoint.profile} "
                                                f"profile from {endpoint.authority}"}},
    }


def account_json(links: Links, account: ACMEAccount) -> dict[str, Any]:
    """§7.1.2."""
    body: dict[str, Any] = {"status": account.status, "contact": list(account.contact),
                            "orders": links.url("acct", account.id, "orders")}
    if account.eab_key_id is not None:
        body["externalAccountBinding"] = {"kid": account.eab_key_id}
    return body


def order_json(links: Links, order: ACMEOrder) -> dict[str, Any]:
    """§7.1.3."""
    body: dict[str, Any] = {
        "status": order.status, "expires": timestamp(order.expires),
        "identifiers": [{"type": t, "value": v} for t, v in order.identifiers],
        "authorizations": [links.authz(a) for a in order.authorizations],
        "finalize": links.url("order", order.id, "finalize")}
    if order.certificate is not None:
        body["certificate"] = links.certificate(order.id)
    if order.error is not None:
        body["error"] = order.error
    if order.replaces is not None:
        body["replaces"] = order.replaces
    return body


def challenge_json(links: Links, authz: ACMEAuthorization,
                   challenge: ACMEChallenge) -> dict[str, Any]:
    """§7.1.5, §8."""
    body: dict[str, Any] = {"type": challenge.type, "url": links.challenge(authz.id,
                                                                           challenge.type),
                            "status": challenge.status, "token": challenge.token}
    if challenge.validated is not None:
        body["validated"] = timestamp(challenge.validated)
    if challenge.error is not None:
        body["error"] = challenge.error
    return body


def authorization_json(links: Links, authz: ACMEAuthorization) -> dict[str, Any]:
    """§7.1.4."""
    return {"identifier": {"type": authz.identifier_type, "value": authz.identifier_value},
            "status": authz.status, "expires": timestamp(authz.expires),
            "challenges": [challenge_json(links, authz, c) for c in authz.challenges]}
