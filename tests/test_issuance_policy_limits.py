"""Issuance policy refuses weak RSA exponents and absurd subjects (issue 15 item 13)."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from iotpki.app import PKI
from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.core.ca.policy import check_rsa_exponent
from iotpki.core.errors import PolicyError, RefusalReason
from iotpki.core.outcomes import Issued, Rejected
from tests.factories import domain_uri, make_csr

CA = "operatorco-operations"
DOMAIN = domain_uri("building-42.operator.example")


def issue(pki: PKI, csr: bytes) -> Issued | Rejected:
    return pki.issuance.issue(IssuanceRequest(CA, "operational", csr, "attacker"))


def test_rsa_public_exponent_3_is_refused(demo_pki: PKI) -> None:
    key = rsa.generate_private_key(public_exponent=3, key_size=2048)
    outcome = issue(demo_pki, make_csr("sensor-1", [DOMAIN], key=key)[0])
    assert isinstance(outcome, Rejected) and outcome.reason is RefusalReason.KEY_NOT_ALLOWED
    assert "exponent 3" in outcome.detail
    good = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert isinstance(issue(demo_pki, make_csr("sensor-1", [DOMAIN], key=good)[0]), Issued)


@pytest.mark.parametrize("e", [1, 17, 65535, 65538, 2**256 + 1])
def test_exponents_outside_the_baseline_range_are_refused(e: int) -> None:
    with pytest.raises(PolicyError):
        check_rsa_exponent(e)


@pytest.mark.parametrize("attributes", [
    [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"ou{i}") for i in range(300)],
    [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Operator\x00Co")],
    [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Operator\nCo")],
    [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Operator\x1bCo")],
    [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "oC\u202erotarepO")],  # bidi override
])
def test_absurd_subjects_are_refused(demo_pki: PKI, attributes: list[x509.NameAttribute]) -> None:
    outcome = issue(demo_pki, make_csr("sensor-1", [DOMAIN], extra_subject=attributes)[0])
    assert isinstance(outcome, Rejected) and outcome.reason is RefusalReason.SUBJECT_NOT_ALLOWED


def test_control_characters_in_uri_sans_are_refused(demo_pki: PKI) -> None:
    uri = x509.UniformResourceIdentifier("urn:iotpki:domain:building-42.operator.example\x00x")
    outcome = issue(demo_pki, make_csr("sensor-1", [uri])[0])
    assert isinstance(outcome, Rejected) and outcome.reason is RefusalReason.SAN_NOT_ALLOWED
