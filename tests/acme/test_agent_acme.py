"""The device agent's ACME client (`iotpki.agent.acme_client`) against the ACME server in
process: device-attest-01 with the previous-stage key, the issued chain, the suggested
renewal window (RFC 9773), and a refusal as the agent sees it."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import ssl
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import NameOID
from typer.testing import CliRunner

from iotpki.agent.acme_client import ACMEDeviceClient
from iotpki.agent.config import parse_config
from iotpki.agent.credentials import build_csr
from iotpki.agent.device import Agent
from iotpki.agent.errors import RefusedError, TransportError
from iotpki.agent.factory import build_agent
from iotpki.agent.renewal import Action
from iotpki.agent.transport import Answer
from iotpki.agent.trust import certificate_fingerprint
from iotpki.cli.main import app
from iotpki.core.ra.acme_state import ACMEState
from iotpki.wire.acme.messages import ari_certificate_id
from iotpki.wire.keys import generate_private_key
from tests.acme.conftest import BASE, ACMEWorld, InProcess
from tests.acme.test_device_attest import DOMAIN, make_sensor
from tests.factories import domain_uri


class InProcessTransport:
    """The agent's `Transport` over the in-process ACME app."""

    def __init__(self, http: InProcess) -> None:
        self._http = http

    def request(self, method: str, url: str, body: bytes | None = None,
                headers: dict[str, str] | None = None,
                tls: ssl.SSLContext | None = None) -> Answer:
        answer = self._http.request(method, url, content=body, headers=headers or {})
        return Answer(answer.status_code, {k.lower(): v for k, v in answer.headers.items()},
                      answer.content)

    def close(self) -> None:
        pass


def eab(acme: ACMEWorld) -> tuple[str, bytes]:
    made = acme.pki.acme_keys.create("operatorco", "test", "devices")
    return made.key_id, base64.urlsafe_b64decode(made.hmac_key + "=" * (-len(made.hmac_key) % 4))


def device_client(acme: ACMEWorld) -> ACMEDeviceClient:
    return ACMEDeviceClient(f"{BASE}/acme/devices/directory", generate_private_key("ec-p256"),
                            transport=InProcessTransport(acme.http))


def test_agent_enrolls_by_device_attestation_and_reads_its_window(acme: ACMEWorld) -> None:
    sensor = make_sensor(acme, "sensor-agent-0001")
    client = device_client(acme)
    client.register(eab(acme))
    new_key = generate_private_key("ec-p256")
    csr = build_csr(new_key, x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, sensor.name)]),
                    [domain_uri(DOMAIN)])
    chain = client.enroll_attested(sensor.name, sensor.key,
                                   [x509.load_der_x509_certificate(c) for c in sensor.chain], csr)
    leaf = chain[0]
    assert leaf.public_key().public_numbers() == new_key.public_key().public_numbers()
    start, end = client.renewal_window(leaf)
    assert leaf.not_valid_before_utc < start < end < leaf.not_valid_after_utc
    assert end - start > timedelta(0)


def test_agent_sees_a_refusal_as_refused_error(acme: ACMEWorld) -> None:
    sensor = make_sensor(acme, "sensor-agent-0002", register=False)
    client = device_client(acme)
    client.register(eab(acme))
    csr = build_csr(generate_private_key("ec-p256"),
                    x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, sensor.name)]))
    with pytest.raises(RefusedError) as refused:
        client.enroll_attested(sensor.name, sensor.key,
                               [x509.load_der_x509_certificate(c) for c in sensor.chain], csr)
    assert refused.value.reason == "unauthorized"
    assert "registration" in refused.value.detail


