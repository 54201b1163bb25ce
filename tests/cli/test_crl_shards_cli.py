"""`iotpki authority crl-shards`: the operator shards an authority's CRL by expiry window
(RFC 5280 §5.2.5, docs/crl.md) or stops; a bad window is refused before anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509

from tests.factories import make_csr
from tests.test_cli import CLI

CA = "operatorco-operations"
DOMAIN_SAN = "uri:urn:iotpki:domain:building-42.operator.example"


@pytest.fixture
def cli(tmp_path: Path) -> CLI:
    made = CLI(tmp_path / "data", None)
    made.run("init", "--demo")
    return made


def issued_cdp(cli: CLI, directory: Path, name: str) -> str:
    csr, _ = make_csr(name)
    (directory / f"{name}.csr").write_bytes(csr)
    pem = directory / f"{name}.pem"
    cli.run("cert", "issue", "--ca", CA, "--profile", "operational", "--csr",
            str(directory / f"{name}.csr"), "--san", DOMAIN_SAN, "--out", str(pem))
    certificate = x509.load_pem_x509_certificate(pem.read_bytes())
    points = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    return str(points[0].full_name[0].value)  # type: ignore[index]


def test_sharding_on_and_off(cli: CLI, tmp_path: Path) -> None:
    shown = cli.json("authority", "crl-shards", CA, "--window", "7d")
    assert shown["crl_shard_window"] == 7 * 86_400  # type: ignore[index]
    assert issued_cdp(cli, tmp_path, "sharded").startswith(f"http://pki.test:8080/crl/{CA}.")
    entries = cli.json("audit", "list", "--json")
    assert any(e["action"] == "authority.crl_sharding" for e in entries)  # type: ignore[index,union-attr]
    assert cli.json("authority", "crl-shards", CA, "--off")[  # type: ignore[index]
        "crl_shard_window"] is None
    assert issued_cdp(cli, tmp_path, "whole") == f"http://pki.test:8080/crl/{CA}.crl"


def test_bad_settings_are_refused(cli: CLI) -> None:
    assert "bad duration" in cli.run("authority", "crl-shards", CA, "--window", "30m",
                                     expect=2).stderr
    assert "--window" in cli.run("authority", "crl-shards", CA, expect=2).stderr
    assert "unknown authority" in cli.run("authority", "crl-shards", "nope", "--window", "7d",
                                          expect=1).stderr
    assert cli.json("authority", "show", CA)["crl_shard_window"] is None  # type: ignore[index]


def test_crl_commands_list_publish_and_show_shards(cli: CLI, tmp_path: Path) -> None:
    cli.run("authority", "crl-shards", CA, "--window", "7d")
    url = issued_cdp(cli, tmp_path, "sharded")
    shard = int(url.removesuffix(".crl").rsplit(".", 1)[1])
    [live] = cli.json("crl", "shards")  # type: ignore[misc]
    assert (live["authority"], live["shard"], live["number"]) == (CA, shard, None)
    published = cli.json("crl", "publish", CA, "--shard", str(shard))
    assert [(c["kind"], c["number"], c["shard"]) for c in published] == [  # type: ignore[index,union-attr]
        ("full", 1, shard), ("delta", 1, shard)]
    der = tmp_path / "shard.crl"
    shown = cli.json("crl", "show", CA, "--shard", str(shard), "--out", str(der))
    assert shown["number"] == 1 and shown["serials"] == []  # type: ignore[index]
    point = x509.load_der_x509_crl(der.read_bytes()).extensions.get_extension_for_class(
        x509.IssuingDistributionPoint).value
    assert point.full_name == [x509.UniformResourceIdentifier(url)]
    assert "no CRL shard" in cli.run("crl", "publish", CA, "--shard", str(shard + 1),
                                     expect=1).stderr
