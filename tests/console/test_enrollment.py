"""Screen 5, enrollment: the organization's endpoints, registrations (a new secret shown
once, only its hash stored), the bulk CSV upload (every bad line reported, nothing written
then; else all written, the page streaming its progress), the manifests imported; an
auditor sees and cannot act, another organization sees nothing of ours, a POST without the
session's CSRF token changes nothing."""

from __future__ import annotations

import base64
import re
from typing import Any

from iotpki.core.integration.principal import Role
from iotpki.core.ra.registration import RegistrationStatus, secret_matches
from iotpki.core.supply_chain.manifests import ImportTarget
from tests.api.conftest import DOMAIN, OTHER, OWN, World
from tests.console.conftest import BASE, signed_in

CREATE, UPLOAD = "/console/enrollment/registrations", "/console/enrollment/upload"
SECRET = re.compile(r'<code class="mono" id="secret">([^<]+)</code>')
ONE = {"authority": "operatorco-operations", "profile": "operational",
       "method": "one-time-secret", "subject": "CN=console-1", "domain": DOMAIN,
       "lifetime": "7d", "uses": "1"}


def registrations(world: World) -> list[Any]:
    return world.pki.registrations.find(OWN, limit=1000)


def import_manifest(world: World) -> None:
    world.pki.manifests.import_manifest(
        OWN, base64.b64decode(world.manifest),
        ImportTarget("operatorco-operations", "operational"), "test")


def test_the_page_shows_our_endpoints_registrations_and_manifests(
        world: World, console_app: Any) -> None:
    import_manifest(world)
    page = signed_in(console_app, world, OWN, Role.REGISTRAR).get("/console/enrollment")
    assert page.status_code == 200
    text = page.text
    # endpoints.yaml's endpoints of OperatorCo's authority, each protocol with its URL path
    for path in ("/.well-known/est", "/.well-known/cmp", "/scep", "/cmc", "/acme/directory",
                 "/acme/operations/directory"):
        assert f'<td class="mono">{path}</td>' in text
    assert "/.well-known/est/devices" not in text  # DeviceCo's authority
    assert world.registration in text and "deviceco" in text  # the manifest's sender
    assert 'href="/console/enrollment"' in text  # in the navigation


def test_a_new_secret_is_shown_once_and_stored_hashed(world: World, console_app: Any) -> None:
    registrar = signed_in(console_app, world, OWN, Role.REGISTRAR)
    before = len(registrations(world))
    assert registrar.post(CREATE, ONE).status_code == 403  # no CSRF token
    assert len(registrations(world)) == before

    answer = registrar.post(CREATE, {**ONE, "csrf": registrar.csrf("/console/enrollment")})
    assert answer.status_code == 201, answer.text
    found = SECRET.search(answer.text)
    assert found is not None
    secret = found.group(1)
    [made] = [r for r in registrations(world) if r.subject is not None
              and r.subject.rfc4514_string() == "CN=console-1"]
    assert made.secret_hash is not None and secret_matches(secret, made.secret_hash)
    assert made.id in answer.text
    assert secret not in registrar.get("/console/enrollment").text  # never again
    entry = world.pki.audit.entries(limit=None)[-1]
    assert (entry.record.action, entry.record.target) == ("registration.create", made.id)
    assert secret not in str(entry.record.details) and entry.record.actor.endswith(f"@{OWN}")

    reusable = registrar.post(CREATE, {**ONE, "subject": "", "reference": "line-7",
                                       "uses": "100", "csrf": registrar.csrf()})
    assert reusable.status_code == 201 and SECRET.search(reusable.text) is not None
    again = registrar.post(CREATE, {**ONE, "subject": "", "reference": "line-7",
                                    "csrf": registrar.csrf()})
    assert again.status_code == 409  # one open registration a reference


