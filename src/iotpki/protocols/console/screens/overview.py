"""Screen 1, the fleet overview: the organization's certificates by profile and status,
the expiry forecast as a chart, and the recent issuance, renewal and refusal rates."""

from __future__ import annotations

from starlette.responses import Response

from iotpki.core.integration.access import Action, authorize
from iotpki.core.lifecycle.fleet_overview import STATUSES
from iotpki.protocols.console.context import Visit
from iotpki.protocols.console.svg.bar_chart import bar_chart


def show(visit: Visit) -> Response:
    authorize(visit.principal, Action.READ)
    overview = visit.services.fleet.overview(visit.principal.organization)
    forecast = bar_chart("Good certificates expiring in each of the next 12 months",
                         [(b.label, b.count) for b in overview.months], highlight=1)
    horizons = bar_chart("Good certificates expiring within 7, 30 and 90 days",
                         [(f"≤ {b.label}", b.count) for b in overview.horizons], width=300)
    totals = {s: overview.total(s) for s in STATUSES}
    return visit.page("overview.html", title="Fleet overview", overview=overview,
                      statuses=STATUSES, totals=totals, forecast=forecast, horizons=horizons,
                      active="overview")
