"""Screen 7, approvals: the organization's queue only; approve issues, reject needs a reason;
a registrar or admin decides, an operator or auditor cannot, another organization sees
nothing."""

from __future__ import annotations

from typing import Any

from iotpki.core.integration.principal import Role
from iotpki.core.ra.pending import PendingStatus
from tests.api.conftest import DOMAIN, OTHER, OWN, World
from tests.console.conftest import signed_in
from tests.factories import domain_uri, make_csr


def queue(world: World, name: str, authority: str = "operatorco-operations") -> str:
    csr, _ = make_csr(name, sans=[domain_uri(DOMAIN)])
    return world.pki.enrollment.approval.submit(csr, authority, "operational", "est:test",
                                                None).request_id


def test_approve_and_reject(world: World, console_app: Any) -> None:
    approve, reject = queue(world, "sensor-approve"), queue(world, "sensor-reject")
    foreign = queue(world, "sensor-foreign", "deviceco-devices")
    registrar = signed_in(console_app, world, OWN, Role.REGISTRAR)
    try:
        page = registrar.get("/console/approvals").text
        assert approve in page and reject in page and foreign not in page
        assert "CN=sensor-approve" in page
        csrf = registrar.csrf("/console/approvals")
        done = registrar.post(f"/console/approvals/{approve}",
                              {"decision": "approve", "csrf": csrf})
        assert done.status_code == 303 and done.headers["location"].endswith("done=approved")
        no_reason = registrar.post(f"/console/approvals/{reject}",
                                   {"decision": "reject", "csrf": csrf})
        assert no_reason.status_code == 422
        assert registrar.post(f"/console/approvals/{reject}", {
            "decision": "reject", "reason": "not ours", "csrf": csrf}).status_code == 303
        assert registrar.post(f"/console/approvals/{foreign}", {
            "decision": "approve", "csrf": csrf}).status_code == 404
        again = registrar.post(f"/console/approvals/{approve}",
                               {"decision": "approve", "csrf": csrf})
        assert again.status_code == 409
    finally:
        registrar.close()
    approval = world.pki.enrollment.approval
    assert approval.get(approve).status is PendingStatus.APPROVED
    assert approval.get(approve).decided_by is not None
    assert approval.get(reject).status is PendingStatus.REJECTED
    assert approval.get(foreign).status is PendingStatus.PENDING


def test_an_operator_cannot_decide_and_another_organization_sees_nothing(
        world: World, console_app: Any) -> None:
    waiting = queue(world, "sensor-waiting")
    operator = signed_in(console_app, world, OWN, Role.OPERATOR)
    other = signed_in(console_app, world, OTHER, Role.ADMIN)
    try:
        page = operator.get("/console/approvals").text
        assert waiting in page and f'id="approve-{waiting}"' not in page
        assert operator.post(f"/console/approvals/{waiting}", {
            "decision": "approve", "csrf": operator.csrf()}).status_code == 403
        assert waiting not in other.get("/console/approvals").text
        assert other.post(f"/console/approvals/{waiting}", {
            "decision": "reject", "reason": "x", "csrf": other.csrf()}).status_code == 404
    finally:
        operator.close()
        other.close()
    assert world.pki.enrollment.approval.get(waiting).status is PendingStatus.PENDING