class Clock:
    """The agent's clock: real time moved forward by the test (the server keeps real time)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


class Counting(InProcessTransport):
    def __init__(self, http: InProcess) -> None:
        super().__init__(http)
        self.renewal_info = 0
        self.answers: list[Answer] = []

    def request(self, method: str, url: str, body: bytes | None = None,
                headers: dict[str, str] | None = None,
                tls: ssl.SSLContext | None = None) -> Answer:
        answer = super().request(method, url, body, headers, tls)
        if "/renewal-info/" in url:
            self.renewal_info += 1
            self.answers.append(answer)
        return answer


def sensor_agent(acme: ACMEWorld, tmp_path: Path, name: str,
                 clock: Clock) -> tuple[Agent, Counting]:
    sensor = make_sensor(acme, name)
    (tmp_path / "device.pem").write_bytes(b"".join(
        x509.load_der_x509_certificate(c).public_bytes(Encoding.PEM) for c in sensor.chain))
    (tmp_path / "device.key").write_bytes(sensor.key.private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    key_id, hmac_key = eab(acme)
    root = acme.pki.authorities.get("operatorco-root").certificate
    config = parse_config({
        "directory": "agent", "protocol": "acme", "url": f"{BASE}/acme/devices/directory",
        "trust_anchors": [certificate_fingerprint(root)], "subject": f"CN={name}",
        "enrollment": {"previous_certificate": "device.pem", "previous_key": "device.key",
                       "eab_key_id": key_id,
                       "eab_hmac": base64.urlsafe_b64encode(hmac_key).decode()}},
        tmp_path)
    transport = Counting(acme.http)
    return build_agent(config, clock, random.Random(7), transport=transport), transport


def pull_renewals(acme: ACMEWorld, within: str) -> None:
    """The operator's `iotpki acme pull-renewals` on the server's data directory."""
    settings = acme.pki.settings
    database = ["--database-url", settings.database_url] if settings.database_url else []
    result = CliRunner().invoke(app, ["--data-dir", str(settings.data_dir), *database, "acme",
                                      "pull-renewals", "--authority", "operatorco-operations",
                                      "--profile", "operational", "--within", within,
                                      "--reason", "CA key rollover"])
    assert result.exit_code == 0, (result.output, result.exception)


def test_agent_enrolls_and_renews_inside_the_servers_window(acme: ACMEWorld,
                                                            tmp_path: Path) -> None:
    """`iotpki-agent` over ACME: enrollment by device-attest-01 (previous stage), the
    renewalInfo window (RFC 9773 §4.2) asked again only after Retry-After (§4.3), renewal at
    a time inside the pulled-forward window with `replaces` (§5), authorized by the current
    certificate; the replaced certificate stays good and no longer renews."""
    clock = Clock()
    agent, transport = sensor_agent(acme, tmp_path, "sensor-agent-0010", clock)
    with agent:
        enrolled = agent.step()
        assert enrolled.decision.action is Action.ENROLL and enrolled.error is None, enrolled
        first = agent.store.current()
        assert first is not None
        waiting = agent.step()  # asks renewalInfo: the profile's window, months away
        assert waiting.decision.action is Action.WAIT, waiting.decision
        assert transport.renewal_info == 1
        start, end = agent.state.window_start, agent.state.window_end
        assert start is not None and end is not None
        assert start <= waiting.decision.at <= end
        assert agent.state.window_check is not None and \
            agent.state.window_check - clock() > timedelta(hours=5)  # Retry-After 21600
        pull_renewals(acme, "48h")
        clock.offset = timedelta(hours=1)
        assert agent.step().decision.action is Action.WAIT  # Retry-After not yet passed
        assert transport.renewal_info == 1
        clock.offset = timedelta(hours=6, minutes=1)
        before = agent.state  # the first certificate's draw
        result = agent.step()  # asks again: the pulled window (and renews if its time came)
        assert transport.renewal_info == 2
        suggested = json.loads(transport.answers[-1].body)["suggestedWindow"]
        pulled_start, pulled_end = (datetime.strptime(suggested[k], "%Y-%m-%dT%H:%M:%SZ")
                                    .replace(tzinfo=UTC) for k in ("start", "end"))
        assert pulled_end <= datetime.now(UTC) + timedelta(hours=48, seconds=5) < end
        renew_at = agent.scheduler.renew_at(first.certificate, replace(
            before, window_start=pulled_start, window_end=pulled_end))
        assert pulled_start <= renew_at <= pulled_end  # RFC 9773 §4.2: a time inside it
        if result.decision.action is Action.WAIT:
            assert result.decision.at == renew_at
            clock.offset = renew_at - datetime.now(UTC) + timedelta(seconds=1)
            result = agent.step()
        else:  # the chosen time had come already
            assert renew_at <= clock()
        assert result.decision.action is Action.RENEW and result.error is None, result
        second = agent.store.current()
        with pytest.raises(RefusedError) as replaced:  # only the newest of the identity renews
            agent.client.renew(first, agent.store.new_key("ec-p256"))
        assert "newest" in replaced.value.detail
    assert second is not None and second.certificate != first.certificate
    assert second.certificate.subject == first.certificate.subject
    fingerprint = hashlib.sha256(second.certificate.public_bytes(Encoding.DER)).hexdigest()
    order = ACMEState(acme.pki.database.unit_of_work, acme.pki.clock).order_for_certificate(
        fingerprint)
    assert order is not None and order.replaces == ari_certificate_id(first.certificate)
    old = acme.pki.certificates.get("operatorco-operations", first.certificate.serial_number)
    assert old.status.value == "good"  # not revoked: it expires by itself


def test_agent_with_a_revoked_certificate_cannot_renew(acme: ACMEWorld,
                                                       tmp_path: Path) -> None:
    clock = Clock()
    agent, _ = sensor_agent(acme, tmp_path, "sensor-agent-0011", clock)
    with agent:
        identity = agent.enroll()
        acme.pki.revocation.revoke("operatorco-operations", identity.certificate.serial_number,
                                   x509.ReasonFlags.key_compromise, "operatorco:ra")
        with pytest.raises(RefusedError) as refused:
            agent.renew()
    assert refused.value.reason == "unauthorized"
    kept = agent.store.current()
    assert kept is not None and kept.chain == identity.chain  # nothing new installed


class Scripted:
    """A hostile ACME server for the agent's renewalInfo parser: a directory, then the
    renewal-info answer the test sets."""

    def __init__(self, directory: dict) -> None:
        self.directory = directory
        self.answer = Answer(404, {}, b"")

    def request(self, method: str, url: str, body: bytes | None = None,
                headers: dict[str, str] | None = None,
                tls: ssl.SSLContext | None = None) -> Answer:
        if url.endswith("/directory"):
            return Answer(200, {}, json.dumps(self.directory).encode())
        return self.answer

    def close(self) -> None:
        pass


def test_rfc9773_s4_2_renewal_info_answers_the_agent_refuses(acme: ACMEWorld) -> None:
    """A missing resource or an unknown certificate is "no window" (the agent's own rule);
    a window that is not one, or no JSON, or a server fault is an error (the window kept)."""
    sensor = make_sensor(acme, "sensor-agent-0012", register=False)
    server = Scripted({"newNonce": "x", "newAccount": "x", "newOrder": "x"})
    client = ACMEDeviceClient("https://hostile.test/directory", generate_private_key("ec-p256"),
                              transport=server)
    assert client.renewal_info(sensor.certificate) is None  # no renewalInfo in the directory
    server.directory["renewalInfo"] = "https://hostile.test/renewal-info"
    client = ACMEDeviceClient("https://hostile.test/directory", generate_private_key("ec-p256"),
                              transport=server)
    assert client.renewal_info(sensor.certificate) is None  # 404: not known there
    window = {"start": "2030-01-02T00:00:00Z", "end": "2030-01-01T00:00:00Z"}
    for answer in (Answer(200, {}, json.dumps({"suggestedWindow": window}).encode()),
                   Answer(200, {}, json.dumps({"suggestedWindow": {"start": 1}}).encode()),
                   Answer(200, {}, b"not json"), Answer(200, {}, b"[]"),
                   Answer(500, {}, b"")):
        server.answer = answer
        with pytest.raises(TransportError):
            client.renewal_info(sensor.certificate)
    window = {"start": "2030-01-01T00:00:00Z", "end": "2030-01-02T00:00:00Z"}
    server.answer = Answer(200, {"retry-after": "600"},
                           json.dumps({"suggestedWindow": window}).encode())
    got = client.renewal_info(sensor.certificate)
    assert got is not None and (got.start.day, got.end.day, got.retry_after) == (1, 2, 600)


def test_agent_renews_a_certificate_another_account_obtained(acme: ACMEWorld,
                                                             tmp_path: Path) -> None:
    """RFC 9773 §5: the server refuses `replaces` for a certificate the account did not
    order (a device that enrolled over another protocol or account); the agent orders again
    without it and the current certificate still authorizes the renewal."""
    clock = Clock()
    agent, _ = sensor_agent(acme, tmp_path, "sensor-agent-0013", clock)
    sensor_chain = agent.config.credentials()
    other = device_client(acme)
    other.register(eab(acme))
    with agent:
        pending = agent.store.new_key("ec-p256")
        chain = other.enroll_attested(
            "sensor-agent-0013", sensor_chain.previous_key, sensor_chain.previous_chain,
            build_csr(pending.key, x509.Name([x509.NameAttribute(
                NameOID.COMMON_NAME, "sensor-agent-0013")]), [domain_uri(DOMAIN)]))
        first = agent.store.install(pending, chain)
        renewed = agent.renew()
    assert renewed.certificate.subject == first.certificate.subject
    assert renewed.certificate.serial_number != first.certificate.serial_number
    fingerprint = hashlib.sha256(renewed.certificate.public_bytes(Encoding.DER)).hexdigest()
    order = ACMEState(acme.pki.database.unit_of_work, acme.pki.clock).order_for_certificate(
        fingerprint)
    assert order is not None and order.replaces is None  # ordered again without it


def test_rfc8555_s7_1_answers_without_their_members_are_transport_errors() -> None:
    """A directory, account or order answer lacking what RFC 8555 §7.1 gives it is a
    `TransportError` the agent's loop backs off from, never a KeyError."""
    server = Scripted({"newNonce": "https://hostile.test/nonce"})
    with pytest.raises(TransportError, match="lacks newAccount, newOrder"):
        ACMEDeviceClient("https://hostile.test/directory", generate_private_key("ec-p256"),
                         transport=server)
    server.directory.update(newAccount="https://hostile.test/acct",
                            newOrder="https://hostile.test/order")
    client = ACMEDeviceClient("https://hostile.test/directory", generate_private_key("ec-p256"),
                              transport=server)
    server.answer = Answer(201, {"replay-nonce": "n"}, b"{}")  # no Location, no members
    with pytest.raises(TransportError, match="Location"):
        client.register()
    client.account_url = "https://hostile.test/acct/1"
    with pytest.raises(TransportError, match="unexpected ACME answer"):
        client.order_attested("sensor", generate_private_key("ec-p256"), [], b"")
