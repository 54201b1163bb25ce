"""What the RA needs stored: registrations, requests waiting on an operator, CMP transactions,
ACME state."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from cryptography import x509

from iotpki.core.ra.acme import ACMEAccount, ACMEAuthorization, ACMEOrder, EABKey
from iotpki.core.ra.pending import PendingRequest
from iotpki.core.ra.registration import Registration
from iotpki.core.ra.transactions import CMPTransaction, TransactionState


@dataclass(frozen=True)
class IdentityKey:
    """The two keys a presented certificate is looked up under (see `registration.identity_key`)."""

    fingerprint: str
    issuer_serial: str


@dataclass(frozen=True)
class BulkIdentities:
    """Manifest entries as registrations, column by column: id, lookup key and the identity's
    facts. A manifest may carry a million, so there is no object per entry; the columns are
    zipped into rows as the store writes them."""

    ids: Sequence[str]
    keys: Sequence[str]
    fingerprints: Sequence[str]
    issuers: Sequence[str]
    serials: Sequence[str]
    component_ids: Sequence[str]
    attributes_json: Sequence[str]

    def rows(self) -> list[tuple[str, str, str, str, str, str, str]]:
        """One tuple per identity, its values in the order of the fields above."""
        return list(zip(self.ids, self.keys, self.fingerprints, self.issuers, self.serials,
                        self.component_ids, self.attributes_json, strict=True))


class RegistrationRepository(Protocol):
    def add_many(self, registrations: list[Registration]) -> None: ...

    def add_bulk(self, template: Registration, identities: BulkIdentities) -> None:
        """Many previous-stage registrations that share everything but their identity."""
        ...

    def get(self, registration_id: str) -> Registration | None: ...

    def for_identity(self, identity: IdentityKey) -> list[Registration]:
        """Every registration naming this identity, newest first."""
        ...

    def by_reference(self, reference: str) -> Registration | None:
        """The registration named by this reference: the open one, else the newest."""
        ...

    def consume(self, registration_id: str, at: datetime, certificate: str) -> bool:
        """Count one use if still open (consumed once `uses_allowed` is reached); False if
        other requests used it up first."""
        ...

    def cancel(self, registration_id: str) -> bool: ...

    def note_failed_secret(self, registration_id: str, at: datetime, lock_after: int) -> bool:
        """Count a wrong secret; True when it locked the registration."""
        ...

    def unlock(self, registration_id: str) -> bool: ...

    def find(self, organization: str | None, status: str | None, limit: int,
             offset: int, after: tuple[datetime, str] | None = None) -> list[Registration]:
        """Oldest first; `after`: keyset pagination, only those after (created_at, id)."""
        ...


class PendingRequestRepository(Protocol):
    """Requests waiting on an operator (manual approval)."""

    def add(self, pending: PendingRequest) -> bool:
        """False (nothing written) if a pending request with the same `request_key` exists."""
        ...

    def get(self, request_id: str) -> PendingRequest | None: ...

    def decide(self, request_id: str, status: str, at: datetime, by: str,
               certificate: str | None, reason: str | None) -> bool:
        """Record the decision if still pending; False if decided already."""
        ...

    def find(self, status: str | None, limit: int, offset: int,
             authorities: Sequence[str] | None = None) -> list[PendingRequest]:
        """Oldest first; `authorities`: only requests to these (an organization's queue)."""
        ...

    def count_pending(self, authority: str, profile: str) -> int: ...

    def for_request(self, authority: str, profile: str, request_key: str) -> PendingRequest | None:
        """The newest request for this subject and public key (`pending.request_key`) of one
        authority and profile: a client repeating it (RFC 7030 §4.2.3)."""
        ...

    def note_challenge(self, authority: str, profile: str, request_key: str, at: datetime,
                       forget_before: datetime) -> None:
        """Remember that a request without credentials was challenged (RFC 7030 §3.2.3);
        challenges made before `forget_before` are dropped."""
        ...

    def challenged(self, authority: str, profile: str, request_key: str,
                   since: datetime) -> bool:
        """Whether such a request was challenged at or after `since`."""
        ...


class CMPRepository(Protocol):
    """CMP transactions and seen nonces (`core.ra.transactions`)."""

    def note_nonce(self, nonce: bytes, at: datetime) -> bool:
        """Record a client's senderNonce; False if it was seen before (a replay)."""
        ...

    def nonce_seen(self, nonce: bytes) -> bool:
        """Whether a senderNonce was recorded (a read: no write lock)."""
        ...

    def add_transaction(self, transaction: CMPTransaction) -> bool:
        """False if a transaction with this id exists already."""
        ...

    def note_nonce_and_add(self, nonce: bytes, at: datetime,
                           transaction: CMPTransaction) -> tuple[bool, bool]:
        """`note_nonce` and `add_transaction` at once (one round trip to the database):
        whether each wrote its row."""
        ...

    def get_transaction(self, transaction_id: str) -> CMPTransaction | None: ...

    def update_transaction(self, transaction: CMPTransaction, expected: TransactionState) -> bool:
        """Replace if still in state `expected`; False if another message moved it first."""
        ...

    def awaiting_confirmation(self, before: datetime, limit: int) -> list[CMPTransaction]:
        """Transactions still awaiting certConf whose last answer was before `before`."""
        ...

    def unconfirmed_update_of(self, certificate: x509.Certificate) -> CMPTransaction | None:
        """A key update (kur) signed by `certificate` still awaiting its certConf."""
        ...


class FailedCheckRepository(Protocol):
    """Failed credential checks per (scope, key), for a budget shared by every worker and
    node (`core.ra.failure_budget`)."""

    def add(self, scope: str, key: str, at: datetime) -> None: ...

    def since(self, scope: str, key: str, since: datetime) -> tuple[int, datetime | None]:
        """How many failed after `since`, and when the oldest of them failed."""
        ...

    def prune(self, before: datetime) -> int:
        """Forget the failures at or before `before`; how many."""

class ACMERepository(Protocol):
    def add_nonce(self, nonce: str, at: datetime) -> None: ...

    def use_nonce(self, nonce: str, issued_after: datetime) -> bool:
        """Remove the nonce; True if it was issued by us after `issued_after` and unused."""
        ...

    def prune_nonces(self, before: datetime) -> None: ...

    def add_account(self, account: ACMEAccount) -> bool:
        """False if an account with that key thumbprint exists already."""
        ...

    def account(self, account_id: str) -> ACMEAccount | None: ...

    def account_by_thumbprint(self, thumbprint: str) -> ACMEAccount | None: ...

    def update_account(self, account: ACMEAccount) -> bool:
        """False if the new key thumbprint belongs to another account."""
        ...

    def add_order(self, order: ACMEOrder, authorizations: list[ACMEAuthorization]) -> None: ...

    def order(self, order_id: str) -> ACMEOrder | None: ...

    def update_order(self, order: ACMEOrder, expected_status: str) -> bool:
        """Write the order if its stored status is still `expected_status`."""
        ...

    def order_for_certificate(self, fingerprint: str) -> ACMEOrder | None: ...

    def orders_of(self, account_id: str, limit: int) -> list[ACMEOrder]: ...

    def count_orders(self, account_id: str | None, organization: str | None,
                     since: datetime) -> int:
        """Orders created since `since` by the account, or by any account of the
        organization (rate limits)."""
        ...

    def authorization(self, authz_id: str) -> ACMEAuthorization | None: ...

    def update_authorization(self, authz: ACMEAuthorization, expected_status: str) -> bool: ...

    def valid_authorization(self, account_id: str, identifier_type: str,
                            identifier_value: str, at: datetime) -> ACMEAuthorization | None:
        """A valid, unexpired authorization of the account for that identifier (reused by a
        later order, RFC 8555 §7.1.3)."""
        ...

    def add_eab_key(self, key: EABKey) -> None: ...

    def eab_key(self, key_id: str) -> EABKey | None: ...

    def bind_eab_key(self, key_id: str, account_id: str) -> bool:
        """Record the account an EAB key created; False if the key was used already."""
        ...
