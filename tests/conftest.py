"""Shared fixtures. Every test that takes `pki` runs on SQLite and on PostgreSQL.

With IOTPKI_TEST_KEY_BACKEND=pkcs11 the CA keys (and every key the PKI makes) go to a
SoftHSM2 token made for the run (tests/hsm.py), in this process and in the servers and CLI
processes the tests start.

PostgreSQL (127.0.0.1:5432, database `test`, or $IOTPKI_TEST_POSTGRES_URL) must be
there in CI (CI=true): a missing server fails the run there and is skipped locally.
Each test gets its own PostgreSQL schema, dropped afterwards.

The protocol suites (tests/est, tests/cmp, tests/revocation, tests/agent) share one demo PKI
and one real server per module and database (`shared_demo_pki`, tests/servers.py): a server
start costs seconds of CPU. Tests there read the audit log and counters relative to their
own start, never assume an empty database. See docs/testing.md.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from iotpki.app import PKI, build_pki
from iotpki.cli.demo_setup import create_demo_hierarchy
from iotpki.settings import Settings
from tests.hsm import SoftHSM, make_softhsm, softhsm_available
from tests.servers import PASSPHRASE
from tests.store_templates import clone_schema, seed_sqlite

# The peers installed as console scripts beside this interpreter (pkilint's lint_* commands,
# iotpki itself) must be found even when the virtual environment is not activated.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"

POSTGRES_URL = os.environ.get(
    "IOTPKI_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
KEY_BACKEND = os.environ.get("IOTPKI_TEST_KEY_BACKEND", "software")
# Where the PostgreSQL half of the database matrix runs (docs/testing.md): the core and the
# store in process (every top-level tests/test_*.py), and this cross-cutting smoke set;
# elsewhere the adapters and peers are the same on either database and PostgreSQL adds
# only a second server start. IOTPKI_TEST_FULL_MATRIX=1 runs every test on both.
FULL_MATRIX = os.environ.get("IOTPKI_TEST_FULL_MATRIX") == "1"
POSTGRES_SMOKE = frozenset({
    # one real-server module per protocol, with its real peer
    "tests/est/test_enroll.py", "tests/cmp/test_openssl_enrollment.py",
    "tests/scep/test_operations.py", "tests/acme/test_rfc8555_flow.py",
    "tests/cmc/test_cmc.py", "tests/revocation/test_ocsp_interop.py",
    "tests/agent/test_end_to_end.py", "tests/api/test_https.py",
    "tests/console/test_browser.py",  # the web console's one server, and its counts and pages
    # what leans on the database's own behaviour: status index and counters, cursors and
    # stored answers, the outbox and its claims, several nodes on one database, replay
    # tables, limits and locks
    "tests/revocation/test_ocsp.py", "tests/revocation/test_crl.py",
    "tests/revocation/test_nodes.py", "tests/api/test_idempotency_pagination.py",
    "tests/est/test_approval.py",  # one undecided request per key: a partial unique index
    "tests/supply_chain/test_story.py", "tests/supply_chain/test_manifests.py",
    "tests/lifecycle/test_events.py", "tests/lifecycle/test_webhooks.py",
    "tests/lifecycle/test_notification_worker.py",
    "tests/security/test_readers_and_writers.py", "tests/security/test_bounded_fields.py",
    "tests/security/test_secret_guessing.py", "tests/security/test_approval_queue.py",
})
HSM_TOKENS = ("iotpki-test", "iotpki-second")  # made before the module is first initialized


def postgres_available() -> str | None:
    """None if reachable, else the reason."""
    try:
        engine = create_engine(POSTGRES_URL)
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # any driver or connection error means "not here"
        return f"PostgreSQL not reachable at {POSTGRES_URL}: {exc.__class__.__name__}: {exc}"


def require_postgres() -> None:
    reason = postgres_available()
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"{reason} (CI must run the PostgreSQL tests)")
    pytest.skip(reason)


@contextmanager
def private_schema() -> Iterator[str]:
    """A URL whose connections use a fresh, private PostgreSQL schema at the newest revision,
    dropped afterwards."""
    require_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    if not clone_schema(admin, POSTGRES_URL, schema):  # migrated already (store_templates)
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        try:
            _drop_schema(admin, schema)
        finally:
            admin.dispose()


def _drop_schema(admin: Engine, schema: str, attempts: int = 10) -> None:
    """DROP SCHEMA, retried: a server process a module shared may still be finishing a
    background transaction (CRL, service-certificate check) in the schema, and PostgreSQL
    then picks the DROP as a deadlock victim or makes it wait."""
    for attempt in range(attempts):
        try:
            with admin.connect() as conn:
                conn.execute(text("SET lock_timeout = '5s'"))
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            return
        except OperationalError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.5)


@pytest.fixture
def postgres_schema_url() -> Iterator[str]:
    """A URL whose connections use a fresh, private schema."""
    with private_schema() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    """None means the embedded default (SQLite in the data directory)."""
    if request.param == "sqlite":
        return None
    return str(request.getfixturevalue("postgres_schema_url"))


MODULE_SERVERS = ("est_server", "cmp_server", "served", "agent_server", "scep_server",
                  "cmc_server", "cmc_pki", "acme_server", "approval_est", "https_server", "acme")


def on_postgres_matrix(item: pytest.Item) -> bool:
    """Whether the item is the PostgreSQL half of the database matrix."""
    callspec = getattr(item, "callspec", None)
    params = callspec.params if callspec is not None else {}
    return "postgresql" in (params.get("database_url"), params.get("module_database_url"))


def runs_on_postgres(item: pytest.Item) -> bool:
    module = item.nodeid.split("::")[0]
    return FULL_MATRIX or module.count("/") == 1 or module in POSTGRES_SMOKE


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under `pytest -n N --dist loadscope` (scripts/test.sh) every module runs on one
    worker, so a module's shared server starts once per database, not once per worker.
    (`--dist loadgroup` with `xdist_group` marks did not group anything under pytest 9:
    xdist 3.8 renames `item._nodeid`, which pytest 9 no longer reads, so every module's
    tests were spread over the workers, each starting the module's server.)

    The PostgreSQL half of the matrix is deselected outside the store tests and the smoke
    set (`POSTGRES_SMOKE`).

    A test on a module's shared server that also takes this file's `demo_pki` would work
    on two different PKIs: refused here, with the fix in the message."""
    dropped = [item for item in items if on_postgres_matrix(item) and not runs_on_postgres(item)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        gone = set(dropped)
        items[:] = [item for item in items if item not in gone]
    mixed = []
    for item in items:
        names = getattr(item, "fixturenames", ())
        if not any(name in names for name in MODULE_SERVERS):
            continue
        info = getattr(item, "_fixtureinfo", None)
        definitions = info.name2fixturedefs.get("demo_pki", ()) if info else ()
        if definitions and definitions[-1].func is demo_pki.__wrapped__:  # type: ignore[attr-defined]
            mixed.append(item.nodeid)
    if mixed:
        raise pytest.UsageError(
            "these tests take a fresh `demo_pki` and a module's shared server (a different "
            "PKI): use the server's (`scene.pki`, `est.pki`, `servers.pki`), or a private "
            "server (`private_scene`, `private_server`):\n  " + "\n  ".join(mixed))


DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="module", params=DATABASES)
def module_database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """As `database_url`, for one module: the test ids are the same (`[sqlite]`,
    `[postgresql]`) and pytest runs a module's tests grouped by database."""
    if request.param == "sqlite":
        yield None
        return
    with private_schema() as url:
        yield url


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> SoftHSM:
    """The run's SoftHSM2 tokens (one set per xdist worker); the environment points at the
    first, so child processes (servers, the CLI) find it too. Skipped without SoftHSM2
    (a failure in CI)."""
    reason = softhsm_available()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"{reason} (CI must run the PKCS#11 tests)")
        pytest.skip(reason)
    hsm = make_softhsm(tmp_path_factory.mktemp("softhsm"), HSM_TOKENS)
    os.environ.update(hsm.environment())
    if KEY_BACKEND == "pkcs11":
        os.environ["IOTPKI_KEY_BACKEND"] = "pkcs11"
    return hsm


