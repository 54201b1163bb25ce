"""External Account Binding keys (RFC 8555 §7.3.4): made here for one organization, shown
once, kept sealed. An ACME account created with a key is bound to its organization; each
key creates one account.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass

from iotpki.core.audit.log import AuditRecord, append_audit
from iotpki.core.clock import Clock
from iotpki.core.errors import ConfigurationError, NotFoundError
from iotpki.core.keyring import SecretSealer
from iotpki.core.ports import UnitOfWorkFactory
from iotpki.core.ra.acme import EABKey

KEY_BYTES = 32  # HS256 key of the hash's size


@dataclass(frozen=True)
class NewEABKey:
    key_id: str
    organization: str
    label: str | None
    hmac_key: str  # base64url without padding, as ACME clients take it; shown once


class EABKeys:
    def __init__(self, uow: UnitOfWorkFactory, sealer: SecretSealer | None, clock: Clock) -> None:
        self._uow = uow
        self._sealer = sealer
        self._clock = clock

    def create(self, organization: str, actor: str, label: str | None = None) -> NewEABKey:
        if self._sealer is None:
            raise ConfigurationError("EAB keys are sealed under the CA key passphrase; "
                                     "none is configured")
        key = secrets.token_bytes(KEY_BYTES)
        key_id = "eab-" + secrets.token_hex(12)
        now = self._clock.now()
        with self._uow() as uow:
            if uow.organizations.get(organization) is None:
                raise NotFoundError(f"no organization {organization!r}")
            uow.acme.add_eab_key(EABKey(key_id, organization, self._sealer.seal(key), now, label))
            append_audit(uow.audit, now, AuditRecord(
                "acme.eab_key.create", "success", actor, key_id,
                {"organization": organization, "label": label}))
            uow.commit()
        encoded = base64.urlsafe_b64encode(key).rstrip(b"=").decode("ascii")
        return NewEABKey(key_id, organization, label, encoded)

    def unseal(self, key: EABKey) -> bytes:
        if self._sealer is None:
            raise ConfigurationError("no passphrase to unseal EAB keys")
        return self._sealer.unseal(key.sealed_key)
