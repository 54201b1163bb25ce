"""Fixtures of the revocation tests: certificates issued by the demo operational CA."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cryptography import x509

from iotpki.app import PKI
from iotpki.core.issuance import IssuanceRequest
from iotpki.core.outcomes import Issued
from tests.factories import domain_uri, make_csr

CA = "operatorco-operations"
ROOT = "operatorco-root"
DOMAIN = "building-42.operator.example"

IssueFn = Callable[[str], Issued]


def issue_operational(pki: PKI, name: str) -> Issued:
    csr, _ = make_csr(name, [domain_uri(DOMAIN)])
    outcome = pki.issuance.issue(IssuanceRequest(CA, "operational", csr, "test"))
    assert isinstance(outcome, Issued), outcome
    return outcome


@pytest.fixture
def issue(demo_pki: PKI) -> IssueFn:
    return lambda name: issue_operational(demo_pki, name)


def revoke(pki: PKI, issued: Issued, reason: x509.ReasonFlags) -> None:
    pki.revocation.revoke(CA, issued.record.serial, reason, "test")
