"""Issue 22 item 4: `cert enroll` with a chip certificate written by `cert issue --out` (the
leaf alone) completes the chain from what the store knows and enrolls; a chip certificate
whose issuer nobody trusts is refused (exit 3) with a message saying what is missing."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.supply_chain.test_cli_story import _openssl_key_and_csr
from tests.test_cli import CLI


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def test_a_leaf_alone_enrolls_and_an_untrusted_one_says_what_is_missing(tmp_path: Path) -> None:
    cli = CLI(tmp_path / "data", None)
    cli.run("init", "--demo")
    chip_key, chip_csr = _openssl_key_and_csr(tmp_path, "chip-0001")
    cli.run("cert", "issue", "--ca", "chipco-components", "--profile", "component", "--csr",
            str(chip_csr), "--san", "uri:urn:chipco:chip:0001", "--out", str(tmp_path / "chip.pem"))
    assert (tmp_path / "chip.pem").read_text().count("BEGIN CERTIFICATE") == 1  # leaf alone
    cli.run("manifest", "export", "--from", "chipco", "--to", "deviceco", "--ca",
            "chipco-components", "--out", str(tmp_path / "tray.der"))
    cli.run("manifest", "import", str(tmp_path / "tray.der"), "--org", "deviceco", "--ca",
            "deviceco-devices", "--profile", "device")
    _, device_csr = _openssl_key_and_csr(tmp_path, "sensor-1")
    enrolled = cli.json("cert", "enroll", "--method", "previous-stage-certificate", "--csr",
                        str(device_csr), "--client-cert", str(tmp_path / "chip.pem"),
                        "--client-key", str(chip_key))
    assert enrolled["authority"] == "deviceco-devices"  # type: ignore[index]

    # A chip of a supplier nobody here knows (its own openssl CA): refused, in one line
    # that names what is missing.
    ca_key, ca_cert = tmp_path / "rogue-ca.key", tmp_path / "rogue-ca.pem"
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-subj", "/CN=Rogue Chip CA", "-days", "30", "-keyout", str(ca_key), "-out",
            str(ca_cert), "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    rogue_key, rogue_csr = _openssl_key_and_csr(tmp_path, "chip-0666")
    rogue = tmp_path / "rogue.pem"
    extensions = tmp_path / "chip.ext"
    extensions.write_text("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                          "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
    openssl("x509", "-req", "-in", str(rogue_csr), "-CA", str(ca_cert), "-CAkey", str(ca_key),
            "-days", "30", "-extfile", str(extensions), "-out", str(rogue))
    def enroll_rogue(presented: Path = rogue) -> str:
        refused = cli.run("cert", "enroll", "--method", "previous-stage-certificate", "--csr",
                          str(device_csr), "--client-cert", str(presented), "--client-key",
                          str(rogue_key), "--ca", "deviceco-devices", "--profile", "device",
                          expect=3)
        assert refused.stderr.count("\n") == 1, refused.stderr
        return refused.stderr

    assert enroll_rogue().startswith("refused (not-registered): the presented identity is on "
                                     "no manifest or registration")
    # Registered by fingerprint, it still chains to no anchor DeviceCo trusts: the message
    # names the organization and what the path lacks.
    fingerprint = subprocess.run(
        ["openssl", "x509", "-in", str(rogue), "-noout", "-fingerprint", "-sha256"],
        check=True, capture_output=True, text=True).stdout.split("=")[1].strip()
    cli.run("registration", "create", "--org", "deviceco", "--ca", "deviceco-devices",
            "--profile", "device", "--method", "previous-stage", "--fingerprint",
            fingerprint.replace(":", "").lower())
    assert enroll_rogue() == (
        "refused (untrusted-chain): deviceco trusts no supplier anchor for this identity: its "
        "issuer (CN=Rogue Chip CA) was not sent with it and is no CA known here: send the chain "
        "(leaf first), or import the supplier's CA (iotpki authority import) and trust it "
        "(iotpki org trust)\n")
    with_chain = tmp_path / "rogue-chain.pem"
    with_chain.write_text(rogue.read_text() + ca_cert.read_text())
    assert enroll_rogue(with_chain) == (
        "refused (untrusted-chain): deviceco trusts no supplier anchor for this identity: its "
        "chain ends at CN=Rogue Chip CA, which is not an anchor of a trusted supplier (iotpki "
        "org trust ORG --supplier SUPPLIER --anchor LABEL)\n")