def test_bad_input_is_refused_with_the_reason(world: World, console_app: Any) -> None:
    registrar = signed_in(console_app, world, OWN, Role.REGISTRAR)
    csrf = registrar.csrf("/console/enrollment")
    before = len(registrations(world))
    for change in ({"authority": "deviceco-devices"}, {"method": "telepathy"},
                   {"subject": "not a name"}, {"uses": "many"}, {"lifetime": "soon"},
                   {"domain": "other.example"}):
        answer = registrar.post(CREATE, {**ONE, **change, "csrf": csrf})
        assert answer.status_code in (404, 422), (change, answer.text)
        assert "Traceback" not in answer.text
    assert len(registrations(world)) == before
    assert registrar.get("/console/enrollment?cursor=%%%").status_code == 422
    assert registrar.get("/console/enrollment?status=lost").status_code == 422


def csv_of(*subjects: str) -> str:
    lines = ["authority,profile,method,subject,domain"]
    lines += [f"operatorco-operations,operational,one-time-secret,CN={s},{DOMAIN}"
              for s in subjects]
    return "\n".join(lines)


def test_a_bulk_upload_writes_every_line_or_none(world: World, console_app: Any) -> None:
    registrar = signed_in(console_app, world, OWN, Role.REGISTRAR)
    csrf = registrar.csrf("/console/enrollment")
    before = len(registrations(world))
    bad = csv_of("bulk-1", "bulk-2").replace("CN=bulk-2", "bulk-2")  # not RFC 4514
    bad += "\noperatorco-operations,operational,one-time-secret,CN=bulk-3,other.example"
    bad += "\ndeviceco-devices,device,one-time-secret,CN=bulk-4,"
    refused = registrar.post(UPLOAD, {"csv": bad, "csrf": csrf})
    assert refused.status_code == 200  # a streamed page: its status is sent first
    problems = re.findall(r'<tr><td class="num">(\d+)</td><td>([^<]+)</td></tr>', refused.text)
    assert [int(line) for line, _ in problems] == [3, 4, 5], refused.text
    assert "other.example" in problems[1][1] and "deviceco-devices" in problems[2][1]
    assert "Nothing written" in refused.text
    assert len(registrations(world)) == before  # line 2 was good: not written either
    assert world.pki.audit.entries(limit=None)[-1].record.action == "registration.upload"

    subjects = [f"bulk-{n}" for n in range(120)]  # three chunks
    answer = registrar.post(UPLOAD, {"csv": csv_of(*subjects), "csrf": csrf})
    assert answer.status_code == 200 and "120 registrations created" in answer.text
    assert answer.text.count("<progress") == 4  # checking, then one a chunk
    assert 'value="120" max="120"' in answer.text
    secrets = re.findall(r'<td class="mono">([A-Za-z0-9_-]{20,})</td></tr>', answer.text)
    made = {r.subject.rfc4514_string(): r for r in registrations(world)
            if r.subject is not None and r.subject.rfc4514_string().startswith("CN=bulk-")}
    assert len(made) == 120 and len(secrets) == 120
    by_id = dict(re.findall(r'<td class="mono">([0-9a-f-]{36})</td>.*?<td class="mono">'
                            r'([A-Za-z0-9_-]{20,})</td></tr>', answer.text, re.S))
    assert len(by_id) == 120
    assert all(secret_matches(by_id[r.id], r.secret_hash or "") for r in made.values())
    assert all(r.status is RegistrationStatus.OPEN for r in made.values())

    assert registrar.post(UPLOAD, {"csv": csv_of("x"), "csrf": "wrong"}).status_code == 403
    assert registrar.post(UPLOAD, {"csv": "who,what\n1,2", "csrf": csrf}).status_code == 422


def test_an_auditor_sees_but_cannot_act_and_another_organization_sees_nothing(
        world: World, console_app: Any) -> None:
    import_manifest(world)
    auditor = signed_in(console_app, world, OWN, Role.AUDITOR)
    page = auditor.get("/console/enrollment").text
    assert world.registration in page and "/.well-known/est" in page
    assert CREATE not in page and UPLOAD not in page
    csrf = auditor.csrf("/console/enrollment")
    before = len(registrations(world))
    assert auditor.post(CREATE, {**ONE, "csrf": csrf}).status_code == 403
    assert auditor.post(UPLOAD, {"csv": csv_of("a"), "csrf": csrf}).status_code == 403
    assert len(registrations(world)) == before

    stranger = signed_in(console_app, world, OTHER, Role.ADMIN)
    page = stranger.get("/console/enrollment").text
    assert world.registration not in page and "operatorco-operations" not in page
    assert "/.well-known/est/devices" in page  # DeviceCo's own endpoint
    csrf = stranger.csrf("/console/enrollment")
    assert stranger.post(CREATE, {**ONE, "csrf": csrf}).status_code == 422
    assert len(registrations(world)) == before


