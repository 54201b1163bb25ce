"""The single issuance path: what the profile decides, and what a refusal leaves behind."""

from __future__ import annotations

import ipaddress
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from iotpki.app import PKI
from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.core.ca.ports import CertificateQuery
from iotpki.core.errors import RefusalReason
from iotpki.core.outcomes import Issued, Rejected
from tests.factories import domain_uri, make_csr

CA = "operatorco-operations"
DOMAIN = "building-42.operator.example"


def issue(pki: PKI, csr: bytes, profile: str = "operational", **kwargs: object) -> Issued | Rejected:
    return pki.issuance.issue(IssuanceRequest(CA, profile, csr, "test", **kwargs))  # type: ignore[arg-type]


def certificate_count(pki: PKI) -> int:
    return len(pki.certificates.find(CertificateQuery(limit=10000)))


def test_operational_certificate_carries_what_the_profile_decides(demo_pki: PKI) -> None:
    csr, _ = make_csr("sensor-1", [domain_uri(DOMAIN), x509.DNSName("s1." + DOMAIN)])
    outcome = issue(demo_pki, csr)
    assert isinstance(outcome, Issued)
    cert = outcome.certificate
    ext = cert.extensions
    assert ext.get_extension_for_class(x509.BasicConstraints).value.ca is False
    ku = ext.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and not ku.value.key_cert_sign
    assert list(ext.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]
    san = ext.get_extension_for_class(x509.SubjectAlternativeName).value
    assert domain_uri(DOMAIN) in san
    issuer = outcome.chain[0]
    assert (ext.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier ==
            issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest)
    cdp = ext.get_extension_for_class(x509.CRLDistributionPoints).value
    assert cdp[0].full_name == [x509.UniformResourceIdentifier(f"http://pki.test:8080/crl/{CA}.crl")]
    aia = {d.access_method: d.access_location.value
           for d in ext.get_extension_for_class(x509.AuthorityInformationAccess).value}
    assert aia[AuthorityInformationAccessOID.OCSP] == f"http://pki.test:8080/ocsp/{CA}"
    assert aia[AuthorityInformationAccessOID.CA_ISSUERS] == f"http://pki.test:8080/ca/{CA}.crt"
    assert cert.serial_number.bit_length() >= 64
    cert.verify_directly_issued_by(issuer)


def test_validity_comes_from_the_profile(demo_pki: PKI) -> None:
    csr, _ = make_csr("sensor-1", [domain_uri(DOMAIN)])
    outcome = issue(demo_pki, csr)
    assert isinstance(outcome, Issued)
    lifetime = outcome.certificate.not_valid_after_utc - outcome.certificate.not_valid_before_utc
    assert timedelta(days=365) <= lifetime <= timedelta(days=365, minutes=2)


def test_validity_is_clamped_to_the_issuer(demo_pki: PKI) -> None:
    csr, _ = make_csr("chip-1", [x509.UniformResourceIdentifier("urn:chip:1")])
    outcome = demo_pki.issuance.issue(IssuanceRequest("chipco-components", "component", csr, "t"))
    assert isinstance(outcome, Issued)  # component profile asks 20 years, the CA has 10
    assert outcome.certificate.not_valid_after_utc == outcome.chain[0].not_valid_after_utc


def test_serials_are_unique_and_records_are_indexed(demo_pki: PKI) -> None:
    csr, _ = make_csr("sensor-1", [domain_uri(DOMAIN)])
    outcomes = [issue(demo_pki, csr) for _ in range(20)]
    serials = {o.record.serial for o in outcomes if isinstance(o, Issued)}
    assert len(serials) == 20
    record = outcomes[0].record  # type: ignore[union-attr]
    assert demo_pki.certificates.get(CA, record.serial) == record
    assert demo_pki.certificates.get_by_fingerprint(record.fingerprint).serial == record.serial


@pytest.mark.parametrize("key_type", ["ec-p256", "ec-p384", "ed25519", "rsa-2048"])
def test_allowed_key_types_are_issued(demo_pki: PKI, key_type: str) -> None:
    csr, _ = make_csr("sensor-1", [domain_uri(DOMAIN)], key_type=key_type)
    assert isinstance(issue(demo_pki, csr), Issued)


REFUSALS = [
    ("wildcard", dict(sans=[x509.DNSName("*." + DOMAIN)]), RefusalReason.WILDCARD),
    ("san type", dict(sans=[domain_uri(DOMAIN), x509.RFC822Name("a@b.example")]),
     RefusalReason.SAN_NOT_ALLOWED),
    ("uri outside prefix", dict(sans=[x509.UniformResourceIdentifier("https://evil.example")]),
     RefusalReason.SAN_NOT_ALLOWED),
    ("no san", dict(sans=[]), RefusalReason.SAN_NOT_ALLOWED),
    ("rsa 4096 not in profile", dict(sans=[domain_uri(DOMAIN)], key_type="rsa-4096"),
     RefusalReason.KEY_NOT_ALLOWED),
    ("subject attribute", dict(sans=[domain_uri(DOMAIN)], extra_subject=[
        x509.NameAttribute(NameOID.EMAIL_ADDRESS, "a@b.example")]),
     RefusalReason.SUBJECT_NOT_ALLOWED),
    ("missing CN", dict(common_name=None, sans=[domain_uri(DOMAIN)]),
     RefusalReason.SUBJECT_NOT_ALLOWED),
    ("bad ip-less dns", dict(sans=[x509.DNSName("bad..name")]), RefusalReason.SAN_NOT_ALLOWED),
]


