"""One settings tree: the environment is read once (`Settings.from_environment`) and each
service gets its part when it is built; nothing patches a service afterwards."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from iotpki.app import build_pki
from iotpki.core.revocation.crl import CRLPolicy
from iotpki.settings import Settings


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
