"""Screen 9, the audit log: the organization's entries only, filters, each entry's hash
checked on the page (an altered entry shows), the whole chain verified, the export; only
roles that may read the audit log see it."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import update

from iotpki.core.integration.principal import Role
from iotpki.store.schema import audit_log
from tests.api.conftest import OTHER, OWN, World
from tests.console.conftest import signed_in


def test_the_organizations_entries_filtered_checked_and_exported(world: World,
                                                                 console_app: Any) -> None:
    signed_in(console_app, world, OTHER, Role.ADMIN).close()  # DeviceCo's login entry
    client = signed_in(console_app, world, OWN, Role.AUDITOR)
    try:
        page = client.get("/console/audit", params={"action": "console."})
        assert page.status_code == 200
        table = page.text.split('id="audit"')[1].split("</table>")[0]
        assert "console.login" in table and f"@{OWN}" in table and f"@{OTHER}" not in table
        assert "principal.create" not in table and "✓" in table and "altered" not in table
        lines = [json.loads(x) for x in client.get(
            "/console/audit/export", params={"action": "console."}).text.splitlines()]
        assert lines and all(x["action"].startswith("console.") for x in lines)
        assert all(OTHER not in x["actor"] for x in lines)
        verified = client.get("/console/audit/verify").text
        assert "intact" in verified
        [first] = [x for x in lines if x["actor"].endswith(f"@{OWN}")][:1]
        with world.pki.database.engine.begin() as conn:  # an insider edits one entry
            conn.execute(update(audit_log).where(audit_log.c.seq == first["seq"])
                         .values(target="someone-else"))
        tampered = client.get("/console/audit", params={"action": "console."}).text
        assert "✗ altered" in tampered
        assert "problem(s)" in client.get("/console/audit/verify").text
    finally:
        client.close()


def test_only_roles_that_read_the_audit_log_see_it(world: World, console_app: Any) -> None:
    operator = signed_in(console_app, world, OWN, Role.OPERATOR)
    try:
        assert 'href="/console/audit"' not in operator.get("/console/").text
        for path in ("/console/audit", "/console/audit/export", "/console/audit/verify"):
            assert operator.get(path).status_code == 403
    finally:
        operator.close()
    admin = signed_in(console_app, world, OWN, Role.ADMIN)
    try:
        assert 'href="/console/audit"' in admin.get("/console/").text
        assert admin.get("/console/audit", params={"outcome": "maybe"}).status_code == 422
        assert admin.get("/console/audit", params={"after": "-1"}).status_code == 422
    finally:
        admin.close()
