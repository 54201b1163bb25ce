"""Every profile's output passes pkilint (no ERROR/FATAL) and `openssl verify`."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509

from iotpki.app import PKI
from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.core.outcomes import Issued
from tests.factories import domain_uri, make_csr
from tests.interop.peers import openssl_verify, pkilint_errors, write_pem

pytestmark = pytest.mark.interop

URI = x509.UniformResourceIdentifier
CASES = {
    "component": ("chipco-components", "chip-0001", [URI("urn:chipco:chip:0001")], "ec-p256"),
    "device": ("deviceco-devices", "sensor-0001", [URI("urn:deviceco:sensor:0001")], "ed25519"),
    "operational": ("operatorco-operations", "sensor-0001",
                    [domain_uri("building-42.operator.example"),
                     x509.DNSName("sensor-0001.building-42.operator.example")], "ec-p256"),
    "authorization": ("operatorco-operations", None, [URI("urn:iotpki:resource:door-7")], "ec-p256"),
    "service": ("operatorco-operations", "broker",
                [x509.DNSName("broker.building-42.operator.example")], "rsa-2048"),
    "ocsp-responder": ("operatorco-operations", "OCSP responder", [], "ec-p256"),
    "manifest-signer": ("chipco-components", "ChipCo manifests", [], "ec-p384"),
    "code-signing": ("deviceco-devices", "DeviceCo firmware", [], "ec-p256"),
    "cmp-protection": ("operatorco-operations", "CMP operatorco-operations", [], "ec-p256"),
    "api-client": ("operatorco-operations", "crm-gateway", [], "ec-p256"),
    "key-delivery": ("deviceco-devices", "Key delivery deviceco-devices", [], "ec-p256"),
    "scep-ra": ("operatorco-operations", "SCEP RA scep:", [], "rsa-2048"),
}
METHODS = {"api-client": "cli"}  # issued only by the operator at the console


def _csr_for(profile: str) -> bytes:
    _, cn, sans, key_type = CASES[profile]
    org = []
    if profile in ("manifest-signer", "code-signing"):
        from cryptography.x509.oid import NameOID
        org = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example Org")]
    csr, _ = make_csr(cn, sans, key_type=key_type, extra_subject=org)
    return csr


def test_every_default_profile_is_covered(demo_pki: PKI) -> None:
    assert set(CASES) == set(demo_pki.profiles)


@pytest.mark.parametrize("profile", sorted(CASES))
def test_profile_output_passes_pkilint_and_openssl(
    demo_pki: PKI, profile: str, tmp_path: Path
) -> None:
    authority = CASES[profile][0]
    outcome = demo_pki.issuance.issue(IssuanceRequest(
        authority, profile, _csr_for(profile), "t", method=METHODS.get(profile, "direct")))
    assert isinstance(outcome, Issued), outcome
    assert pkilint_errors(write_pem(tmp_path / "cert.pem", [outcome.certificate])) == []
    purpose = {"service": ["-purpose", "sslserver"], "operational": ["-purpose", "sslclient"],
               "api-client": ["-purpose", "sslclient"]}
    result = openssl_verify(tmp_path, outcome.certificate, outcome.chain, *purpose.get(profile, []))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("authority", ["chipco-root", "chipco-components"])
def test_ca_certificates_pass_pkilint(demo_pki: PKI, authority: str, tmp_path: Path) -> None:
    cert = demo_pki.authorities.get(authority).certificate
    assert pkilint_errors(write_pem(tmp_path / "ca.pem", [cert])) == []
