"""Manifests: openssl accepts our CMS; every import check refuses with its reason."""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from iotpki.app import PKI
from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.core.ra.registration import RegistrationMethod
from iotpki.core.supply_chain.manifests import ImportTarget, ManifestRefused
from iotpki.wire.keys import generate_private_key
from iotpki.wire.manifest import (
    Manifest,
    ManifestEntry,
    decode_manifest,
    decrypt_manifest,
    encode_manifest,
    encrypt_manifest,
    is_enveloped,
    open_signed_manifest,
    sign_manifest,
)
from iotpki.wire.names import parse_subject
from tests.interop.peers import write_pem
from tests.supply_chain.story import DEVICE_TARGET, make_chip


def _export(pki: PKI, recipient: str = "deviceco", **kwargs: object) -> bytes:
    chips = [make_chip(pki, n) for n in (1, 2, 3)]
    return pki.manifests.export("chipco", recipient, [c.record for c in chips], "chipco:ra",
                                **kwargs)  # type: ignore[arg-type]


@pytest.mark.interop
def test_openssl_cms_verify_accepts_our_manifest(demo_pki: PKI, tmp_path: Path) -> None:
    signed = _export(demo_pki)
    (tmp_path / "manifest.der").write_bytes(signed)
    root = write_pem(tmp_path / "root.pem", [demo_pki.authorities.get("chipco-root").certificate])
    result = subprocess.run(
        ["openssl", "cms", "-verify", "-inform", "DER", "-in", str(tmp_path / "manifest.der"),
         "-CAfile", str(root), "-out", str(tmp_path / "content.json")],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Verification successful" in result.stderr
    manifest = decode_manifest((tmp_path / "content.json").read_bytes())
    assert manifest.sender == "chipco" and len(manifest.entries) == 3


def test_import_creates_one_registration_per_entry_in_one_audited_step(demo_pki: PKI) -> None:
    signed = _export(demo_pki)
    result = demo_pki.manifests.import_manifest("deviceco", signed, DEVICE_TARGET, "deviceco:ra")
    assert result.entries == 3 and result.sender == "chipco"
    registrations = demo_pki.registrations.find("deviceco")
    assert len(registrations) == 3
    assert {r.method for r in registrations} == {RegistrationMethod.PREVIOUS_STAGE}
    assert {r.manifest for r in registrations} == {result.delivery_id}
    assert {r.component_id for r in registrations} == {"chip-0001", "chip-0002", "chip-0003"}


def _refusal(pki: PKI, organization: str, data: bytes,
             target: ImportTarget = DEVICE_TARGET) -> str:
    before = len(pki.registrations.find())
    with pytest.raises(ManifestRefused) as info:
        pki.manifests.import_manifest(organization, data, target, "ra")
    assert len(pki.registrations.find()) == before
    last = pki.audit.entries(limit=None)[-1]
    assert (last.record.action, last.record.outcome) == ("manifest.import", "refused")
    return info.value.reason


def test_wrong_recipient(demo_pki: PKI) -> None:
    target = ImportTarget("operatorco-operations", "operational")
    assert _refusal(demo_pki, "operatorco", _export(demo_pki), target) == "wrong-recipient"


def test_untrusted_supplier(demo_pki: PKI) -> None:
    # OperatorCo trusts DeviceCo, not ChipCo.
    signed = _export(demo_pki, recipient="operatorco")
    target = ImportTarget("operatorco-operations", "operational")
    assert _refusal(demo_pki, "operatorco", signed, target) == "untrusted-supplier"


def test_tampered_content(demo_pki: PKI) -> None:
    signed = bytearray(_export(demo_pki))
    position = signed.find(b"chip-0002")
    signed[position] = ord("X")
    assert _refusal(demo_pki, "deviceco", bytes(signed)) == "bad-signature"


def test_garbage_and_expired(demo_pki: PKI) -> None:
    assert _refusal(demo_pki, "deviceco", b"\x30\x03\x02\x01\x00") == "malformed"
    expired = _export(demo_pki, lifetime=timedelta(seconds=-1))
    assert _refusal(demo_pki, "deviceco", expired) == "expired"


def test_revoked_signer(demo_pki: PKI) -> None:
    signed = _export(demo_pki)
    signer = open_signed_manifest(signed).signer
    demo_pki.revocation.revoke("chipco-components", signer.serial_number,
                               x509.ReasonFlags.key_compromise, "chipco:ra", operator=True)
    assert _refusal(demo_pki, "deviceco", signed) == "signer-revoked"


def test_encrypted_manifest_round_trip(demo_pki: PKI) -> None:
    key = generate_private_key("rsa-2048")
    csr = x509.CertificateSigningRequestBuilder().subject_name(
        parse_subject("CN=DeviceCo manifests,O=DeviceCo")).sign(key, hashes.SHA256())
    recipient = demo_pki.issuance.issue(IssuanceRequest(
        "deviceco-devices", "manifest-signer", csr.public_bytes(Encoding.DER), "t"))
    signed = _export(demo_pki)
    enveloped = encrypt_manifest(signed, recipient.certificate)  # type: ignore[union-attr]
    assert is_enveloped(enveloped) and not is_enveloped(signed)
    assert signed not in enveloped
    assert decrypt_manifest(enveloped, recipient.certificate, key) == signed  # type: ignore[union-attr]


def test_a_chip_key_cannot_sign_a_manifest(demo_pki: PKI) -> None:
    """A component certificate chains to the same anchor as ChipCo's manifest signer; its
    key must still not be able to forge a delivery."""
    chip = make_chip(demo_pki, 7)
    forged = Manifest("forged-1", "chipco", "deviceco", chip.record.issued_at,
                      chip.record.issued_at + timedelta(days=1),
                      (ManifestEntry("ab" * 32, "CN=x", "1f", "chip-x"),))
    signed = sign_manifest(encode_manifest(forged), chip.chain[0], chip.key, list(chip.chain[1:]))
    assert _refusal(demo_pki, "deviceco", signed) == "not-a-signer"
