"""Screen 5, enrollment: the protocol endpoints that issue from the organization's
authorities (label, URL, profile, methods), its registrations (keyset-paged; a new one's
secret is shown once, on the page that answers its creation, and stored only hashed), a
bulk CSV upload of registrations with a progress bar, and the manifests it imported.

A bulk upload follows the REST API's bulk path (`POST /api/v1/registrations/bulk`): every
line is checked first, and if any line is bad nothing is written and each bad line is
reported; otherwise the lines are written in chunks of one transaction each, the page
streaming a progress bar as the chunks commit."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlencode

from starlette.responses import Response, StreamingResponse

from iotpki.core.ca.profile import parse_duration
from iotpki.core.errors import ConfigurationError
from iotpki.core.integration.access import Action, authorize
from iotpki.core.ra.endpoints import Endpoint
from iotpki.core.ra.registration import (
    MAY_REVOKE,
    RegistrationMethod,
    RegistrationStatus,
)
from iotpki.core.ra.registration_service import CreatedRegistration, RegistrationSpec
from iotpki.protocols.console.context import PREFIX, Visit
from iotpki.protocols.console.paging import decode_keyset, encode_keyset
from iotpki.protocols.console.rendering import SECURITY_HEADERS, environment
from iotpki.wire.errors import PKIError
from iotpki.wire.names import parse_san, parse_subject

PAGE = 50
MANIFESTS = 20
MAX_LINES = 1000  # as the REST API's bulk request
CHUNK = 50  # lines a transaction: the progress bar moves once a chunk
COLUMNS = ("authority", "profile", "method", "subject", "sans", "domain",
           "identity_fingerprint", "identity_issuer", "identity_serial", "lifetime",
           "component_id", "reference", "uses", "may_revoke")
# The URL path of an endpoint: the empty label is the endpoint without one.
PATHS = {"est": ("/.well-known/est", "/.well-known/est/{label}"),
         "cmp": ("/.well-known/cmp", "/.well-known/cmp/p/{label}"),
         "scep": ("/scep", "/scep/{label}"),
         "acme": ("/acme/directory", "/acme/{label}/directory"),
         "cmc": ("/cmc", "/cmc/{label}")}


@dataclass(frozen=True)
class EndpointRow:
    endpoint: Endpoint
    path: str
    methods: str


@dataclass(frozen=True)
class LineProblem:
    line: int
    problem: str


@dataclass
class Upload:
    """What a bulk upload did, filled while the page streams."""

    total: int
    problems: list[LineProblem] = field(default_factory=list)
    created: list[tuple[int, CreatedRegistration]] = field(default_factory=list)
    finished: bool = False


@dataclass(frozen=True)
class Step:
    done: int
    total: int
    label: str


def _endpoint_row(endpoint: Endpoint) -> EndpointRow:
    bare, labelled = PATHS[endpoint.protocol]
    path = labelled.format(label=endpoint.label) if endpoint.label else bare
    methods = endpoint.challenges if endpoint.protocol == "acme" else endpoint.methods
    extra = [f"EAB {endpoint.eab}"] if endpoint.protocol == "acme" else []
    extra += ["channel binding"] if endpoint.channel_binding else []
    return EndpointRow(endpoint, path, ", ".join([*map(str, methods), *extra]))


def _own_authorities(visit: Visit) -> list[str]:
    """The organization's issuing CAs (a root signs only CAs)."""
    organization = visit.principal.organization
    return [a.label for a in visit.services.authorities.list()
            if a.organization == organization and a.can_issue and a.parent is not None]


def _status(text: str) -> RegistrationStatus | None:
    try:
        return RegistrationStatus(text) if text else None
    except ValueError:
        raise ConfigurationError(f"unknown registration status {text!r}") from None


def _before(text: str) -> int | None:
    if not text:
        return None
    if not text.isdigit() or len(text) > 18:
        raise ConfigurationError("invalid page cursor: follow the page's links")
    return int(text)


def show(visit: Visit, status: int = 200, **extra: object) -> Response:
    authorize(visit.principal, Action.READ)
    services, organization = visit.services, visit.principal.organization
    own = _own_authorities(visit)
    endpoints = [_endpoint_row(e) for e in services.endpoints.all() if e.authority in own]
    chosen = visit.query.get("status", "")
    cursor = visit.query.get("cursor", "")
    found = services.registrations.find(organization, _status(chosen), PAGE + 1,
                                        after=decode_keyset(cursor) if cursor else None)
    shown = found[:PAGE]
    filters = {"status": chosen} if chosen else {}
    next_link = None
    if len(found) > PAGE:
        last = shown[-1]
        next_link = f"{PREFIX}/enrollment?" + urlencode(
            {**filters, "cursor": encode_keyset(last.created_at, last.id)})
    manifests = services.manifests.imported(organization, MANIFESTS + 1,
                                            _before(visit.query.get("manifests_before", "")))
    more_manifests = None
    if len(manifests) > MANIFESTS:
        more_manifests = f"{PREFIX}/enrollment?" + urlencode(
            {"manifests_before": manifests[MANIFESTS - 1].row})
    return visit.page(
        "enrollment.html", status, title="Enrollment", active="enrollment",
        endpoints=endpoints, registrations=shown, statuses=[s.value for s in RegistrationStatus],
        chosen=chosen, next_link=next_link,
        first_link=f"{PREFIX}/enrollment?{urlencode(filters)}" if cursor else None,
        manifests=manifests[:MANIFESTS], more_manifests=more_manifests,
        authorities=own, profiles=sorted(_issuable(visit)), columns=COLUMNS,
        may_act=visit.may(Action.REGISTER), **extra)