@pytest.mark.parametrize(("case", "csr_args", "reason"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusals_are_specific_audited_and_write_nothing(
    demo_pki: PKI, case: str, csr_args: dict[str, object], reason: RefusalReason
) -> None:
    csr, _ = make_csr(**csr_args)  # type: ignore[arg-type]
    before = certificate_count(demo_pki)
    outcome = issue(demo_pki, csr)
    assert isinstance(outcome, Rejected), case
    assert outcome.reason is reason
    assert outcome.detail
    assert certificate_count(demo_pki) == before
    last = demo_pki.audit.entries(limit=None)[-1]
    assert last.record.outcome == "refused"
    assert last.record.details["reason"] == reason.value


def test_malformed_and_wrongly_signed_csrs_are_refused(demo_pki: PKI) -> None:
    assert issue(demo_pki, b"not a csr").reason is RefusalReason.MALFORMED_REQUEST  # type: ignore[union-attr]
    csr, _ = make_csr("sensor-1", [domain_uri(DOMAIN)])
    tampered = bytearray(csr)
    tampered[-5] ^= 0x01  # inside the signature value
    outcome = issue(demo_pki, bytes(tampered))
    assert isinstance(outcome, Rejected)
    assert outcome.reason in (RefusalReason.BAD_SIGNATURE, RefusalReason.MALFORMED_REQUEST)
    assert certificate_count(demo_pki) == 0


def test_requested_validity_past_the_issuer_is_refused(demo_pki: PKI) -> None:
    csr, _ = make_csr("sensor-1", [domain_uri(DOMAIN)])
    issuer_end = demo_pki.authorities.get(CA).certificate.not_valid_after_utc
    outcome = issue(demo_pki, csr, not_after=issuer_end + timedelta(days=1))
    assert isinstance(outcome, Rejected)
    assert outcome.reason is RefusalReason.VALIDITY_EXCEEDS_ISSUER
    too_long = issue(demo_pki, csr, not_after=demo_pki.authorities.get(CA).created_at
                     + timedelta(days=400))
    assert isinstance(too_long, Rejected)
    assert too_long.reason is RefusalReason.VALIDITY_EXCEEDS_PROFILE


def test_ra_approved_values_replace_the_csr(demo_pki: PKI) -> None:
    csr, _ = make_csr("whatever-the-device-says", [x509.DNSName("evil.example")])
    approved = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sensor-7")])
    outcome = issue(demo_pki, csr, subject=approved,
                    sans=(domain_uri(DOMAIN), x509.IPAddress(ipaddress.ip_address("192.0.2.7"))))
    assert isinstance(outcome, Issued)
    assert outcome.record.subject == "CN=sensor-7"
    assert outcome.record.sans == (f"uri:urn:iotpki:domain:{DOMAIN}", "ip:192.0.2.7")


def test_unknown_profile_and_authority(demo_pki: PKI) -> None:
    csr, _ = make_csr("sensor-1", [domain_uri(DOMAIN)])
    assert issue(demo_pki, csr, profile="nope").reason is RefusalReason.UNKNOWN_PROFILE  # type: ignore[union-attr]
    outcome = demo_pki.issuance.issue(IssuanceRequest("nope", "operational", csr, "t"))
    assert isinstance(outcome, Rejected) and outcome.reason is RefusalReason.UNKNOWN_AUTHORITY


def test_anonymous_authorization_certificate_has_critical_san(demo_pki: PKI) -> None:
    csr, _ = make_csr(None, [x509.UniformResourceIdentifier("urn:iotpki:resource:door-7")])
    outcome = issue(demo_pki, csr, profile="authorization")
    assert isinstance(outcome, Issued)
    assert len(outcome.certificate.subject) == 0
    assert outcome.certificate.extensions.get_extension_for_class(
        x509.SubjectAlternativeName).critical


def test_batch_issuance_keeps_order_and_audits_every_decision(demo_pki: PKI) -> None:
    good, _ = make_csr("sensor-1", [domain_uri(DOMAIN)])
    wildcard, _ = make_csr("sensor-2", [x509.DNSName("*." + DOMAIN)])
    requests = [IssuanceRequest(CA, "operational", csr, "factory-station-1")
                for csr in (good, wildcard, good)]
    before = len(demo_pki.audit.entries(limit=None))
    outcomes = demo_pki.issuance.issue_many(requests)
    assert [type(o) for o in outcomes] == [Issued, Rejected, Issued]
    assert certificate_count(demo_pki) == 2
    entries = demo_pki.audit.entries(limit=None)[before:]
    assert [e.record.outcome for e in entries] == ["success", "refused", "success"]
    assert demo_pki.audit.problems()[1] == []