def key_settings(request: pytest.FixtureRequest) -> dict[str, str]:
    """The Settings fields that put the run's keys where IOTPKI_TEST_KEY_BACKEND says
    (for every `settings` fixture, including the protocol suites' own)."""
    if KEY_BACKEND != "pkcs11":
        return {}
    hsm: SoftHSM = request.getfixturevalue("softhsm")
    return {"key_backend": "pkcs11", "pkcs11_token": hsm.uri}


@pytest.fixture
def settings(tmp_path: Path, database_url: str | None, monkeypatch: pytest.MonkeyPatch,
             request: pytest.FixtureRequest) -> Settings:
    monkeypatch.setenv("IOTPKI_CA_PASSPHRASE", PASSPHRASE)
    if database_url is None:
        seed_sqlite(tmp_path / "data")
    return Settings(data_dir=tmp_path / "data", database_url=database_url,
                    public_url="http://pki.test:8080", **key_settings(request))


@pytest.fixture
def pki(settings: Settings) -> Iterator[PKI]:
    instance = build_pki(settings)
    try:
        yield instance
    finally:
        instance.close()


@pytest.fixture
def demo_pki(pki: PKI) -> PKI:
    """The story's three organizations, each with a root and an issuing CA."""
    create_demo_hierarchy(pki)
    return pki


@contextmanager
def shared_demo_pki(request: pytest.FixtureRequest, directory: Path, database_url: str | None,
                    public_url: str, **environment: str) -> Iterator[PKI]:
    """The story's demo PKI for a whole module (module-scoped fixtures build it once and
    serve it with one `iotpki serve`), with the environment its server process inherits."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("IOTPKI_CA_PASSPHRASE", PASSPHRASE)
        for name, value in environment.items():
            patch.setenv(name, value)
        instance = build_pki(Settings(data_dir=directory / "data", database_url=database_url,
                                      public_url=public_url, **key_settings(request)))
        try:
            create_demo_hierarchy(instance)
            yield instance
        finally:
            instance.close()


def last_audit_seq(pki: PKI) -> int:
    """Where the audit log ends now: a test on a shared PKI reads the entries after it."""
    entries = pki.audit.entries(limit=None)
    return entries[-1].seq if entries else 0
