"""Screen 4, authorities: the organization's CA hierarchy as a tree (root → issuing CAs →
their delegated service certificates: OCSP responder, CMP protection, key delivery), and per
authority its key backend (software or HSM), expiry, and latest CRL (number, next update,
entries)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from starlette.responses import Response

from iotpki.core.ca.authority import Authority
from iotpki.core.ca.ports import Purpose, ServiceCertificate
from iotpki.core.integration.access import Action, authorize
from iotpki.core.revocation.status import CRLInfo, CRLKind
from iotpki.protocols.console.context import Visit
from iotpki.protocols.console.svg.tree import TreeNode, tree

DELEGATED = (Purpose.OCSP_SIGNING, Purpose.CMP_PROTECTION, Purpose.KEY_DELIVERY)
EXPIRING = timedelta(days=90)
BACKENDS = {"software": "software", "pkcs11": "HSM (PKCS #11)"}


@dataclass(frozen=True)
class AuthorityRow:
    authority: Authority
    backend: str
    full_crl: CRLInfo | None
    delta_crl: CRLInfo | None
    services: tuple[ServiceCertificate, ...]


def _backend(authority: Authority) -> str:
    if authority.key_ref is None:
        return "no key here (trust anchor)"
    scheme = authority.key_ref.partition(":")[0]
    return BACKENDS.get(scheme, scheme)


def _row(visit: Visit, authority: Authority) -> AuthorityRow:
    crls, services = visit.services.crls, visit.services.service_certificates
    stored = [services.stored(authority.label, p) for p in DELEGATED] if authority.can_issue \
        else []
    return AuthorityRow(authority, _backend(authority),
                        crls.latest_info(authority.label, CRLKind.FULL),
                        crls.latest_info(authority.label, CRLKind.DELTA),
                        tuple(s for s in stored if s is not None))


def _node(row: AuthorityRow, children: list[TreeNode], now: datetime) -> TreeNode:
    authority = row.authority
    kind = "root" if authority.parent is None else ""
    if authority.not_after - now < EXPIRING:
        kind += " expiring"
    services = [TreeNode(s.purpose.value, (f"until {s.not_after:%Y-%m-%d}",), "service")
                for s in row.services]
    return TreeNode(authority.label, (f"{authority.kind.value} · {row.backend}",
                                      f"until {authority.not_after:%Y-%m-%d}"),
                    kind.strip(), [*children, *services])


def show(visit: Visit) -> Response:
    authorize(visit.principal, Action.READ)
    now = visit.services.clock.now()
    own = [a for a in visit.services.authorities.list()
           if a.organization == visit.principal.organization]
    rows = {a.label: _row(visit, a) for a in own}

    def build(label: str) -> TreeNode:
        children = [build(a.label) for a in own if a.parent == label]
        return _node(rows[label], children, now)

    roots = [build(a.label) for a in own if a.parent is None or a.parent not in rows]
    picture = tree(f"Authority hierarchy of {visit.principal.organization}", roots)
    return visit.page("authorities.html", title="Authorities", active="authorities",
                      rows=list(rows.values()), picture=picture, now=now, expiring=EXPIRING)
