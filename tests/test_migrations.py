"""The Alembic migrations create exactly the tables `store.schema` describes."""

from __future__ import annotations

from datetime import timedelta

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Connection

from iotpki.app import PKI
from iotpki.store.database import MIGRATIONS
from iotpki.store.schema import metadata


def _down_and_up(conn: Connection, revision: str) -> None:
    """Migrate the store on `conn` down to `revision`, then up to the head again."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    command.downgrade(config, revision)
    command.upgrade(config, "head")


def test_migrated_schema_matches_the_model(pki: PKI) -> None:
    with pki.database.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        differences = compare_metadata(context, metadata)
    assert differences == []


def test_migrating_twice_is_harmless(pki: PKI) -> None:
    pki.database.migrate()
    with pki.database.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() is not None


def test_0022_fills_the_key_facts_and_domain_of_stored_certificates(demo_pki: PKI) -> None:
    """Certificates stored before 0022 get their key's identity and strength and their
    domain from their DER and SANs."""
    from sqlalchemy import select, update

    from iotpki.store.schema import certificates
    from tests.api.conftest import DOMAIN, issue_operational

    record = issue_operational(demo_pki, "sensor-before-0022")
    columns = ("key_id", "key_algorithm", "key_bits", "domain")
    with demo_pki.database.engine.begin() as conn:
        conn.execute(update(certificates).values(dict.fromkeys(columns)))
        _down_and_up(conn, "0021")
        row = conn.execute(select(*(certificates.c[c] for c in columns)).where(
            certificates.c.fingerprint == record.fingerprint)).one()
    facts = record.key_facts
    assert tuple(row) == (facts.key_id, "ec", 256, DOMAIN)


def test_0023_fills_the_fleet_counters_from_stored_certificates(demo_pki: PKI) -> None:
    """A store upgraded to 0023 counts its certificates as if every write had kept the
    counters: by authority, profile, status and notAfter day, and by issue hour."""
    from cryptography import x509

    from tests.api.conftest import issue_operational
    from tests.test_fleet_tallies import direct_tallies, stored_tallies

    records = [issue_operational(demo_pki, f"sensor-before-0023-{n}") for n in range(4)]
    demo_pki.revocation.revoke(records[0].authority, records[0].serial,
                               x509.ReasonFlags.certificate_hold, "test")
    demo_pki.revocation.revoke(records[1].authority, records[1].serial,
                               x509.ReasonFlags.key_compromise, "test")
    with demo_pki.database.engine.begin() as conn:
        _down_and_up(conn, "0022")
        kept, hours = stored_tallies(conn)
        assert (kept, hours) == direct_tallies(conn)
        statuses = {key[2] for key in kept}
    assert {"good", "on-hold", "revoked"} <= statuses
    assert sum(hours.values()) >= len(records)


def test_0024_records_the_keys_already_on_two_devices_of_one_owner(demo_pki: PKI) -> None:
    """The shared-key record starts from what the store holds: a key on two devices of one
    owner, not a key renewed on one device nor one on a device of each of two owners."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from tests.test_posture_checks import OTHER, OWN, holding, key_id, legacy, recorded

    def key() -> ec.EllipticCurvePrivateKey:
        return ec.generate_private_key(ec.SECP256R1())

    shared, renewed, across = key(), key(), key()
    holding(demo_pki, OWN, "sensor-a", shared)
    holding(demo_pki, OWN, "sensor-b", shared)
    once = holding(demo_pki, OWN, "sensor-renewing", renewed)
    legacy(demo_pki, "operatorco-operations", "sensor-renewing", renewed,
           demo_pki.clock.now() + timedelta(days=300), device=once)
    holding(demo_pki, OWN, "sensor-across", across)
    holding(demo_pki, OTHER, "their-sensor", across)
    before = recorded(demo_pki)
    assert before == {(OWN, key_id(shared))}
    with demo_pki.database.engine.begin() as conn:
        _down_and_up(conn, "0023")
    assert recorded(demo_pki) == before
