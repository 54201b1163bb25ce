"""One settings tree: the environment is read once (`Settings.from_environment`) and each
service gets its part when it is built; nothing patches a service afterwards."""

from __future__ import annotations

import dataclasses
import re
from datetime import timedelta
from pathlib import Path

import pytest

import iotpki
from iotpki.app import build_pki
from iotpki.core.revocation.crl import CRLPolicy
from iotpki.settings import (
    HANDOFF,
    BodyLimits,
    ListenerLimits,
    Settings,
    TLSFiles,
    worker_settings,
)


def test_crl_timing_and_expiry_scan_come_from_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IOTPKI_CRL_VALIDITY", "3d")
    monkeypatch.setenv("IOTPKI_DELTA_CRL_INTERVAL", "2h")
    monkeypatch.setenv("IOTPKI_EXPIRY_SCAN_SECONDS", "60")
    settings = Settings.from_environment(data_dir=tmp_path)
    assert settings.crl_policy.full_validity == timedelta(days=3)
    assert settings.crl_policy.delta_interval == timedelta(hours=2)
    assert settings.crl_policy.full_interval == CRLPolicy().full_interval
    assert settings.expiry_scan_seconds == 60


def test_the_crl_publisher_is_built_with_the_settings_policy(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IOTPKI_CA_PASSPHRASE", "test passphrase, not a secret")
    policy = CRLPolicy(full_validity=timedelta(days=3))
    pki = build_pki(Settings(data_dir=tmp_path / "data", crl_policy=policy))
    try:
        assert pki.crls.policy == policy
    finally:
        pki.close()


def test_trusted_proxies_come_from_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IOTPKI_TRUSTED_PROXIES", "10.0.0.1, 10.0.0.2,,")
    assert Settings.from_environment(data_dir=tmp_path).trusted_proxies == ("10.0.0.1",
                                                                            "10.0.0.2")


def test_console_origins_come_from_the_environment_as_browsers_send_them(
        tmp_path: Path) -> None:
    settings = Settings.from_environment(tmp_path, env={
        "IOTPKI_CONSOLE_ORIGINS": "https://PKI.example.com:443/, https://pki.example.com:8443,"})
    assert settings.console_origins == ("https://pki.example.com", "https://pki.example.com:8443")


def test_listener_and_body_limits_and_tls_check_come_from_the_environment(
        tmp_path: Path) -> None:
    settings = Settings.from_environment(tmp_path, env={
        "IOTPKI_HEADER_TIMEOUT": "2.5", "IOTPKI_MAX_CONNECTIONS": "7",
        "IOTPKI_REST_MAX_BODY": "1000", "IOTPKI_TLS_CHECK_SECONDS": "1",
        "IOTPKI_TRUSTED_PROXIES": "10.0.0.9"})
    assert settings.listener == ListenerLimits(header_timeout=2.5, max_connections=7,
                                               exempt=frozenset({"10.0.0.9"}))
    assert settings.rest_bodies.for_path("/api/v1/audit") == 1000
    assert settings.tls_check_seconds == 1.0


def test_command_line_proxies_replace_the_environment_and_are_exempt_from_the_cap(
        tmp_path: Path) -> None:
    settings = Settings.from_environment(tmp_path, env={"IOTPKI_TRUSTED_PROXIES": "10.0.0.1"})
    chosen = settings.with_trusted_proxies(["192.0.2.1", " "])
    assert chosen.trusted_proxies == ("192.0.2.1",)
    assert chosen.listener.exempt == {"192.0.2.1"}


def test_the_handoff_to_listener_processes_carries_every_field(tmp_path: Path) -> None:
    """`iotpki serve` hands its settings to the listener processes as JSON: every field
    survives (each is set away from its default here, so a new field the hand-over does
    not carry fails this test)."""
    default = Settings(data_dir=tmp_path)
    changed = Settings(
        data_dir=tmp_path / "elsewhere", database_url="postgresql+psycopg://u@h/db",
        database_read_url="postgresql+psycopg://u@replica/db", database_read_max_lag=0.25,
        public_url="https://pki.example", previous_public_urls=("http://old.example",),
        public_url_source="IOTPKI_PUBLIC_URL", allow_unencrypted_keys=True, cmp_check_after=7,
        maintenance_profile="device-maintenance", key_backend="pkcs11",
        pkcs11_module=tmp_path / "module.so", pkcs11_token="pkcs11:token=other",
        cmp_confirm_timeout=60, secret_lock_after=3, secret_guesses_per_minute=4,
        approval_queue_cap=5, approval_submissions_per_minute=6,
        crl_policy=CRLPolicy(full_validity=timedelta(days=3), debounce=timedelta(seconds=1.5)),
        expiry_scan_seconds=60.5, trusted_proxies=("10.0.0.1",),
        acme_http_port=5002, acme_tls_port=5001, acme_resolver="127.0.0.1:5353",
        acme_connect_address="127.0.0.1", acme_orders_per_hour=1,
        acme_organization_orders_per_hour=2,
        listener=ListenerLimits(header_timeout=1.5, max_connections=9,
                                exempt=frozenset({"10.0.0.1", "10.0.0.2"})),
        rest_bodies=BodyLimits(1000, {"/bulk": 5000}),
        tls=TLSFiles(tmp_path / "c.pem", tmp_path / "k.pem", tmp_path / "cas.pem", True),
        tls_check_seconds=0.5, console_origins=("https://pki.example.com",))
    unchanged = [f.name for f in dataclasses.fields(Settings)
                 if getattr(changed, f.name) == getattr(default, f.name)]
    assert unchanged == []
    assert Settings.from_handoff(changed.handoff()) == changed
    assert Settings.from_handoff(default.handoff()) == default


def test_a_listener_process_reads_the_handed_over_settings(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    handed = Settings(data_dir=tmp_path, public_url="https://handed.example",
                      listener=ListenerLimits(max_connections=3))
    monkeypatch.setenv(HANDOFF, handed.handoff())
    monkeypatch.setenv("IOTPKI_PUBLIC_URL", "http://ignored.example")
    worker_settings.cache_clear()
    try:
        assert worker_settings() == handed
    finally:
        worker_settings.cache_clear()


def test_only_the_settings_loader_reads_the_environment() -> None:
    """Issue 19: configuration is read in one place. What else touches os.environ passes
    it on to a child process, or reads a secret where it is used (docs/architecture.md)."""
    allowed = {
        "settings.py",  # the loader
        "keys/passphrase.py", "keys/token_pin.py",  # secrets, read where a key is opened
        "cli/authority.py",  # the passphrase of a key being imported (a secret)
        "agent/hooks.py", "cli/demo_broker.py",  # the environment given to a child process
    }
    package = Path(iotpki.__file__).parent
    readers = {str(p.relative_to(package)) for p in package.rglob("*.py")
               if re.search(r"os\.environ|getenv", p.read_text())}
    assert readers <= allowed, readers - allowed
