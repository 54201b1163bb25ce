"""Secrets at rest (issue 15 item 9), on SQLite and PostgreSQL: a registration's one-time
secret never lies in clear in the stored idempotent response, idempotency keys expire,
and the data directory and database files are private even when they existed before."""

from __future__ import annotations

import dataclasses
import os
import stat
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from iotpki.app import api_services, build_pki
from iotpki.core.integration.principal import Role
from iotpki.protocols.rest.app import create_api
from iotpki.protocols.rest.idempotency import IdempotencyKeys
from iotpki.settings import Settings
from iotpki.store.schema import idempotency_keys
from tests.api.conftest import OWN, APIClient, World

REGISTRATIONS = "/api/v1/registrations"
BODY = {"authority": "operatorco-operations", "profile": "operational",
        "method": "one-time-secret", "domain": "building-42.operator.example"}


class Later:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


def stored_bodies(world: World) -> list[bytes]:
    with world.pki.database.engine.connect() as conn:
        return [bytes(b) for b in conn.execute(select(idempotency_keys.c.body)).scalars()]


def test_stored_response_is_sealed_and_replays_the_secret(world: World) -> None:
    key, headers = world.key(OWN, Role.REGISTRAR), {"Idempotency-Key": "crm-1"}
    first = world.client.post(REGISTRATIONS, key, json=BODY, headers=headers)
    secret = first.json()["secret"]
    assert first.status_code == 201 and secret
    bodies = stored_bodies(world)
    assert len(bodies) == 1 and secret.encode() not in bodies[0]
    assert first.json()["id"].encode() not in bodies[0]  # the whole body is sealed
    again = world.client.post(REGISTRATIONS, key, json=BODY, headers=headers)
    assert again.json() == first.json()  # a retry after a lost answer still gets it


def test_without_a_sealer_the_secret_is_withheld(world: World) -> None:
    """No passphrase, no sealer: the stored response keeps everything but the secret."""
    pki = world.pki
    keys = IdempotencyKeys(pki.database.unit_of_work, pki.clock, sealer=None)
    client = APIClient(create_api(dataclasses.replace(api_services(pki), idempotency=keys)))
    try:
        key, headers = world.key(OWN, Role.REGISTRAR), {"Idempotency-Key": "crm-2"}
        first = client.post(REGISTRATIONS, key, json=BODY, headers=headers)
        secret = first.json()["secret"]
        assert secret and all(secret.encode() not in b for b in stored_bodies(world))
        again = client.post(REGISTRATIONS, key, json=BODY, headers=headers)
        assert again.headers["Idempotent-Secrets-Withheld"] == "true"
        assert again.json() == {**first.json(), "secret": None}
    finally:
        client.close()


def test_idempotency_keys_expire(world: World) -> None:
    pki = world.pki
    key, headers = world.key(OWN, Role.REGISTRAR), {"Idempotency-Key": "crm-3"}
    first = world.client.post(REGISTRATIONS, key, json=BODY, headers=headers)
    later = IdempotencyKeys(pki.database.unit_of_work, Later(pki.clock.now() + timedelta(
        hours=25)), sealer=None)
    client = APIClient(create_api(dataclasses.replace(api_services(pki), idempotency=later)))
    try:
        again = client.post(REGISTRATIONS, key, json=BODY, headers=headers)
        assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers
        assert again.json()["id"] != first.json()["id"]  # a new request: the key was forgotten
        assert len(stored_bodies(world)) == 1  # the expired response was deleted
    finally:
        client.close()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_data_directory_and_database_are_private_even_if_they_existed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IOTPKI_CA_PASSPHRASE", "test passphrase, not a secret")
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)
    (data / "iotpki.db").touch()
    os.chmod(data / "iotpki.db", 0o644)
    pki = build_pki(Settings(data_dir=data))
    try:
        pki.organizations.domains()  # a connection: SQLite makes its WAL and -shm files
        assert mode(data) == 0o700
        for name in ("iotpki.db", "iotpki.db-wal", "iotpki.db-shm"):
            if (data / name).exists():
                assert mode(data / name) == 0o600, name
        assert (data / "iotpki.db-wal").exists()
    finally:
        pki.close()
