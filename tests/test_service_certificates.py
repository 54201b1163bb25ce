"""Service certificates (`core.ca.service_certificates`): one mechanism, one table, one
renewal rule for the OCSP responder (RFC 6960 §4.2.2.2), CMP protection (RFC 9483 §3.1),
EST key delivery (RFC 7030 §4.4.2) and manifest signer keys; the key goes where the
issuing CA's key is (software or a SoftHSM2 token); the migration moves existing rows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from sqlalchemy import Engine, create_engine, select, text

from iotpki.app import PKI, build_pki
from iotpki.core.ca.ca_certificate import CASpec
from iotpki.core.ca.ports import Purpose
from iotpki.core.ca.service_certificates import ServiceCertificates
from iotpki.settings import Settings
from iotpki.store.database import MIGRATIONS
from iotpki.store.schema import service_certificates
from iotpki.wire.names import parse_subject
from tests.hsm import SoftHSM
from tests.servers import ManualClock

CA = "deviceco-devices"
ID_KP_CMC_CA = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.27")


def _ekus(certificate: x509.Certificate) -> set[x509.ObjectIdentifier]:
    try:
        return set(certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return set()


def test_every_purpose_is_one_row_in_one_table(demo_pki: PKI) -> None:
    certificates = demo_pki.service_certificates
    signers = {p: certificates.current(CA, p) for p in
               (Purpose.OCSP_SIGNING, Purpose.CMP_PROTECTION, Purpose.KEY_DELIVERY)}
    demo_pki.manifests.signer("deviceco", "test")
    with demo_pki.database.engine.connect() as conn:
        rows = conn.execute(select(service_certificates.c.owner, service_certificates.c.purpose,
                                   service_certificates.c.key_ref)).all()
    assert sorted((r.owner, r.purpose) for r in rows) == sorted(
        [(CA, "cmp-protection"), (CA, "key-delivery"), (CA, "ocsp-responder"),
         ("deviceco", "manifest-signer")])
    assert len({r.key_ref for r in rows}) == 4  # a key of its own for each purpose
    assert _ekus(signers[Purpose.OCSP_SIGNING].certificate) == {ExtendedKeyUsageOID.OCSP_SIGNING}
    assert _ekus(signers[Purpose.CMP_PROTECTION].certificate) == {ID_KP_CMC_CA}
    assert _ekus(signers[Purpose.KEY_DELIVERY].certificate) == set()
    for signer in signers.values():
        assert signer.certificate.issuer == signer.chain[0].subject
        assert signer.chain == demo_pki.authorities.get(CA).full_chain


@pytest.mark.parametrize("purpose", list(Purpose))
def test_one_renewal_rule_for_every_purpose(demo_pki: PKI, purpose: Purpose) -> None:
    """Kept for the first two thirds of its lifetime, replaced (new key) in the last third."""
    clock = ManualClock(datetime.now(UTC))
    certificates = ServiceCertificates(demo_pki.database.unit_of_work, demo_pki.keys,
                                       demo_pki.issuance, clock)
    owner, issuer = ("deviceco", CA) if purpose is Purpose.MANIFEST_SIGNING else (CA, None)
    first = certificates.current(owner, purpose, issuer)
    # Another node (a fresh service) picks up the stored one instead of making its own.
    other = ServiceCertificates(demo_pki.database.unit_of_work, demo_pki.keys,
                                demo_pki.issuance, clock)
    assert other.current(owner, purpose, issuer).record == first.record
    life = first.record.not_after - clock.moment
    clock.moment += life * 0.6
    assert certificates.current(owner, purpose, issuer) is first
    clock.moment += life * 0.1  # into the last third
    second = certificates.current(owner, purpose, issuer)
    assert second.certificate.serial_number != first.certificate.serial_number
    assert second.record.key_ref != first.record.key_ref


def test_service_keys_follow_the_ca_onto_its_token(softhsm: SoftHSM, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A CA whose key is on a PKCS#11 token gets every service key on that token, the
    manifest signer's included, while the default backend stays software."""
    monkeypatch.setenv("IOTPKI_CA_PASSPHRASE", "test passphrase, not a secret")
    pki = build_pki(Settings(data_dir=tmp_path / "data", pkcs11_token=softhsm.uri,
                             public_url="http://pki.test:8080"))
    try:
        pki.authorities.ensure_organization("tokenco", "TokenCo", "test")
        label = f"tokenco-{tmp_path.name[-12:]}".lower().replace("_", "-")
        pki.authorities.create(label, "tokenco", "ec-p256", CASpec(
            parse_subject("CN=TokenCo CA,O=TokenCo"), timedelta(days=365), 0), "test",
            key_location=softhsm.uri)
        refs = [pki.service_certificates.current(label, p).record.key_ref
                for p in (Purpose.OCSP_SIGNING, Purpose.CMP_PROTECTION, Purpose.KEY_DELIVERY)]
        pki.manifests.signer("tokenco", "test")  # made by the organization's only CA
        refs.append(pki.service_certificates.current(
            "tokenco", Purpose.MANIFEST_SIGNING, label).record.key_ref)
        assert all(ref.startswith("pkcs11:") for ref in refs), refs
        assert all(softhsm.label in pki.keys.location_of(ref) for ref in refs)
    finally:
        pki.close()


