"""RFC 9483 §4.1.1-§4.1.4 (ir, cr, p10cr): each MUST as a request that breaks it, with the
body type, PKIStatus and exact PKIFailureInfo bit of the answer; a request the profile
cannot grant as asked is grantedWithMods or refused, never silently changed."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iotpki.wire.der import SEQUENCE, tlv
from iotpki.wire.names import parse_subject
from tests.cmp.rfc9483 import (
    Lab,
    crmf,
    extension,
    huge_rsa_spki,
    issued_count,
    new_key,
    refused,
)

BASIC_CONSTRAINTS, EXTENDED_KEY_USAGE = "2.5.29.19", "2.5.29.37"
CODE_SIGNING = bytes.fromhex("06082b06010505070303")


def test_s4_1_1_a_plain_ir_is_accepted_without_modifications(lab: Lab) -> None:
    reply = lab.post(lab.mac_request("ir", crmf(new_key()), implicit_confirm=True))
    assert (reply.body, reply.status, reply.failures) == ("ip", 0, frozenset())


def test_s4_1_1_an_oversized_key_is_bad_cert_template_before_pop(lab: Lab) -> None:
    """The POP signature is by another key: the key is refused before POP is tried."""
    der = lab.mac_request("ir", crmf(huge_rsa_spki(), pop_key=new_key()))
    refused(lab, der, "badCertTemplate", body="ip")


def test_s4_1_1_a_wrong_pop_for_an_allowed_key_is_bad_pop(lab: Lab) -> None:
    der = lab.mac_request("ir", crmf(new_key(), pop_key=new_key()))
    refused(lab, der, "badPOP", body="ip")


def test_s4_1_1_ra_verified_pop_from_an_end_entity_is_not_authorized(lab: Lab) -> None:
    der = lab.mac_request("ir", crmf(new_key(), popo=tlv(0x80, b"")))  # [0] NULL
    refused(lab, der, "notAuthorized", body="ip")


def test_s4_1_1_a_ca_certificate_template_is_bad_cert_template(lab: Lab) -> None:
    constraints = extension(BASIC_CONSTRAINTS, tlv(SEQUENCE, b"\x01\x01\xff"), critical=True)
    der = lab.mac_request("ir", crmf(new_key(), extensions=constraints))
    refused(lab, der, "badCertTemplate", body="ip")


def test_s4_1_1_an_invalid_path_len_is_bad_cert_template(lab: Lab) -> None:
    """pathLenConstraint without cA (RFC 5280 §4.2.1.9): a bad template, not a malformed
    message."""
    constraints = extension(BASIC_CONSTRAINTS, tlv(SEQUENCE, b"\x02\x01\x03"), critical=True)
    der = lab.mac_request("ir", crmf(new_key(), extensions=constraints))
    refused(lab, der, "badCertTemplate", body="ip")


def test_s4_1_1_an_extension_not_granted_is_granted_with_mods(lab: Lab) -> None:
    """RFC 9810 §5.2.3 grantedWithMods: the issued certificate leaves out the requested
    codeSigning EKU, and the answer says so."""
    usage = extension(EXTENDED_KEY_USAGE, tlv(SEQUENCE, CODE_SIGNING))
    reply = lab.post(lab.mac_request("ir", crmf(new_key(), extensions=usage),
                                     implicit_confirm=True))
    assert (reply.body, reply.status, reply.failures) == ("ip", 1, frozenset())
    certificate = reply.certificate()
    try:
        granted = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        granted = None
    assert granted is None or x509.oid.ExtendedKeyUsageOID.CODE_SIGNING not in granted


def test_s4_1_1_another_subject_than_registered_is_not_silently_changed(lab: Lab) -> None:
    reply = lab.post(lab.mac_request("ir", crmf(new_key(), subject="CN=sensor-9"),
                                     subject="CN=sensor-7", implicit_confirm=True))
    assert reply.body == "ip"
    if reply.status in (0, 1):  # issued: then with the registered subject, and told so
        assert reply.status == 1
        assert reply.certificate().subject == parse_subject("CN=sensor-7")
    else:
        assert reply.status == 2 and reply.failures == {"badCertTemplate"}


def _csr(version: int = 0) -> bytes:
    key = new_key()
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sensor-7")]))
           .sign(key, hashes.SHA256()))
    der = csr.public_bytes(serialization.Encoding.DER)
    if version:  # CertificationRequestInfo starts 30 xx 02 01 00 after the outer header
        at = der.index(b"\x02\x01\x00")
        der = der[:at] + bytes((2, 1, version)) + der[at + 3:]
    return der


def test_s4_1_4_a_p10cr_is_answered_with_a_cp(lab: Lab) -> None:
    reply = lab.post(lab.mac_request("p10cr", _csr(), implicit_confirm=True))
    assert (reply.body, reply.status) == ("cp", 0)


def test_s4_1_4_a_csr_version_other_than_v1_is_bad_data_format(lab: Lab) -> None:
    refused(lab, lab.mac_request("p10cr", _csr(version=1)), "badDataFormat", body="cp")


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(version=st.integers(min_value=1, max_value=127))
def test_s4_1_4_any_csr_version_but_v1_is_bad_data_format(lab: Lab, version: int) -> None:
    before = issued_count(lab)
    reply = lab.post(lab.mac_request("p10cr", _csr(version)))
    assert (reply.status, reply.failures) == (2, {"badDataFormat"})
    assert issued_count(lab) == before


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path_len=st.integers(min_value=0, max_value=127), critical=st.booleans())
def test_s4_1_1_any_path_len_without_ca_is_bad_cert_template(
        lab: Lab, path_len: int, critical: bool) -> None:
    constraints = extension(BASIC_CONSTRAINTS, tlv(SEQUENCE, bytes((2, 1, path_len))),
                            critical=critical)
    reply = lab.post(lab.mac_request("ir", crmf(new_key(), extensions=constraints)))
    assert (reply.body, reply.status, reply.failures) == ("ip", 2, {"badCertTemplate"})
