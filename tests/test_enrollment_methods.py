"""One set of enrollment method names, each method answering whether it applies to a
request, and one selection rule (`EnrollmentService.select`) for EST, CMP and the rest:
the first of the endpoint's methods whose credentials the request carries."""

from __future__ import annotations

import pytest
from cryptography import x509

from iotpki.app import PKI
from iotpki.core.methods import ENROLLMENT_METHODS, MethodName, enrollment_method
from iotpki.core.outcomes import Pending
from iotpki.core.ra.enrollment import EnrollmentRequest, default_methods
from tests.factories import make_csr
from tests.supply_chain.story import make_chip

M = MethodName


def _request(chain: tuple[x509.Certificate, ...] = (), registration: str | None = None
             ) -> EnrollmentRequest:
    return EnrollmentRequest(b"csr", "test", client_chain=chain, registration_id=registration,
                             secret="s" if registration else None)


def test_every_enrollment_method_is_implemented_once() -> None:
    assert sorted(m.name for m in default_methods()) == sorted(ENROLLMENT_METHODS)


def test_each_method_says_whether_it_applies(demo_pki: PKI) -> None:
    chain = make_chip(demo_pki, 1).chain
    applies = {m.name: m for m in default_methods()}
    bare, secret, certificate = _request(), _request(registration="r-1"), _request(chain)
    assert [applies[n].applies(bare) for n in ENROLLMENT_METHODS] == [False, False, False, True]
    assert applies[M.ONE_TIME_SECRET].applies(secret)
    assert not applies[M.PREVIOUS_STAGE].applies(secret)
    assert applies[M.PREVIOUS_STAGE].applies(certificate)
    assert applies[M.CURRENT_CERTIFICATE].applies(certificate)
    assert not applies[M.ONE_TIME_SECRET].applies(certificate)


@pytest.mark.parametrize(("allowed", "credentials", "chosen"), [
    ((M.PREVIOUS_STAGE, M.ONE_TIME_SECRET), "secret", M.ONE_TIME_SECRET),
    ((M.PREVIOUS_STAGE, M.ONE_TIME_SECRET), "certificate", M.PREVIOUS_STAGE),
    ((M.PREVIOUS_STAGE, M.ONE_TIME_SECRET), "none", None),
    ((M.ONE_TIME_SECRET, M.MANUAL_APPROVAL), "certificate", M.MANUAL_APPROVAL),
    ((M.ONE_TIME_SECRET, M.MANUAL_APPROVAL), "secret", M.ONE_TIME_SECRET),
    ((M.MANUAL_APPROVAL, M.ONE_TIME_SECRET), "secret", M.MANUAL_APPROVAL),
])
def test_the_first_method_that_applies_is_selected(
        demo_pki: PKI, allowed: tuple[MethodName, ...], credentials: str,
        chosen: MethodName | None) -> None:
    request = {"secret": _request(registration="r-1"), "none": _request(),
               "certificate": _request(make_chip(demo_pki, 2).chain)}[credentials]
    assert demo_pki.enrollment.select(allowed, request) == chosen


def test_manual_approval_is_a_method_like_the_others(demo_pki: PKI) -> None:
    """Selected and authorized like any method; its authorization queues the request."""
    endpoint = demo_pki.endpoints.get("est", "components")
    assert endpoint.methods == (M.ONE_TIME_SECRET, M.MANUAL_APPROVAL)
    csr, _ = make_csr("chip-queued", [])
    request = EnrollmentRequest(csr, "test", authority=endpoint.authority,
                                profile=endpoint.profile)
    method = demo_pki.enrollment.select(endpoint.methods, request)
    assert method is M.MANUAL_APPROVAL
    outcome = demo_pki.enrollment.enroll(request, method)
    assert isinstance(outcome, Pending)
    assert demo_pki.enrollment.approval.get(outcome.request_id).profile == endpoint.profile


def test_only_enrollment_methods_name_an_endpoint_method() -> None:
    assert enrollment_method("one-time-secret") is M.ONE_TIME_SECRET
    for name in ("cli", "internal", "direct", "telepathy"):
        with pytest.raises(ValueError):
            enrollment_method(name)
