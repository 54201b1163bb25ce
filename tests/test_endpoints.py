"""Protocol endpoint labels: parsed and validated when loaded."""

from __future__ import annotations

import pytest

from iotpki.app import PKI
from iotpki.core.errors import ConfigurationError, NotFoundError
from iotpki.core.ra.endpoints import parse_endpoints


def test_default_endpoints_match_the_demo(demo_pki: PKI) -> None:
    default = demo_pki.endpoints.get("est")
    assert (default.authority, default.profile) == ("operatorco-operations", "operational")
    assert demo_pki.endpoints.get("cmp", "devices").methods == ("previous-stage-certificate",)
    labels = {e.authority for e in demo_pki.endpoints.all()}
    assert labels <= {a.label for a in demo_pki.authorities.list()}
    with pytest.raises(NotFoundError):
        demo_pki.endpoints.get("est", "nope")


@pytest.mark.parametrize("document", [
    {"telnet": {}},
    {"est": {"x": {"authority": "a", "profile": "p", "methods": ["telepathy"]}}},
    {"est": {"x": {"authority": "a", "methods": ["one-time-secret"]}}},
    {"est": {"x": {"authority": "a", "profile": "p", "methods": []}}},
])
def test_bad_endpoint_files_are_refused(document: object) -> None:
    with pytest.raises(ConfigurationError):
        parse_endpoints(document)


def test_acme_endpoints_name_challenges_and_eab() -> None:
    good = parse_endpoints({"acme": {"x": {"authority": "a", "profile": "p",
                                           "challenges": ["dns-01"], "eab": "required"}}})
    assert good.get("acme", "x").challenges == ("dns-01",)
    for spec in ({"challenges": ["dns-02"]}, {"challenges": []}, {"eab": "sometimes"}):
        with pytest.raises(ConfigurationError):
            parse_endpoints({"acme": {"x": {"authority": "a", "profile": "p", **spec}}})
    with pytest.raises(ConfigurationError):  # a resource name cannot be a label
        parse_endpoints({"acme": {"order": {"authority": "a", "profile": "p"}}})
