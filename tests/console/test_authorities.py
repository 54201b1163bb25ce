"""Screen 4, authorities: the organization's hierarchy as a tree with its delegated service
certificates, key backends, expiry and latest CRLs; nothing of another organization's."""

from __future__ import annotations

from typing import Any

from iotpki.core.ca.ports import Purpose
from iotpki.core.integration.principal import Role
from tests.api.conftest import OWN, World
from tests.console.conftest import signed_in


def test_the_hierarchy_with_service_certificates_and_crls(world: World,
                                                          console_app: Any) -> None:
    pki = world.pki
    issuing = "operatorco-operations"
    pki.service_certificates.current(issuing, Purpose.OCSP_SIGNING)
    [full, *_] = pki.crls.publish(issuing)
    client = signed_in(console_app, world, OWN, Role.AUDITOR)
    try:
        page = client.get("/console/authorities")
    finally:
        client.close()
    assert page.status_code == 200
    picture = page.text.split('class="tree"')[1].split("</svg>")[0]
    own = [a for a in pki.authorities.list() if a.organization == OWN]
    others = [a for a in pki.authorities.list() if a.organization != OWN]
    assert own and others
    for authority in own:
        assert f">{authority.label}</text>" in picture
    for authority in others:
        assert authority.label not in page.text
    assert ">ocsp-responder</text>" in picture and "node service" in picture
    row = page.text.split(f"<td>{issuing}</td>")[1].split("</tr>")[0]
    assert "software" in row and f'class="num">{full.info.number}' in row
