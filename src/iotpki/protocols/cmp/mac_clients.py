"""Who sent a MAC-protected CMP request (RFC 9483 §3.2, RFC 9810 §5.1.3.1, RFC 9481 §6.1).

The senderKID names a secret registration: its id (a one-time secret) or the operator-chosen
reference of a reusable credential (`core.ra.registration`). The checks run cheapest first,
so that nobody makes the server derive a key for a request that cannot succeed:

1. the senderKID is there and of a sane length, and names a registration with a sealed
   secret (else badMessageCheck: RFC 9483 §3.6.4 counts MAC reference problems as message
   check failures);
2. the MAC parameters are within bounds (`wire.cmp.protection`);
3. neither the registration nor the client's address has spent its budget of failed MAC
   checks (`protocols.cmp.throttle`; else systemUnavail, try later);
4. then the key is derived and the MAC checked; a failure counts against both budgets.

`check_usable` then runs after the replay check (a replayed message is badSenderNonce
whatever happened to its registration since): the registration can still authenticate if
it is open and not expired, or if the request continues a transaction it opened (the
certConf or pollReq after the issuance that used it up). A consumed, used-up, expired or
cancelled registration's secret authenticates nothing else, genm included (notAuthorized).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from iotpki.core.keyring import SecretSealer
from iotpki.core.ra.registration import Registration, RegistrationStatus
from iotpki.core.ra.transactions import TransactionState
from iotpki.protocols.cmp.ports import SecretRegistrations, Transactions
from iotpki.protocols.cmp.refusals import CMPFailure
from iotpki.protocols.cmp.throttle import MACThrottle
from iotpki.wire.cmp.messages import PKIMessage
from iotpki.wire.cmp.protection import (
    MACParameters,
    ProtectionError,
    decode_mac_parameters,
    verify_mac,
)
from iotpki.wire.errors import PKIError

MAX_KID = 128  # octets: a registration id is 36, a reference at most 128
_CONTINUING = ("certConf", "pollReq", "error")
_OPEN_STATES = (TransactionState.AWAITING_CONFIRMATION, TransactionState.AWAITING_APPROVAL)


@dataclass(frozen=True)
class MACClient:
    registration: Registration
    secret: bytes
    parameters: MACParameters


class MACClients:
    def __init__(self, registrations: SecretRegistrations, transactions: Transactions,
                 sealer: SecretSealer | None, throttle: MACThrottle) -> None:
        self._registrations = registrations
        self._transactions = transactions
        self._sealer = sealer
        self._throttle = throttle

    def authenticate(self, message: PKIMessage, now: datetime, address: str) -> MACClient:
        """Raise `CMPFailure` (or `ProtectionError` for a MAC that does not verify)."""
        registration = self._registration(message)
        parameters = decode_mac_parameters(message)
        throttled = self._throttle.check(registration.id, address, now)
        if throttled is not None:
            raise CMPFailure("systemUnavail", f"too many failed MAC checks for this "
                                              f"{throttled.scope}; try again after "
                                              f"{throttled.until.isoformat()}")
        assert self._sealer is not None and registration.secret_sealed is not None
        try:
            secret = self._sealer.unseal(registration.secret_sealed)
        except PKIError as exc:
            raise CMPFailure("systemFailure", "the registration's secret cannot be read") from exc
        try:
            verify_mac(message, secret)
        except ProtectionError:
            self._throttle.note_failure(registration.id, address, now)
            raise
        return MACClient(registration, secret, parameters)

    def check_usable(self, message: PKIMessage, registration: Registration,
                     now: datetime) -> None:
        if message.body_type in _CONTINUING:
            opened = self._transactions.get((message.header.transaction_id or b"").hex())
            # A certConf for a certificate confirmed already (explicitly or implicitly) is
            # let through too, so that it is answered certConfirmed (RFC 9810 §5.2.3).
            states = ((*_OPEN_STATES, TransactionState.CONFIRMED)
                      if message.body_type == "certConf" else _OPEN_STATES)
            if (opened is not None and opened.registration == registration.id
                    and opened.state in states):
                return
        _check_usable(registration, now)

    def _registration(self, message: PKIMessage) -> Registration:
        kid = message.header.sender_kid
        if not kid:
            raise CMPFailure("badMessageCheck", "MAC protection names its registration (id or "
                                                "reference) as senderKID")
        if len(kid) > MAX_KID:
            raise CMPFailure("badMessageCheck", f"senderKID longer than {MAX_KID} octets")
        name = kid.decode("utf-8", "replace")
        registration = self._registrations.for_secret(name)
        if registration is None or registration.secret_sealed is None or self._sealer is None:
            raise CMPFailure("badMessageCheck", f"no secret is registered as {name!r}")
        return registration


def _check_usable(registration: Registration, now: datetime) -> None:
    if registration.locked_at is not None:  # too many wrong secrets (core.ra.guessing)
        raise CMPFailure("notAuthorized", f"registration {registration.id} is locked after "
                                          f"too many wrong secrets; an operator unlocks it")
    if registration.status is RegistrationStatus.CONSUMED:
        state = ("used up" if registration.uses_allowed > 1 else "consumed")
        raise CMPFailure("notAuthorized", f"registration {registration.id} is {state}; its "
                                          f"secret authenticates nothing more")
    if registration.status is not RegistrationStatus.OPEN:
        raise CMPFailure("notAuthorized", f"registration {registration.id} is "
                                          f"{registration.status.value}")
    if registration.is_expired(now):
        raise CMPFailure("notAuthorized", f"registration {registration.id} expired "
                                          f"{registration.expires_at.isoformat()}")
