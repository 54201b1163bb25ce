""""The domain is the authorization" (issue 15 item 13): OperatorCo's CA tries to issue names
in DeviceCo's domain in every form a name can take, and is refused every time. Runs on
SQLite and PostgreSQL (the ownership check reads the store in the issuing transaction)."""

from __future__ import annotations

import ipaddress

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from iotpki.app import PKI
from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.core.ca.ports import CertificateQuery
from iotpki.core.errors import ConfigurationError, ConflictError, RefusalReason
from iotpki.core.outcomes import Issued, Rejected
from iotpki.core.ra.registration import RegistrationMethod
from iotpki.core.ra.registration_service import RegistrationSpec
from tests.factories import domain_uri, make_csr

CA = "operatorco-operations"
OURS = "building-42.operator.example"  # operatorco's (demo)
THEIRS = "lab.deviceco.example"


@pytest.fixture
def pki(demo_pki: PKI) -> PKI:
    demo_pki.organizations.add_domain("deviceco", THEIRS, "t")
    demo_pki.organizations.add_network(THEIRS, "10.7.0.0/16", "t")
    demo_pki.organizations.add_network(THEIRS, "2001:db8:7::/48", "t")
    demo_pki.organizations.add_network(OURS, "10.42.0.0/16", "t")
    return demo_pki


def issue(pki: PKI, sans: list[x509.GeneralName], profile: str = "service",
          cn: str = "svc-1", **kwargs: object) -> Issued | Rejected:
    csr, _ = make_csr(cn, sans, **kwargs)  # type: ignore[arg-type]
    return pki.issuance.issue(IssuanceRequest(CA, profile, csr, "attacker"))


def refused(outcome: Issued | Rejected) -> RefusalReason:
    assert isinstance(outcome, Rejected), outcome
    return outcome.reason


def count(pki: PKI) -> int:
    return len(pki.certificates.find(CertificateQuery(limit=10_000)))


@pytest.mark.parametrize("name", [
    x509.DNSName(f"gw.{THEIRS}"),
    x509.DNSName(THEIRS.upper() + "."),  # case and the root dot change nothing
    x509.UniformResourceIdentifier(f"https://gw.{THEIRS}/telemetry"),
    x509.UniformResourceIdentifier(f"mqtts://ops@GW.{THEIRS.upper()}:8883/x"),
    x509.IPAddress(ipaddress.ip_address("10.7.1.2")),
    x509.IPAddress(ipaddress.ip_address("2001:db8:7::9")),
    x509.UniformResourceIdentifier("https://10.7.200.1:8443/"),
    x509.UniformResourceIdentifier("coaps://[2001:db8:7::1]/"),
])
def test_another_organizations_name_is_refused_whatever_its_san_type(
        pki: PKI, name: x509.GeneralName) -> None:
    before = count(pki)
    assert refused(issue(pki, [x509.DNSName(f"ok.{OURS}"), name])) is \
        RefusalReason.DOMAIN_NOT_OWNED
    assert count(pki) == before  # nothing written but the audit of the refusal
    last = pki.audit.entries(limit=None)[-1].record
    assert (last.action, last.outcome) == ("certificate.issue", "refused")
    assert last.details["reason"] == "domain-not-owned"


@pytest.mark.parametrize("urn", [
    f"URN:IOTPKI:DOMAIN:{THEIRS.upper()}",  # RFC 8141 §3.1: scheme and NID are case-insensitive
    f"urn:IoTPKI:domain:{THEIRS}",
    f"urn:iotpki:Domain:{THEIRS}",
])
def test_domain_urn_is_normalized_before_the_ownership_check(pki: PKI, urn: str) -> None:
    """RFC 8141 §3.1: `URN:IoTPKI:...` is the same URN as `urn:iotpki:...`."""
    outcome = issue(pki, [x509.UniformResourceIdentifier(urn)], profile="operational")
    assert refused(outcome) is RefusalReason.DOMAIN_NOT_OWNED
    # The device profile accepts any `urn:` URI: the claim is caught there too.
    outcome = pki.issuance.issue(IssuanceRequest(
        CA, "device", make_csr("d-1", [x509.UniformResourceIdentifier(urn)])[0], "attacker"))
    assert refused(outcome) is RefusalReason.DOMAIN_NOT_OWNED


def test_own_domain_urn_is_issued_in_canonical_form(pki: PKI) -> None:
    outcome = issue(pki, [x509.UniformResourceIdentifier(f"URN:IoTPKI:Domain:{OURS.upper()}")],
                    profile="operational")
    assert isinstance(outcome, Issued), outcome
    sans = outcome.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert list(sans.value) == [domain_uri(OURS)]


