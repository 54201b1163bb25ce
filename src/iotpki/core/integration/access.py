"""The one authorization decision: may this principal do this to an object of that
organization? Every API operation asks here; nothing else decides.

- A principal acts only within its own organization. An object of another organization is
  reported as not found (`NotFoundError`), so that its existence does not leak.
- Within its organization, the role decides (`AccessDeniedError` when it does not allow).
"""

from __future__ import annotations

from enum import StrEnum

from iotpki.core.errors import AccessDeniedError, NotFoundError
from iotpki.core.integration.principal import Principal, Role


class Action(StrEnum):
    READ = "read"  # organizations, domains, authorities, profiles, certificates, devices, ...
    READ_AUDIT = "read-audit"
    REGISTER = "register"  # registrations (create, cancel) and manifests (export, import)
    REVOKE = "revoke"  # certificates, one or many
    REPORT_EVENT = "report-event"  # lifecycle events on devices
    INTEGRATE = "integrate"  # API principals (revoke) and webhook deliveries (retry)


ALLOWED: dict[Role, frozenset[Action]] = {
    Role.ADMIN: frozenset(Action),
    Role.REGISTRAR: frozenset({Action.READ, Action.REGISTER}),
    Role.OPERATOR: frozenset({Action.READ, Action.REVOKE, Action.REPORT_EVENT}),
    Role.AUDITOR: frozenset({Action.READ, Action.READ_AUDIT}),
}


def may(principal: Principal, action: Action) -> bool:
    return action in ALLOWED[principal.role]


def authorize(principal: Principal, action: Action, organization: str | None = None,
              what: str = "object") -> None:
    """Raise unless `principal` may do `action` to an object owned by `organization`
    (None: the principal's own organization, e.g. a list or a creation)."""
    if organization is not None and organization != principal.organization:
        raise NotFoundError(f"no such {what}")
    if not may(principal, action):
        roles = ", ".join(r.value for r, allowed in ALLOWED.items() if action in allowed)
        raise AccessDeniedError(
            f"role {principal.role.value} may not {action.value} ({principal.organization}); "
            f"a principal of role {roles} may")
