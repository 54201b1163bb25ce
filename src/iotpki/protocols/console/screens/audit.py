"""Screen 9, the audit log (roles with read-audit: admin, auditor): the organization's
entries, filtered by action and outcome, a keyset page at a time (by sequence number), each
entry's hash recomputed on the page, the whole chain verified on request, and an export of
the organization's entries as JSON lines."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from urllib.parse import urlencode

from starlette.responses import Response, StreamingResponse

from iotpki.core.audit.log import AuditEntry, entry_hash
from iotpki.core.errors import ConfigurationError
from iotpki.core.integration.access import Action, authorize
from iotpki.protocols.console.context import PREFIX, Visit

PAGE, LATEST = 50, 2_000  # entries shown; "latest" starts this many entries before the end
OUTCOMES = ("success", "refused")
EXPORT_PAGE = 1_000


def _filters(visit: Visit) -> dict[str, str]:
    found = {k: visit.query.get(k, "").strip() for k in ("action", "outcome")}
    if len(found["action"]) > 64 or found["outcome"] not in ("", *OUTCOMES):
        raise ConfigurationError("action: at most 64 characters; outcome: success or refused")
    return {k: v for k, v in found.items() if v}


def _matcher(filters: dict[str, str]) -> Callable[[AuditEntry], bool] | None:
    action, outcome = filters.get("action"), filters.get("outcome")
    if not action and not outcome:
        return None

    def matches(entry: AuditEntry) -> bool:
        return ((not action or entry.record.action.startswith(action))
                and (not outcome or entry.record.outcome == outcome))
    return matches


def _position(visit: Visit) -> int:
    text = visit.query.get("after", "0")
    if not text.isdigit() or len(text) > 19:
        raise ConfigurationError("after: a sequence number")
    return int(text)


def intact(entry: AuditEntry) -> bool:
    """Whether the entry's hash is that of its content chained to its predecessor's hash."""
    return entry_hash(entry.prev_hash, entry.at, entry.record) == entry.hash


def show(visit: Visit) -> Response:
    authorize(visit.principal, Action.READ_AUDIT)
    filters, audit = _filters(visit), visit.services.audit
    after = _position(visit)
    page = audit.page_for(visit.principal.organization, after, PAGE,
                          matches=_matcher(filters))
    rows = [(e, intact(e)) for e in page.entries]

    def link(position: int) -> str:
        return f"{PREFIX}/audit?" + urlencode({**filters, "after": position})
    return visit.page("audit.html", title="Audit log", active="audit", rows=rows,
                      filters=filters, outcomes=OUTCOMES,
                      next_link=link(page.next_after) if page.next_after is not None else None,
                      latest_link=link(max(0, audit.last_seq() - LATEST)),
                      first_link=link(0) if after else None,
                      export_link=f"{PREFIX}/audit/export?" + urlencode(filters))


def verify(visit: Visit) -> Response:
    """Verify the whole chain (every entry, and the head): as `iotpki audit verify`."""
    authorize(visit.principal, Action.READ_AUDIT)
    checked, problems = visit.services.audit.problems()
    return visit.page("audit_verified.html", title="Audit chain", active="audit",
                      checked=checked, problems=problems)


def export(visit: Visit) -> Response:
    authorize(visit.principal, Action.READ_AUDIT)
    filters, audit = _filters(visit), visit.services.audit
    organization, matches = visit.principal.organization, _matcher(filters)

    def lines() -> Iterator[bytes]:
        after: int | None = 0
        while after is not None:
            page = audit.page_for(organization, after, EXPORT_PAGE,
                                  matches=matches)
            for e in page.entries:
                yield (json.dumps({"seq": e.seq, "at": e.at.isoformat(), "action": e.record.action,
                                   "outcome": e.record.outcome, "actor": e.record.actor,
                                   "target": e.record.target, "details": e.record.details,
                                   "prev_hash": e.prev_hash, "hash": e.hash},
                                  sort_keys=True, default=str) + "\n").encode()
            after = page.next_after
    return StreamingResponse(lines(), media_type="application/x-ndjson", headers={
        "Content-Disposition": f'attachment; filename="audit-{organization}.jsonl"',
        "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})