def _issuable(visit: Visit) -> list[str]:
    """Profiles a registration may name: never an API principal's (the core refuses it)."""
    return [name for name, p in visit.services.profiles.items() if p.kind != "api-client"]


def _spec(visit: Visit, fields: Mapping[str, str], own: list[str]) -> RegistrationSpec:
    """A registration from a form or a CSV line, with the REST API's fields and rules."""
    def text(name: str) -> str | None:
        return (fields.get(name) or "").strip() or None

    authority = text("authority") or ""
    if authority not in own:  # another organization's authority is unknown to this one
        raise ConfigurationError(f"unknown authority {authority!r}")
    try:
        method = RegistrationMethod(text("method") or "")
    except ValueError:
        raise ConfigurationError("method must be one of "
                                 + ", ".join(m.value for m in RegistrationMethod)) from None
    uses = text("uses") or "1"
    if not uses.isdigit() or len(uses) > 7:
        raise ConfigurationError("uses must be a whole number")
    subject, sans = text("subject"), text("sans")
    try:
        lifetime = parse_duration(text("lifetime") or "30d")
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None
    return RegistrationSpec(
        organization=visit.principal.organization, authority=authority,
        profile=text("profile") or "", method=method,
        subject=parse_subject(subject) if subject else None,
        sans=tuple(parse_san(s.strip()) for s in sans.split(";") if s.strip()) if sans else None,
        domain=text("domain"), identity_fingerprint=text("identity_fingerprint"),
        identity_issuer=text("identity_issuer"), identity_serial=text("identity_serial"),
        lifetime=lifetime, component_id=text("component_id"),
        reference=text("reference"), uses=int(uses),
        attributes={MAY_REVOKE: True} if text("may_revoke") in ("true", "yes", "1") else {})


def create_registration(visit: Visit) -> Response:
    """One registration; the answer is the page itself with the secret, shown this once."""
    authorize(visit.principal, Action.REGISTER)
    spec = _spec(visit, visit.form, _own_authorities(visit))
    created = visit.services.registrations.create(spec, visit.principal.actor)
    return show(visit, 201, created=created,
                notice=f"Registration {created.registration.id} created.")


def _lines(text: str) -> tuple[list[tuple[int, dict[str, str]]], list[LineProblem]]:
    """The CSV's rows with their line numbers (the header is line 1)."""
    reader = csv.DictReader(io.StringIO(text.strip()), restkey="_extra")
    unknown = [c for c in reader.fieldnames or () if c.strip() not in COLUMNS]
    if not reader.fieldnames or unknown:
        raise ConfigurationError("the first line names the columns, some of "
                                 + ", ".join(COLUMNS)
                                 + (f" (unknown: {', '.join(unknown)})" if unknown else ""))
    rows, problems = [], []
    try:
        for row in reader:
            if "_extra" in row:
                problems.append(LineProblem(reader.line_num, "more values than columns"))
            else:
                rows.append((reader.line_num, {k.strip(): v or "" for k, v in row.items()}))
    except csv.Error as exc:
        problems.append(LineProblem(reader.line_num, f"not CSV: {exc}"))
    if len(rows) + len(problems) > MAX_LINES:
        raise ConfigurationError(f"at most {MAX_LINES} registrations an upload")
    if not rows and not problems:
        raise ConfigurationError("the CSV holds no registration")
    return rows, problems


def upload(visit: Visit) -> Response:
    """The bulk CSV upload: the page streams while the lines are checked and written."""
    authorize(visit.principal, Action.REGISTER)
    # A chosen file, else the pasted text (the form offers both).
    rows, problems = _lines(visit.form.get("file", "").strip() or visit.form.get("csv", ""))
    own = _own_authorities(visit)
    lines = len(rows) + len(problems)
    specs: list[tuple[int, RegistrationSpec]] = []
    for line, fields in rows:
        try:
            specs.append((line, _spec(visit, fields, own)))
        except (PKIError, ValueError) as exc:
            problems.append(LineProblem(line, str(exc)))
    result = Upload(lines, problems)
    context = {"visit": visit, "principal": visit.principal, "csrf":
               visit.signed_in.session.csrf_token, "title": "Enrollment: bulk upload",
               "active": "enrollment", "upload": result, "steps": _steps(visit, specs, result)}
    page = environment().get_template("enrollment_upload.html").generate(context)
    return StreamingResponse(page, media_type="text/html; charset=utf-8",
                             headers=SECURITY_HEADERS)


def _steps(visit: Visit, specs: list[tuple[int, RegistrationSpec]],
           result: Upload) -> Iterator[Step]:
    """Check every line, then (none bad) write them a chunk at a time; each step is a
    progress bar on the streamed page."""
    registrations, actor = visit.services.registrations, visit.principal.actor
    total = len(specs)
    yield Step(0, total, "checking")
    found = registrations.check_many([s for _, s in specs], actor)
    result.problems += [LineProblem(line, p) for (line, _), p in zip(specs, found, strict=True)
                        if p is not None]
    result.problems.sort(key=lambda p: p.line)
    if result.problems:  # all or none, as the REST API's bulk request
        registrations.refuse_upload(actor, visit.principal.organization, total,
                                    len(result.problems))
        result.finished = True
        return
    for start in range(0, total, CHUNK):
        chunk = specs[start:start + CHUNK]
        try:
            made = registrations.create_many([s for _, s in chunk], actor)
        except PKIError as exc:  # changed since the check: this chunk is not written
            result.problems += [LineProblem(line, str(exc)) for line, _ in chunk]
            break
        result.created += [(line, c) for (line, _), c in zip(chunk, made, strict=True)]
        yield Step(start + len(chunk), total, "written")
    result.finished = True

