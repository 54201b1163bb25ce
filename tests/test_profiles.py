"""Profile files are validated when loaded; codecs for names and durations round-trip."""

from __future__ import annotations

import contextlib
import ipaddress
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from hypothesis import given
from hypothesis import strategies as st

from iotpki.app import default_profiles_text, load_profiles
from iotpki.core.ca.profile import PROFILE_KINDS, parse_duration, parse_profiles
from iotpki.core.errors import ConfigurationError
from iotpki.wire.errors import DecodeError
from iotpki.wire.names import format_san, parse_san

BASE: dict[str, Any] = {"kind": "device", "validity": "1y", "key_types": ["ec-p256"],
                        "key_usage": ["digital_signature"]}


def _load(**changes: Any) -> None:
    spec = {**BASE, **changes}
    parse_profiles({"profiles": {"p": {k: v for k, v in spec.items() if v is not None}}})


def test_default_profile_file_covers_every_kind() -> None:
    profiles = parse_profiles(yaml.safe_load(default_profiles_text()))
    assert {p.kind for p in profiles.values()} == set(PROFILE_KINDS)


@pytest.mark.parametrize(("changes", "message"), [
    ({"kind": "toaster"}, "kind has unknown value"),
    ({"key_types": ["rsa-1024"]}, "key_types has unknown value"),
    ({"key_usage": ["key_cert_sign"]}, "key_usage has unknown value"),
    ({"extended_key_usage": ["any"]}, "extended_key_usage has unknown value"),
    ({"validity": "forever"}, "bad duration"),
    ({"validity": None}, "missing field validity"),
    ({"colour": "blue"}, "unknown field"),
    ({"san": {"allowed": ["x400"]}}, "san.allowed has unknown value"),
    ({"san": {"dns_suffixes": ["*.example.com"]}}, "wildcards are never issued"),
    ({"subject": {"required": []}}, "must require a subjectAltName"),
    ({"key_types": "ec-p256"}, "must be a list of strings"),
])
def test_invalid_profiles_are_refused_with_the_field_named(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        _load(**changes)


def test_profile_file_must_have_profiles(tmp_path: Path) -> None:
    bad = tmp_path / "profiles.yaml"
    bad.write_text("hello: [")
    with pytest.raises(ConfigurationError, match="not valid YAML"):
        load_profiles(bad)
    bad.write_text("- a list\n")
    with pytest.raises(ConfigurationError, match="'profiles:' mapping"):
        load_profiles(bad)


def test_durations() -> None:
    assert parse_duration("24h") == timedelta(hours=24)
    assert parse_duration("90d") == timedelta(days=90)
    assert parse_duration("2y") == timedelta(days=730)
    assert parse_duration(30) == timedelta(days=30)
    for bad in ("0d", "1w", "", "d", "-1d"):
        with pytest.raises(ValueError):
            parse_duration(bad)


_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
_sans = st.one_of(
    st.lists(_label, min_size=1, max_size=4).map(lambda ls: x509.DNSName(".".join(ls))),
    st.ip_addresses().map(lambda ip: x509.IPAddress(ipaddress.ip_address(ip))),
    _label.map(lambda s: x509.UniformResourceIdentifier(f"urn:iotpki:domain:{s}")),
)


@given(_sans)
def test_san_text_round_trips(name: x509.GeneralName) -> None:
    assert parse_san(format_san(name)) == name


@given(st.text(max_size=40))
def test_san_parser_never_crashes(text: str) -> None:
    with contextlib.suppress(DecodeError):
        parse_san(text)
