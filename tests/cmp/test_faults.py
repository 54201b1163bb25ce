"""No HTTP 500 from the CMP endpoint (RFC 9483 §3.6.4, RFC 9811 §3.4): when the CA's CMP
protection certificate cannot be issued (here: its profile is gone from the profile file),
the client gets an unprotected error message with systemUnavail, HTTP 200, and the refusal
is audited; nothing is issued. The request comes from our encoder, so the CMP endpoint
runs in process (`InProcessServer`) on a PKI built from the changed profile file."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from pyasn1.codec.der import decoder
from pyasn1_alt_modules import rfc9480

from iotpki.app import PKI, build_pki, default_profiles_text
from iotpki.core.ra.registration import RegistrationMethod
from iotpki.core.ra.registration_service import RegistrationSpec
from iotpki.settings import Settings
from iotpki.wire.cmp.messages import decode_pki_message
from iotpki.wire.cmp.requests import encode_cert_req_msg, encode_signed_request
from iotpki.wire.keys import generate_private_key
from iotpki.wire.names import parse_subject
from tests.cmp.conftest import CA, InProcessServer, Scene, error_failures
from tests.supply_chain.story import make_chip


@pytest.fixture
def no_protection_scene(demo_pki: PKI, settings: Settings, tmp_path: Path) -> Iterator[Scene]:
    """The operator removed the cmp-protection profile: no protection certificate."""
    document = yaml.safe_load(default_profiles_text())
    del document["profiles"]["cmp-protection"]
    settings.profiles_file.write_text(yaml.safe_dump(document))
    pki = build_pki(settings)  # reads the changed profile file, as a starting server would
    server = InProcessServer(pki)
    try:
        yield Scene(pki, server, tmp_path).for_test(tmp_path)
    finally:
        server.stop()
        pki.close()


def test_unavailable_protection_certificate_is_an_unprotected_system_unavail(
        no_protection_scene: Scene) -> None:
    scene = no_protection_scene
    demo_pki = scene.pki
    chip = make_chip(demo_pki, 7)
    demo_pki.registrations.create(RegistrationSpec(
        "deviceco", "deviceco-devices", "device", RegistrationMethod.PREVIOUS_STAGE,
        identity_fingerprint=chip.record.fingerprint), "deviceco:ra")
    request = encode_cert_req_msg(generate_private_key("ec-p256"), parse_subject("CN=sensor-7"))
    der = encode_signed_request("ir", request, chip.key, chip.chain, datetime.now(UTC))
    issued_before = _issued(demo_pki)
    for body in (der, b"\x30\x03abc"):  # a request, and garbage
        status, content_type, answer = scene.post(body, label="devices")
        assert status == 200 and content_type == "application/pkixcmp"
        assert error_failures(answer) == ("error", {"systemUnavail"})
        message, _ = decoder.decode(answer, asn1Spec=rfc9480.PKIMessage())
        assert not message["protection"].isValue  # unprotected: nothing could sign it
        assert decode_pki_message(answer).header.protection_algorithm is None
    assert _issued(demo_pki) == issued_before
    refusals = [e.record for e in demo_pki.audit.entries(limit=None)
                if e.record.action == "cmp.request"]
    assert "systemUnavail" in {r.details["failure"] for r in refusals}
    assert all(r.target in (CA, "deviceco-devices") for r in refusals)


def _issued(pki: PKI) -> int:
    return sum(1 for e in pki.audit.entries(limit=None)
               if e.record.action == "certificate.issue" and e.record.outcome == "success"
               and e.record.details.get("method") != "internal")
