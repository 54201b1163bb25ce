"""Screen 8, posture checks: shared keys, weak keys, certificates expiring with no renewal
seen, authorities that expire before what they issued, devices naming another
organization's domain (`core.lifecycle.posture`), each finding linked to its page."""

from __future__ import annotations

from starlette.responses import Response

from iotpki.core.integration.access import Action, authorize
from iotpki.core.lifecycle.posture import HORIZON
from iotpki.protocols.console.context import Visit


def show(visit: Visit) -> Response:
    authorize(visit.principal, Action.READ)
    report = visit.services.posture.report(visit.principal.organization)
    return visit.page("posture.html", title="Posture checks", active="posture", report=report,
                      horizon=HORIZON.days)