def test_subject_cn_naming_another_organizations_host_is_refused(pki: PKI) -> None:
    """TLS clients that fall back to the CN would read it as a host name."""
    assert refused(issue(pki, [x509.DNSName(f"ok.{OURS}")], cn=f"gw.{THEIRS}")) is \
        RefusalReason.DOMAIN_NOT_OWNED


def test_subject_cn_naming_another_organizations_address_is_refused(pki: PKI) -> None:
    assert refused(issue(pki, [x509.DNSName(f"ok.{OURS}")], cn="10.7.3.4")) is \
        RefusalReason.DOMAIN_NOT_OWNED


def test_email_in_another_organizations_domain_is_refused(pki: PKI) -> None:
    outcome = issue(pki, [x509.RFC822Name(f"release@{THEIRS}")], profile="manifest-signer",
                    extra_subject=[x509.NameAttribute(NameOID.ORGANIZATION_NAME, "OperatorCo")])
    assert refused(outcome) is RefusalReason.DOMAIN_NOT_OWNED


def test_names_in_own_domain_or_in_no_domain_are_issued(pki: PKI) -> None:
    outcome = issue(pki, [
        x509.DNSName(f"gw.{OURS}"), x509.UniformResourceIdentifier(f"https://gw.{OURS}/x"),
        x509.IPAddress(ipaddress.ip_address("10.42.0.9")),
        x509.IPAddress(ipaddress.ip_address("192.0.2.1")),  # in no domain's network
        x509.DNSName("broker.unclaimed.example")])
    assert isinstance(outcome, Issued), outcome


@pytest.mark.parametrize("name", [
    x509.UniformResourceIdentifier("urn:iotpki:domain:lab%2edeviceco.example"),
    x509.UniformResourceIdentifier("urn:iotpki:domain:"),
    x509.UniformResourceIdentifier("https://gw.lab%2edeviceco.example/"),
    x509.IPAddress(ipaddress.ip_network("10.7.0.0/16")),  # RFC 5280 §4.2.1.6: one address
])
def test_names_whose_domain_cannot_be_told_are_refused(pki: PKI, name: x509.GeneralName) -> None:
    profile = "operational" if str(name.value).startswith("urn:") else "service"
    assert refused(issue(pki, [x509.DNSName(f"ok.{OURS}"), name], profile=profile)) is \
        RefusalReason.SAN_NOT_ALLOWED


def test_most_specific_network_decides(pki: PKI) -> None:
    pki.organizations.add_domain("operatorco", "annex.building-42.operator.example", "t")
    pki.organizations.add_network("annex.building-42.operator.example", "10.42.9.0/24", "t")
    assert isinstance(issue(pki, [x509.IPAddress(ipaddress.ip_address("10.42.9.1"))]), Issued)
    with pytest.raises(ConflictError, match="overlaps"):  # no nesting across organizations
        pki.organizations.add_network(THEIRS, "10.42.128.0/17", "t")
    with pytest.raises(ConflictError, match="overlaps"):
        pki.organizations.add_network(THEIRS, "10.0.0.0/8", "t")


def test_a_domain_tree_has_one_owner(pki: PKI) -> None:
    """Else DeviceCo could claim `x.building-42...` and issue names under OperatorCo's domain."""
    with pytest.raises(ConflictError, match="inside"):
        pki.organizations.add_domain("deviceco", f"evil.{OURS}", "t")
    with pytest.raises(ConflictError, match="encloses"):
        pki.organizations.add_domain("deviceco", "operator.example", "t")
    pki.organizations.add_domain("operatorco", f"annex.{OURS}", "t")  # its own subtree: fine


def test_registration_in_another_organizations_domain_is_refused(pki: PKI) -> None:
    """The RA route: a registrar cannot approve a name the issuance would refuse."""
    for sans in ((x509.DNSName(f"gw.{THEIRS}"),),
                 (x509.UniformResourceIdentifier(f"URN:IOTPKI:domain:{THEIRS}"),),
                 (x509.IPAddress(ipaddress.ip_address("10.7.0.1")),)):
        with pytest.raises(ConfigurationError, match=r"deviceco|does not own"):
            pki.registrations.create(RegistrationSpec(
                "operatorco", CA, "service", RegistrationMethod.ONE_TIME_SECRET,
                sans=sans), "registrar")
