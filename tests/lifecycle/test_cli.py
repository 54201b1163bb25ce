"""Devices, lifecycle events, webhooks and the expiry monitor through the `iotpki` command,
with openssl making the keys and a real HTTP receiver taking the webhooks."""

from __future__ import annotations

import json
from pathlib import Path

from iotpki.core.integration.webhook import SIGNATURE_HEADER, verify_signature
from tests.lifecycle.receiver import webhook_receiver
from tests.supply_chain.test_cli_story import _openssl_key_and_csr
from tests.test_cli import CLI


def test_device_events_and_webhooks_from_the_command_line(tmp_path: Path) -> None:
    cli = CLI(tmp_path / "data", None)
    cli.run("init", "--demo")
    chip_key, chip_csr = _openssl_key_and_csr(tmp_path, "chip-0001")
    cli.run("cert", "issue", "--ca", "chipco-components", "--profile", "component", "--csr",
            str(chip_csr), "--san", "uri:urn:chipco:chip:0001", "--chain",
            "--out", str(tmp_path / "chip.pem"))
    cli.run("manifest", "export", "--from", "chipco", "--to", "deviceco", "--ca",
            "chipco-components", "--profile", "component", "--out", str(tmp_path / "m.der"))
    cli.run("manifest", "import", str(tmp_path / "m.der"), "--org", "deviceco", "--ca",
            "deviceco-devices", "--profile", "device")
    _, device_csr = _openssl_key_and_csr(tmp_path, "sensor-0001")
    cli.run("cert", "enroll", "--method", "previous-stage-certificate", "--csr", str(device_csr),
            "--client-cert", str(tmp_path / "chip.pem"), "--client-key", str(chip_key))

    (device,) = cli.json("device", "list", "--owner", "deviceco")  # type: ignore[misc]
    assert (device["name"], device["state"]) == ("sensor-0001", "active")
    history = cli.json("device", "history", device["id"])
    assert [(i["stage"], i["status"]) for i in history] == [  # type: ignore[union-attr]
        ("component", "good"), ("device", "good")]
    assert "sensor-0001" in cli.run("device", "show", device["id"]).stdout

    with webhook_receiver() as receiver:
        hook = cli.json("webhook", "add", "deviceco", receiver.url, "--event", "device.*",
                        "--event", "certificate.held")
        assert hook["secret"]  # type: ignore[index]
        held = cli.json("device", "event", device["id"], "lost", "--details", '{"ticket": 7}')
        assert held["device"]["state"] == "lost"  # type: ignore[index]
        assert [c["status"] for c in held["certificates"]] == ["on-hold"]  # type: ignore[index]
        refused = cli.run("device", "event", device["id"], "maintenance_end", expect=1)
        assert "is lost: event maintenance_end is not allowed" in " ".join(refused.stderr.split())
        cli.run("device", "event", device["id"], "found")
        assert cli.json("webhook", "dispatch") == {"created": 3, "attempted": 3}
    kinds = sorted(json.loads(r.body)["type"] for r in receiver.received)
    assert kinds == ["certificate.held", "device.found", "device.lost"]
    secret = hook["secret"].encode()  # type: ignore[index]
    for request in receiver.received:
        signature = request.headers[SIGNATURE_HEADER]
        sent_at = int(signature.split(",")[0].removeprefix("t="))
        assert verify_signature(secret, signature, request.body, sent_at)
    deliveries = cli.json("webhook", "deliveries", "--status", "delivered")
    assert len(deliveries) == 3  # type: ignore[arg-type]
    assert [w["id"] for w in cli.json("webhook", "list")] == [hook["id"]]  # type: ignore[index, union-attr]
    cli.run("webhook", "remove", hook["id"])  # type: ignore[index]
    assert cli.json("webhook", "list") == []
    assert cli.json("expiry", "scan") == []
    bad = cli.run("device", "event", device["id"], "lost", "--details", "[1]", expect=2)
    assert "JSON object" in bad.stderr
    # Issue 22 item 8: an owner change to an organization not created yet says the steps.
    unknown = cli.run("device", "event", device["id"], "owner_change", "--details",
                      '{"new_owner": "newco"}', expect=1)
    assert unknown.stderr.count("\n") == 1
    assert ("unknown organization 'newco': create it with its CAs first (iotpki authority "
            "create newco-root --org newco") in unknown.stderr
    assert cli.json("device", "show", device["id"])["owner"] == "deviceco"  # type: ignore[index]