def multipart(fields: dict[str, str], file: bytes) -> dict[str, Any]:
    """httpx arguments for a multipart/form-data POST (RFC 7578) with one CSV file part."""
    return {"data": fields, "files": {"file": ("registrations.csv", file, "text/csv")}}


def test_a_csv_file_is_uploaded_as_a_spreadsheet_saves_it(world: World, console_app: Any) -> None:
    registrar = signed_in(console_app, world, OWN, Role.REGISTRAR)
    csrf = registrar.csrf("/console/enrollment")
    saved = ("\ufeff" + csv_of("file-1", "file-2").replace("\n", "\r\n")).encode()
    answer = registrar.request("POST", UPLOAD, headers={"Origin": BASE},
                               **multipart({"csrf": csrf, "csv": ""}, saved))
    assert answer.status_code == 200 and "2 registrations created" in answer.text, answer.text
    made = {r.subject.rfc4514_string() for r in registrations(world) if r.subject is not None}
    assert {"CN=file-1", "CN=file-2"} <= made


def test_a_file_of_1001_lines_is_read_past_the_form_cap_and_refused_whole(
        world: World, console_app: Any) -> None:
    """A 1,000-line CSV is larger than a form's 64 KiB: the file part may be (up to 1 MiB);
    one line too many is refused as the REST API's bulk request would be, nothing written."""
    registrar = signed_in(console_app, world, OWN, Role.REGISTRAR)
    csrf = registrar.csrf("/console/enrollment")
    before = len(registrations(world))
    big = csv_of(*(f"a-rather-long-subject-name-for-line-{n:04d}" for n in range(1001))).encode()
    assert len(big) > 64 * 1024
    answer = registrar.request("POST", UPLOAD, headers={"Origin": BASE},
                               **multipart({"csrf": csrf}, big))
    assert answer.status_code == 422 and "at most 1000" in answer.text
    assert len(registrations(world)) == before


def test_a_bad_multipart_body_is_refused_and_writes_nothing(world: World,
                                                           console_app: Any) -> None:
    registrar = signed_in(console_app, world, OWN, Role.REGISTRAR)
    csrf = registrar.csrf("/console/enrollment")
    before = len(registrations(world))
    origin = {"Origin": BASE}
    too_big = registrar.request("POST", UPLOAD, headers=origin,
                                **multipart({"csrf": csrf}, b"x" * (1024 * 1024 + 1)))
    assert too_big.status_code == 413
    latin1 = registrar.request("POST", UPLOAD, headers=origin, **multipart(
        {"csrf": csrf}, "authority,subject\nx,CN=Müller".encode("latin-1")))
    assert latin1.status_code == 400 and "UTF-8" in latin1.text
    broken = registrar.request("POST", UPLOAD, content=b"--b\r\nno headers",
                               headers={**origin, "Content-Type": "multipart/form-data"})
    assert broken.status_code == 400
    no_token = registrar.request("POST", UPLOAD, headers=origin,
                                 **multipart({}, csv_of("file-x").encode()))
    assert no_token.status_code == 403
    assert len(registrations(world)) == before


def test_only_the_upload_takes_a_multipart_body_and_the_origin_is_checked_first(
        world: World, console_app: Any) -> None:
    registrar = signed_in(console_app, world, OWN, Role.REGISTRAR)
    csrf = registrar.csrf("/console/enrollment")
    before = len(registrations(world))
    as_file = registrar.request("POST", CREATE, headers={"Origin": BASE}, **multipart(
        {"csrf": csrf, **ONE}, b"x"))
    assert as_file.status_code == 403  # not a form read there: no CSRF token found
    cross_site = registrar.request("POST", UPLOAD, headers={"Origin": "https://evil.example"},
                                   **multipart({"csrf": csrf}, b"\xff" * 10))
    assert cross_site.status_code == 403 and "another site" in cross_site.text
    assert len(registrations(world)) == before
