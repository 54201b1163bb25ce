"""Screen 6, the revocation center: a lifecycle action goes through a confirmation page
that shows what will happen and changes nothing until confirmed; a bulk revocation shows
its count first and is refused if the count changed; CRLs and OCSP health of the
organization's authorities; an auditor sees and cannot act, another organization sees
nothing of ours, a POST without the CSRF token changes nothing."""

from __future__ import annotations

from typing import Any

from iotpki.core.ca.certificate import CertificateStatus
from iotpki.core.ca.ports import CertificateQuery
from iotpki.core.integration.principal import Role
from iotpki.core.lifecycle.device import DeviceState
from iotpki.core.revocation.status import CRLKind
from tests.api.conftest import OTHER, OWN, World, issue_operational

LOST_PAGE = "/console/revocation/lifecycle?device={}&event=lost"


def test_lost_and_found_through_the_confirmation_page(world: World, console_app: Any) -> None:
    pki = world.pki
    device = pki.devices.get(world.device)
    [operational] = [i.certificate for i in pki.devices.history(world.device)
                     if i.certificate is not None and i.certificate.profile == "operational"]
    operator = _client(console_app, world, OWN, Role.OPERATOR)
    found = operator.get(LOST_PAGE.format(device.name))
    assert found.status_code == 303
    confirm = found.headers["location"]
    assert confirm == f"/console/revocation/devices/{world.device}/lost"
    page = operator.get(confirm)
    assert page.status_code == 200
    assert operational.serial_hex in page.text and "certificateHold" in page.text
    assert "on-hold" in page.text and "lost" in page.text
    assert pki.devices.get(world.device).state is DeviceState.ACTIVE  # nothing happened yet

    assert operator.post(confirm, {}).status_code == 403  # no CSRF token
    assert pki.devices.get(world.device).state is DeviceState.ACTIVE
    done = operator.post(confirm, {"csrf": operator.csrf(confirm), "note": "ticket 7"})
    assert done.status_code == 303
    assert done.headers["location"] == f"/console/devices/{world.device}?done=lost"
    assert pki.devices.get(world.device).state is DeviceState.LOST
    assert pki.certificates.get(operational.authority, operational.serial).status \
        is CertificateStatus.HELD
    entry = next(e for e in reversed(pki.audit.entries(limit=None))
                 if e.record.action == "device.lost")
    assert entry.record.actor.endswith(f"@{OWN}") and entry.record.details["details"]["note"] == "ticket 7"

    page = operator.get(f"/console/revocation/devices/{world.device}/found")
    assert "removeFromCRL" in page.text and operational.serial_hex in page.text
    operator.post(f"/console/revocation/devices/{world.device}/found",
                  {"csrf": operator.csrf(confirm.replace("lost", "found"))})
    assert pki.certificates.get(operational.authority, operational.serial).status \
        is CertificateStatus.GOOD
    # found is no longer possible from active: refused as the core refuses it
    assert operator.get(f"/console/revocation/devices/{world.device}/found").status_code == 409
    assert operator.get(f"/console/revocation/devices/{world.device}/renewal_due"
                        ).status_code == 422
    assert operator.get(LOST_PAGE.format("no-such-device")).status_code == 404


def test_an_owner_change_says_what_follows_and_needs_the_new_owner(world: World,
                                                                   console_app: Any) -> None:
    admin = _client(console_app, world, OWN, Role.ADMIN)
    path = f"/console/revocation/devices/{world.device}/owner_change"
    page = admin.get(path)
    assert page.status_code == 200 and "new owner" in page.text.lower()
    assert "affiliationChanged" in page.text
    assert admin.post(path, {"csrf": admin.csrf(path)}).status_code == 422
    assert world.pki.devices.get(world.device).state is DeviceState.ACTIVE


