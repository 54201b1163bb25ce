"""Migrations 0013 and 0015 on requests queued before them (RFC 7030 §4.2.3): each pending
request gets the key of its subject and public key, so a client repeating it finds it;
requests queued twice for one key (the old match was on CSR bytes) keep the key on the
oldest only, so one undecided request per key remains; the downgrades undo both."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, text

from iotpki.core.ra.pending import request_key
from iotpki.store.database import MIGRATIONS
from iotpki.wire.keys import generate_private_key
from tests.factories import make_csr


def _alembic(engine: Engine, step: Callable[[Config, str], None], revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        step(config, revision)


def test_old_pending_requests_get_their_key_once(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    _alembic(engine, command.upgrade, "0012")
    key = generate_private_key("ec-p256")
    first, again = make_csr("chip-old", key=key)[0], make_csr("chip-old", key=key)[0]
    other = make_csr("chip-other")[0]
    assert first != again  # ECDSA: another signature, the same subject and key
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO organizations (id, label, name, created_at) "
                          "VALUES (1, 'org', 'Org', '2026-01-01 00:00:00')"))
        conn.execute(text(
            "INSERT INTO authorities (id, label, organization_id, kind, certificate, chain_pem, "
            "created_at) VALUES (1, 'ca', 1, 'root', x'30', '', '2026-01-01 00:00:00')"))
        for name, csr, minute in (("a", first, 1), ("b", again, 2), ("c", other, 3)):
            conn.execute(text(
                "INSERT INTO pending_requests (id, authority_id, profile, csr, requester, status, "
                "created_at) VALUES (:id, 1, 'p', :csr, 'x', 'pending', :at)"),
                {"id": name, "csr": csr, "at": f"2026-01-01 00:0{minute}:00"})
    _alembic(engine, command.upgrade, "head")
    with engine.connect() as conn:
        keys = dict(conn.execute(text("SELECT id, request_key FROM pending_requests")).all())
    assert keys == {"a": request_key(first), "b": None, "c": request_key(other)}
    assert request_key(first) == request_key(again)
    _alembic(engine, command.downgrade, "0012")
    with engine.connect() as conn:
        columns = [row[1] for row in conn.execute(text("PRAGMA table_info(pending_requests)"))]
        tables = [row[0] for row in conn.execute(text(
            "SELECT name FROM sqlite_master WHERE type = 'table'"))]
    assert "request_key" not in columns and "approval_challenges" not in tables
    engine.dispose()
