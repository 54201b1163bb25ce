"""Key archival (profile `key_archival: true`): a centrally generated key is kept sealed
(AES-256-GCM under the CA passphrase, `keys.sealing`) and audited; without the flag it is
never stored. In-process through the CMP server core."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime

from cryptography.hazmat.primitives import serialization

from iotpki.app import PKI, build_sealer
from iotpki.core.ra.enrollment import fingerprint
from iotpki.core.ra.registration import RegistrationMethod
from iotpki.core.ra.registration_service import RegistrationSpec
from iotpki.wire.cmp.client_requests import encode_keygen_cert_req_msg, encode_mac_request
from iotpki.wire.cmp.messages import decode_pki_message
from iotpki.wire.cmp.protection import MACProtection, PBMParameters
from iotpki.wire.der import SEQUENCE, tlv
from iotpki.wire.names import parse_subject
from tests.cmp.conftest import CA, DOMAIN
from tests.cmp.keygen_peer import certified_key_pair


def _central_ir(pki: PKI) -> bytes:
    created = pki.registrations.create(RegistrationSpec(
        "operatorco", CA, "operational", RegistrationMethod.ONE_TIME_SECRET,
        subject=parse_subject("CN=sensor-9"), domain=DOMAIN), "operatorco:crm")
    assert created.secret is not None
    protection = MACProtection(created.secret.encode(), PBMParameters(
        os.urandom(16), "2.16.840.1.101.3.4.2.1", 1000, "1.2.840.113549.2.9"))
    request = encode_keygen_cert_req_msg(parse_subject("CN=sensor-9"))
    der = encode_mac_request("ir", tlv(SEQUENCE, request), protection,
                             created.registration.id.encode(), datetime.now(UTC),
                             implicit_confirm=True)
    return pki.cmp.handle("", decode_pki_message(der))


def test_archived_key_is_sealed_and_matches_the_certificate(demo_pki: PKI) -> None:
    profiles = demo_pki.profiles
    assert isinstance(profiles, dict)
    profiles["operational"] = replace(profiles["operational"], key_archival=True)
    certificate, _ = certified_key_pair(_central_ir(demo_pki))
    with demo_pki.database.unit_of_work() as uow:
        archived = uow.key_archive.get(fingerprint(certificate))
    assert archived is not None and archived.authority == CA
    plain = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert plain not in archived.sealed
    sealer = build_sealer(demo_pki.settings)
    assert sealer is not None
    key = serialization.load_der_private_key(sealer.unseal(archived.sealed), None)
    assert key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == plain
    audit = [e.record for e in demo_pki.audit.entries(limit=None)
             if e.record.action == "key.server-generated"]
    assert [(a.outcome, a.details["archived"]) for a in audit] == [("success", True)]


def test_without_archival_the_key_is_not_stored(demo_pki: PKI) -> None:
    certificate, _ = certified_key_pair(_central_ir(demo_pki))
    with demo_pki.database.unit_of_work() as uow:
        assert uow.key_archive.get(fingerprint(certificate)) is None
