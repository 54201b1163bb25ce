"""Creating, importing and exporting authorities."""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from iotpki.app import PKI
from iotpki.core.ca.authority import AuthorityKind
from iotpki.core.ca.ca_certificate import CASpec
from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.core.errors import ConfigurationError, ConflictError, NotFoundError, RefusalReason
from iotpki.core.outcomes import Issued, Rejected
from iotpki.wire.chain import encode_pem_chain, encode_pkcs7_chain
from iotpki.wire.keys import KEY_TYPES, UnsupportedKeyError, generate_private_key
from iotpki.wire.names import parse_subject
from tests.conftest import KEY_BACKEND
from tests.factories import make_csr
from tests.interop.peers import pkilint_errors, write_pem

SPEC = CASpec(parse_subject("CN=Test Root,O=Test"), timedelta(days=3650), path_length=1)
TOKEN_KEY_TYPES = ("ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "rsa-4096")
software_keys_only = pytest.mark.skipif(
    KEY_BACKEND != "software", reason="checks the software backend's key files")


@pytest.fixture
def org_pki(pki: PKI) -> PKI:
    pki.authorities.ensure_organization("testorg", "Test Org", "test")
    return pki


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_root_and_intermediate_for_every_key_type(
    org_pki: PKI, key_type: str, tmp_path: Path
) -> None:
    if org_pki.settings.key_backend == "pkcs11" and key_type not in TOKEN_KEY_TYPES:
        with pytest.raises(UnsupportedKeyError, match="cannot be kept on a PKCS#11 token"):
            org_pki.authorities.create("root", "testorg", key_type, SPEC, "test")
        assert org_pki.authorities.list() == []
        return
    root = org_pki.authorities.create("root", "testorg", key_type, SPEC, "test")
    sub_spec = CASpec(parse_subject("CN=Test Issuing,O=Test"), timedelta(days=365), 0)
    sub = org_pki.authorities.create("issuing", "testorg", key_type, sub_spec, "test", "root")
    assert root.kind is AuthorityKind.ROOT and sub.kind is AuthorityKind.INTERMEDIATE
    sub.certificate.verify_directly_issued_by(root.certificate)
    root.certificate.verify_directly_issued_by(root.certificate)
    bc = sub.certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    assert sub.full_chain == (sub.certificate, root.certificate)
    if not key_type.startswith("ml-dsa"):  # pkilint does not know the ML-DSA OIDs yet
        assert pkilint_errors(write_pem(tmp_path / "sub.pem", [sub.certificate])) == []


def test_name_constraints_are_written_and_enforced(org_pki: PKI) -> None:
    constraints = x509.NameConstraints([x509.DNSName("operator.example")], None)
    spec = CASpec(parse_subject("CN=Constrained,O=Test"), timedelta(days=365), 0, constraints)
    org_pki.authorities.create("constrained", "testorg", "ec-p256", spec, "test")
    cert = org_pki.authorities.get("constrained").certificate
    ext = cert.extensions.get_extension_for_class(x509.NameConstraints)
    assert ext.critical and ext.value == constraints
    inside, _ = make_csr("svc", [x509.DNSName("a.operator.example")])
    outside, _ = make_csr("svc", [x509.DNSName("a.elsewhere.example")])
    ok = org_pki.issuance.issue(IssuanceRequest("constrained", "service", inside, "t"))
    refused = org_pki.issuance.issue(IssuanceRequest("constrained", "service", outside, "t"))
    assert isinstance(ok, Issued)
    assert isinstance(refused, Rejected) and refused.reason is RefusalReason.NAME_CONSTRAINTS


@software_keys_only
def test_duplicate_label_is_refused_and_leaves_no_key(org_pki: PKI) -> None:
    org_pki.authorities.create("root", "testorg", "ec-p256", SPEC, "test")
    keys_before = sorted(org_pki.settings.key_dir.iterdir())
    with pytest.raises(ConflictError):
        org_pki.authorities.create("root", "testorg", "ec-p256", SPEC, "test")
    assert sorted(org_pki.settings.key_dir.iterdir()) == keys_before


def test_unknown_organization_and_bad_label(org_pki: PKI) -> None:
    with pytest.raises(NotFoundError):
        org_pki.authorities.create("root", "nobody", "ec-p256", SPEC, "test")
    with pytest.raises(ConfigurationError, match="label"):
        org_pki.authorities.create("Bad Label!", "testorg", "ec-p256", SPEC, "test")


def test_import_existing_ca_and_issue_from_it(org_pki: PKI) -> None:
    # An existing CA made outside iotpki (here with plain cryptography).
    key = generate_private_key("ec-p256")
    from iotpki.core.ca.ca_certificate import build_ca_certificate
    from iotpki.core.ca.urls import PublicURLs
    from iotpki.core.clock import SystemClock
    cert = build_ca_certificate(SPEC, key.public_key(), key, SystemClock().now(), None,
                                PublicURLs("http://x.example"))
    imported = org_pki.authorities.import_authority("legacy", "testorg", cert, [], key, "test")
    assert imported.can_issue
    csr, _ = make_csr("svc", [x509.DNSName("svc.example.com")])
    assert isinstance(org_pki.issuance.issue(IssuanceRequest("legacy", "service", csr, "t")), Issued)


def test_import_refuses_a_key_that_does_not_match(org_pki: PKI) -> None:
    root = org_pki.authorities.create("root", "testorg", "ec-p256", SPEC, "test")
    with pytest.raises(ConfigurationError, match="does not match"):
        org_pki.authorities.import_authority(
            "other", "testorg", root.certificate, [], generate_private_key("ec-p256"), "test")


def test_trust_anchor_is_certificate_only_and_cannot_issue(org_pki: PKI) -> None:
    root = org_pki.authorities.create("root", "testorg", "ec-p256", SPEC, "test")
    anchor = org_pki.authorities.import_trust_anchor("supplier", "testorg", root.certificate, "t")
    assert anchor.kind is AuthorityKind.TRUST_ANCHOR and not anchor.can_issue
    csr, _ = make_csr("svc", [x509.DNSName("svc.example.com")])
    outcome = org_pki.issuance.issue(IssuanceRequest("supplier", "service", csr, "t"))
    assert isinstance(outcome, Rejected) and outcome.reason is RefusalReason.AUTHORITY_CANNOT_ISSUE


def test_trust_anchor_must_be_a_ca(demo_pki: PKI) -> None:
    csr, _ = make_csr("svc", [x509.DNSName("svc.example.com")])
    leaf = demo_pki.issuance.issue(IssuanceRequest("operatorco-operations", "service", csr, "t"))
    assert isinstance(leaf, Issued)
    with pytest.raises(ConfigurationError, match="not a CA"):
        demo_pki.authorities.import_trust_anchor("leaf", "operatorco", leaf.certificate, "t")


def test_export_chain_as_pem_and_pkcs7(demo_pki: PKI, tmp_path: Path) -> None:
    chain = demo_pki.authorities.get("deviceco-devices").full_chain
    assert x509.load_pem_x509_certificates(encode_pem_chain(chain)) == list(chain)
    der = encode_pkcs7_chain(chain)
    assert set(pkcs7.load_der_pkcs7_certificates(der)) == set(chain)  # a SET OF: DER-sorted
    path = tmp_path / "chain.p7c"
    path.write_bytes(der)
    shown = subprocess.run(["openssl", "pkcs7", "-inform", "DER", "-in", str(path),
                            "-print_certs", "-noout"], capture_output=True, text=True, check=True)
    assert "CN = DeviceCo Device CA" in shown.stdout and "CN = DeviceCo Root CA" in shown.stdout


@software_keys_only
def test_ca_keys_are_encrypted_pkcs8_files_readable_only_by_owner(demo_pki: PKI) -> None:
    files = list(demo_pki.settings.key_dir.iterdir())
    assert len(files) == 6
    for path in files:
        assert path.stat().st_mode & 0o777 == 0o600
        assert path.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
        with pytest.raises(TypeError):  # no passphrase, no key
            serialization.load_pem_private_key(path.read_bytes(), None)