def test_the_migration_moves_existing_rows(tmp_path: Path) -> None:
    """Rows of ocsp_responders, cmp_protection and organization_keys (revision 0009) become
    service certificates; the downgrade puts them back."""
    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    _alembic(engine, command.upgrade, "0009")
    der = _certificate_der()
    at = "2026-01-01 00:00:00.000000"
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO organizations (id, label, name, created_at) "
                          "VALUES (1, 'org', 'Org', :at)"), {"at": at})
        conn.execute(text(
            "INSERT INTO authorities (id, label, organization_id, kind, certificate, chain_pem, "
            "created_at) VALUES (1, 'ca', 1, 'root', :der, '', :at)"), {"der": der, "at": at})
        conn.execute(text("INSERT INTO ocsp_responders VALUES (1, 'software:ocsp', :der, :at, "
                          ":at)"), {"der": der, "at": at})
        conn.execute(text("INSERT INTO cmp_protection VALUES (1, 'software:cmp', :der, :at)"),
                     {"der": der, "at": at})
        conn.execute(text("INSERT INTO organization_keys (organization_id, purpose, key_ref, "
                          "certificate, created_at) VALUES (1, 'manifest-signer', "
                          "'software:signer', :der, :at)"), {"der": der, "at": at})
    _alembic(engine, command.upgrade, "head")
    with engine.connect() as conn:
        moved = sorted(conn.execute(text(
            "SELECT owner, purpose, key_ref FROM service_certificates")).all())
    assert moved == [("ca", "cmp-protection", "software:cmp"),
                     ("ca", "ocsp-responder", "software:ocsp"),
                     ("org", "manifest-signer", "software:signer")]
    _alembic(engine, command.downgrade, "0009")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT key_ref FROM ocsp_responders")).scalar() == \
            "software:ocsp"
        assert conn.execute(text("SELECT key_ref FROM cmp_protection")).scalar() == \
            "software:cmp"
        assert conn.execute(text("SELECT key_ref FROM organization_keys")).scalar() == \
            "software:signer"
    engine.dispose()


def _alembic(engine: Engine, step: Callable[[Config, str], None], revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        step(config, revision)


def _certificate_der() -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding

    key = ec.generate_private_key(ec.SECP256R1())
    name = parse_subject("CN=migration test")
    now = datetime.now(UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now).not_valid_after(now + timedelta(days=1))
                   .sign(key, hashes.SHA256()))
    return certificate.public_bytes(Encoding.DER)
