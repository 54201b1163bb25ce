"""Agent ↔ `iotpki serve` over real HTTP(S): EST and CMP, one-time secret and
previous-stage certificate, renewal, and a refusal."""

from __future__ import annotations

import stat
import subprocess

import pytest
from cryptography import x509

from iotpki.agent.device import Agent
from iotpki.agent.errors import RefusedError
from iotpki.agent.factory import build_agent
from tests.agent.conftest import CA, DOMAIN, Servers
from tests.supply_chain.story import DEVICE_TARGET, OPERATIONAL_TARGET, advance, enroll, make_chip, ship


def _domains(certificate: x509.Certificate) -> list[str]:
    sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return sans.get_values_for_type(x509.UniformResourceIdentifier)


@pytest.mark.parametrize("protocol", ["est", "cmp"])
def test_one_time_secret_enrollment_then_renewal(servers: Servers, protocol: str) -> None:
    registration, secret = servers.secret_registration(f"sensor-{protocol}")
    with build_agent(servers.config(f"sensor-{protocol}", protocol, {
            "registration_id": registration, "secret": secret})) as agent:
        _enroll_and_renew(servers, agent, protocol)


def _enroll_and_renew(servers: Servers, agent: Agent, protocol: str) -> None:
    first = agent.enroll()
    assert first.certificate.subject.rfc4514_string() == f"CN=sensor-{protocol}"
    assert _domains(first.certificate) == [f"urn:iotpki:domain:{DOMAIN}"]
    assert stat.S_IMODE(first.key_file.stat().st_mode) == 0o600  # type: ignore[union-attr]

    second = agent.renew()
    assert second.certificate.serial_number != first.certificate.serial_number
    assert second.certificate.subject == first.certificate.subject
    assert second.version != first.version
    assert agent.store.current().certificate == second.certificate  # type: ignore[union-attr]
    # an independent verifier accepts the installed chain with the pinned root
    root = servers.dir / "root.pem"
    root.write_bytes(agent.trust.pem())
    done = subprocess.run(["openssl", "verify", "-CAfile", str(root), "-untrusted",
                           str(second.chain_file), str(second.chain_file)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    issued = {r.serial for r in servers.est.issued(CA)}
    assert {c.certificate.serial_number for c in (first, second)} <= issued


@pytest.mark.parametrize("protocol", ["est", "cmp"])
def test_secret_is_single_use(servers: Servers, protocol: str) -> None:
    registration, secret = servers.secret_registration(f"twice-{protocol}")
    config = servers.config(f"twice-{protocol}", protocol, {
        "registration_id": registration, "secret": secret})
    with build_agent(config) as agent:
        agent.enroll()
        with pytest.raises(RefusedError):
            agent.enroll()


@pytest.mark.parametrize("protocol", ["est", "cmp"])
def test_previous_stage_certificate_enrollment(servers: Servers, protocol: str) -> None:
    pki = servers.pki
    chip = make_chip(pki, 7)
    ship(pki, "chipco", "deviceco", [chip], DEVICE_TARGET)
    outcome, key = enroll(pki, chip, "sensor-0007")
    device = advance(chip, outcome, key)
    ship(pki, "deviceco", "operatorco", [device], OPERATIONAL_TARGET)
    files = servers.dir / f"stage-{protocol}"
    files.mkdir(parents=True)
    from cryptography.hazmat.primitives import serialization
    (files / "device.pem").write_bytes(b"".join(
        c.public_bytes(serialization.Encoding.PEM) for c in device.chain))
    (files / "device.key").write_bytes(device.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    with build_agent(servers.config(f"op-{protocol}", protocol, {
            "previous_certificate": str(files / "device.pem"),
            "previous_key": str(files / "device.key")})) as agent:
        identity = agent.enroll()
        assert identity.certificate.issuer == pki.authorities.get(CA).certificate.subject
        assert _domains(identity.certificate) == [f"urn:iotpki:domain:{DOMAIN}"]
        assert agent.renew().certificate.subject == identity.certificate.subject