def test_bulk_revocation_shows_the_count_first(world: World, console_app: Any) -> None:
    pki = world.pki
    batch = [issue_operational(pki, f"batch-{n}") for n in range(3)]
    operator = _client(console_app, world, OWN, Role.OPERATOR)
    preview = operator.get("/console/revocation/bulk?subject=CN%3Dbatch-&reason=superseded")
    assert preview.status_code == 200 and 'id="changes">3<' in preview.text
    assert all(pki.certificates.get(r.authority, r.serial).status is CertificateStatus.GOOD
               for r in batch)
    form = {"subject": "CN=batch-", "reason": "superseded", "csrf": operator.csrf(
        "/console/revocation/bulk?subject=CN%3Dbatch-&reason=superseded")}
    assert operator.post("/console/revocation/bulk", {**form, "csrf": ""}).status_code == 403
    issue_operational(pki, "batch-3")  # the count changes after it was shown
    assert operator.post("/console/revocation/bulk", {**form, "expected": "3"}
                         ).status_code == 409
    assert all(pki.certificates.get(r.authority, r.serial).status is CertificateStatus.GOOD
               for r in batch)
    done = operator.post("/console/revocation/bulk", {**form, "expected": "4"})
    assert done.status_code == 303 and done.headers["location"].endswith("revoked=4")
    assert "4 certificates changed status" in operator.get(done.headers["location"]).text
    revoked = pki.certificates.find(CertificateQuery(subject_contains="batch-", limit=None))
    assert {r.status for r in revoked} == {CertificateStatus.REVOKED}
    assert operator.get("/console/revocation/bulk?reason=superseded").status_code == 422


def test_the_bulk_subject_filter_is_the_subjects_beginning(world: World,
                                                          console_app: Any) -> None:
    """Written on the form; a bare name (the old "contains") is refused, not matched
    against nothing; a prefix that begins no subject shows nothing to revoke."""
    issue_operational(world.pki, "prefix-1")
    operator = _client(console_app, world, OWN, Role.OPERATOR)
    form = operator.get("/console/revocation").text.split('id="subject-meaning"')[1]
    assert "Subject starts with" in form and "case-sensitive" in form
    bare = operator.get("/console/revocation/bulk?subject=prefix-&reason=superseded")
    assert bare.status_code == 422 and "CN=prefix-" in bare.text
    counted = operator.get("/console/revocation/bulk?subject=CN%3Dprefix-&reason=superseded")
    assert 'id="changes">1<' in counted.text
    nothing = operator.get("/console/revocation/bulk?subject=CN%3DPrefix-&reason=superseded")
    assert 'id="changes">0<' in nothing.text and "nothing matches" in nothing.text
    assert 'id="confirm"' not in nothing.text


def test_crls_and_ocsp_health_of_the_organizations_authorities(world: World,
                                                               console_app: Any) -> None:
    world.pki.crls.publish("operatorco-operations")
    info = world.pki.crls.latest_info("operatorco-operations", CRLKind.FULL)
    assert info is not None
    page = _client(console_app, world, OWN, Role.AUDITOR).get("/console/revocation")
    assert page.status_code == 200
    crls = page.text.split('id="crls"')[1].split("</table>")[0]
    assert "operatorco-operations" in crls and f'class="num">{info.number}<' in crls
    ocsp = page.text.split('id="ocsp"')[1].split("</table>")[0]
    assert "operatorco-operations" in ocsp and ">good<" in ocsp and " ms<" in ocsp
    assert "deviceco" not in crls + ocsp


def test_an_auditor_cannot_act_and_another_organization_sees_nothing(world: World,
                                                                     console_app: Any) -> None:
    confirm = f"/console/revocation/devices/{world.device}/stolen"
    auditor = _client(console_app, world, OWN, Role.AUDITOR)
    page = auditor.get("/console/revocation")
    assert 'id="lifecycle"' not in page.text and 'id="bulk"' not in page.text
    csrf = auditor.csrf("/console/revocation")
    assert auditor.get(confirm).status_code == 403
    assert auditor.post(confirm, {"csrf": csrf}).status_code == 403
    assert auditor.post("/console/revocation/bulk", {
        "csrf": csrf, "profile": "operational", "reason": "superseded", "expected": "1"}
    ).status_code == 403

    stranger = _client(console_app, world, OTHER, Role.ADMIN)
    csrf = stranger.csrf("/console/revocation")
    assert stranger.get(confirm).status_code == 404
    assert stranger.post(confirm, {"csrf": csrf}).status_code == 404
    assert stranger.get("/console/revocation/bulk?authority=operatorco-operations"
                        "&reason=superseded").status_code == 404
    preview = stranger.get("/console/revocation/bulk?profile=operational&reason=superseded")
    mine = len([r for r in world.pki.certificates.find(CertificateQuery(
        organization=OTHER, profile="operational", limit=None))
        if r.status is not CertificateStatus.REVOKED])
    assert f'id="changes">{mine}<' in preview.text
    assert "operatorco-operations" not in stranger.get("/console/revocation").text
    assert world.pki.devices.get(world.device).state is DeviceState.ACTIVE


def _client(app: Any, world: World, organization: str, role: Role) -> Any:
    from tests.console.conftest import signed_in
    return signed_in(app, world, organization, role)
