"""`store.prepared`: statements run on the DB-API cursor store exactly what SQLAlchemy
stores, read back the same values, and fail with SQLAlchemy's errors (SQLite, PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError

from iotpki.app import PKI
from iotpki.store.prepared import Prepared
from iotpki.store.schema import cmp_nonces

AT = datetime(2026, 11, 27, 17, 45, 1, 123456, tzinfo=UTC)
_INSERT = Prepared(cmp_nonces.insert().inline(), ("nonce", "seen_at"))
_SEEN = Prepared(select(cmp_nonces.c.seen_at).where(cmp_nonces.c.nonce == bindparam("nonce")))


def test_prepared_rows_equal_sqlalchemy_rows(pki: PKI) -> None:
    engine = pki.database.engine
    with engine.begin() as conn:
        _INSERT.execute(conn, {"nonce": "prepared", "seen_at": AT})
        _INSERT.execute_many(conn, [{"nonce": f"many-{i}", "seen_at": AT} for i in range(3)])
        conn.execute(cmp_nonces.insert().values(nonce="core", seen_at=AT))
    with engine.connect() as conn:
        raw = dict(conn.exec_driver_sql("SELECT nonce, seen_at FROM cmp_nonces").all())
        assert raw["prepared"] == raw["core"] == raw["many-2"]  # same stored form
        assert conn.execute(select(cmp_nonces.c.seen_at).where(
            cmp_nonces.c.nonce == "prepared")).scalar() == AT
        assert _SEEN.first(conn, {"nonce": "core"}) == (AT,)
        assert _SEEN.first(conn, {"nonce": "absent"}) is None


def test_prepared_raises_sqlalchemy_integrity_error(pki: PKI) -> None:
    with pki.database.engine.connect() as conn, conn.begin():
        _INSERT.execute(conn, {"nonce": "once", "seen_at": AT})
        with pytest.raises(IntegrityError):
            _INSERT.execute(conn, {"nonce": "once", "seen_at": AT})


def test_prepared_large_batch_with_shared_values_equals_sqlalchemy_rows(pki: PKI) -> None:
    """A batch large enough for memoized bind processing, the timestamp given once as a
    shared value, stores what one Core insert stores."""
    engine = pki.database.engine
    with engine.begin() as conn:
        _INSERT.execute_many(conn, [{"nonce": f"bulk-{i}"} for i in range(1500)],
                             {"seen_at": AT})
        conn.execute(cmp_nonces.insert().values(nonce="core-bulk", seen_at=AT))
    with engine.connect() as conn:
        raw = {nonce: seen for nonce, seen in conn.exec_driver_sql(
            "SELECT nonce, seen_at FROM cmp_nonces").all() if "bulk" in nonce}
        assert len(raw) == 1501
        assert {raw[f"bulk-{i}"] for i in range(1500)} == {raw["core-bulk"]}
        assert _SEEN.first(conn, {"nonce": "bulk-1499"}) == (AT,)


def test_timestamps_inside_case_expressions_go_through_utc_datetime() -> None:
    """A bind inside CASE has no column to take its type from: the registration updates give
    it `UTCDateTime`, so SQLite stores the same text as every other timestamp (not the
    driver's own rendering of an aware datetime)."""
    from sqlalchemy.dialects import sqlite

    from iotpki.store import registrations

    dialect = sqlite.dialect()
    for statement in (registrations._CONSUME, registrations._NOTE_FAILED_SECRET):
        compiled = statement._compile(dialect)
        at = compiled.binds[compiled.names.index("at")]
        assert at is not None
        assert at(AT) == cmp_nonces.c.seen_at.type.dialect_impl(dialect).bind_processor(
            dialect)(AT)


def test_rows_given_as_tuples_store_what_sqlalchemy_stores(pki: PKI) -> None:
    """`execute_rows` (a manifest import's million rows): per-row text as tuples, the shared
    timestamp processed once, the stored form equal to a Core insert's, errors SQLAlchemy's."""
    engine = pki.database.engine
    with engine.begin() as conn:
        _INSERT.execute_rows(conn, ("nonce",), [(f"row-{i}",) for i in range(3)], {"seen_at": AT})
        conn.execute(cmp_nonces.insert().values(nonce="core-row", seen_at=AT))
    with engine.connect() as conn:
        raw = dict(conn.exec_driver_sql("SELECT nonce, seen_at FROM cmp_nonces").all())
        assert raw["row-0"] == raw["row-2"] == raw["core-row"]
        assert _SEEN.first(conn, {"nonce": "row-1"}) == (AT,)
    with engine.connect() as conn, conn.begin(), pytest.raises(IntegrityError):
        _INSERT.execute_rows(conn, ("nonce",), [("twice",), ("twice",)], {"seen_at": AT})


def test_rows_as_tuples_refuse_columns_that_need_processing(pki: PKI) -> None:
    with pki.database.engine.connect() as conn, conn.begin():
        with pytest.raises(ValueError, match="seen_at needs bind processing"):
            _INSERT.execute_rows(conn, ("nonce", "seen_at"), [("a", AT)], {})
        with pytest.raises(ValueError, match="not columns"):
            _INSERT.execute_rows(conn, ("nonce", "colour"), [("a", "red")], {"seen_at": AT})
