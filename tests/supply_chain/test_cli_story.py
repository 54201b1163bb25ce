"""The first two stages of the story through the `iotpki` command and openssl alone."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.test_cli import CLI


def _openssl_key_and_csr(tmp: Path, name: str) -> tuple[Path, Path]:
    key, csr = tmp / f"{name}.key", tmp / f"{name}.csr"
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-subj", f"/CN={name}",
                    "-keyout", str(key), "-out", str(csr)], check=True, capture_output=True)
    return key, csr


def test_chip_manifest_and_device_enrollment_from_the_command_line(tmp_path: Path) -> None:
    cli = CLI(tmp_path / "data", None)
    cli.run("init", "--demo")
    chip_key, chip_csr = _openssl_key_and_csr(tmp_path, "chip-0001")
    cli.run("cert", "issue", "--ca", "chipco-components", "--profile", "component", "--csr",
            str(chip_csr), "--san", "uri:urn:chipco:chip:0001", "--chain",
            "--out", str(tmp_path / "chip.pem"))
    cli.run("manifest", "export", "--from", "chipco", "--to", "deviceco", "--ca",
            "chipco-components", "--profile", "component", "--out", str(tmp_path / "m.der"))
    imported = cli.json("manifest", "import", str(tmp_path / "m.der"), "--org", "deviceco",
                        "--ca", "deviceco-devices", "--profile", "device")
    assert imported["entries"] == 1 and imported["sender"] == "chipco"  # type: ignore[index]

    _, device_csr = _openssl_key_and_csr(tmp_path, "sensor-0001")
    enrolled = cli.json("cert", "enroll", "--method", "previous-stage-certificate", "--csr",
                        str(device_csr), "--client-cert", str(tmp_path / "chip.pem"),
                        "--client-key", str(chip_key), "--out", str(tmp_path / "device.pem"))
    assert enrolled["authority"] == "deviceco-devices"  # type: ignore[index]
    again = cli.run("cert", "enroll", "--method", "previous-stage-certificate", "--csr",
                    str(device_csr), "--client-cert", str(tmp_path / "chip.pem"),
                    "--client-key", str(chip_key), expect=3)
    assert "registration-consumed" in again.stderr

    cli.run("authority", "export", "deviceco-root", "--out", str(tmp_path / "root.pem"))
    verify = subprocess.run(["openssl", "verify", "-CAfile", str(tmp_path / "root.pem"),
                             "-untrusted", str(tmp_path / "device.pem"), str(tmp_path / "device.pem")],
                            capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    registrations = cli.json("registration", "list", "--org", "deviceco")
    assert [r["status"] for r in registrations] == ["consumed"]  # type: ignore[union-attr]
