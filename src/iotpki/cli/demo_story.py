"""The story of DESIGN.md §1, end to end, on the embedded defaults (`iotpki demo`).

ChipCo provisions chips and ships a signed manifest; DeviceCo verifies each chip's
identity and issues stage certificates (a chip on no manifest is refused); OperatorCo
imports DeviceCo's manifest for building 42, and each sensor's *device agent* enrolls
over EST with its DeviceCo certificate (a sensor of building 7 over CMP with a one-time
secret), against a real `iotpki serve`. A real Mosquitto broker (mutual TLS, our CRL,
an ACL from the certificates' domains) lets a building-42 sensor publish to its domain's
topics, refuses the building-7 sensor there, and refuses a stolen sensor after its
revocation (keyCompromise) once the new CRL is in force.
"""

from __future__ import annotations

import ipaddress
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from iotpki.agent.config import AgentConfig
from iotpki.agent.credentials import build_csr
from iotpki.agent.device import Agent
from iotpki.agent.errors import RefusedError
from iotpki.agent.factory import build_agent
from iotpki.agent.keystore import write_private
from iotpki.agent.revocation import CRLCache
from iotpki.agent.trust import certificate_fingerprint
from iotpki.app import PKI, build_pki, install_default_profiles
from iotpki.cli.demo_broker import Broker, Client, DemoError, PKIServer, Subscription, publish
from iotpki.cli.demo_setup import DEMO_DOMAIN, create_demo_hierarchy
from iotpki.core.ca.certificate import CertificateRecord
from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.core.methods import MethodName
from iotpki.core.outcomes import Issued, Rejected
from iotpki.core.ra.enrollment import EnrollmentRequest
from iotpki.core.ra.registration import RegistrationMethod
from iotpki.core.ra.registration_service import RegistrationSpec
from iotpki.core.supply_chain.manifests import ImportTarget
from iotpki.keys.passphrase import create_passphrase_file, read_passphrase
from iotpki.settings import Settings
from iotpki.wire.chain import encode_pem_chain
from iotpki.wire.keys import generate_private_key
from iotpki.wire.names import parse_subject
from iotpki.wire.peer import PeerRejectedError, certificate_domains, check_peer
from iotpki.wire.possession import sign_possession

OPERATIONS = "operatorco-operations"
OTHER_DOMAIN = "building-7.operator.example"
SENSORS = 3
Say = Callable[[str, str], None]  # (step title, detail)


@dataclass
class Holder:
    name: str
    key: Any
    chain: tuple[x509.Certificate, ...]
    record: CertificateRecord


@dataclass
class StepRecord:
    title: str
    detail: str


@dataclass
class DemoResult:
    steps: list[StepRecord] = field(default_factory=list)
    published: list[str] = field(default_factory=list)  # what the subscriber received
    refused: dict[str, str] = field(default_factory=dict)  # who was refused, and how
    broker_reloaded_in_place: bool = False  # the new CRL took effect without a restart


class Demo:
    def __init__(self, data_dir: Path, say: Say, http_port: int, https_port: int,
                 broker_port: int) -> None:
        self.dir = data_dir
        self._say = say
        self.result = DemoResult()
        self.server = PKIServer(data_dir, http_port, https_port)
        (data_dir / "broker").mkdir(parents=True, exist_ok=True)
        self.broker = Broker(data_dir / "broker", broker_port)
        self.settings = Settings.from_environment(data_dir, None, self.server.http_url)
        self.pki: PKI | None = None

    def say(self, title: str, detail: str) -> None:
        self.result.steps.append(StepRecord(title, detail))
        self._say(title, detail)

    # -- 0. the PKI ---------------------------------------------------------------------------

    def create_pki(self) -> PKI:
        install_default_profiles(self.settings)
        if read_passphrase(self.settings.data_dir) is None:
            create_passphrase_file(self.settings.data_dir)
        pki = self.pki = build_pki(self.settings)
        created = create_demo_hierarchy(pki)
        if OTHER_DOMAIN not in {d.name for d in pki.organizations.domains("operatorco")}:
            pki.organizations.add_domain("operatorco", OTHER_DOMAIN, "demo")
        self.say("PKI", f"{len(created) or 6} authorities (ChipCo, DeviceCo, OperatorCo: a root "
                        f"and an issuing CA each), OperatorCo domains {DEMO_DOMAIN} and "
                        f"{OTHER_DOMAIN}, in {self.dir}")
        return pki

    # -- 1-3. the supply chain ---------------------------------------------------------------

    def make_chips(self, pki: PKI) -> list[Holder]:
        chips = []
        for number in range(1, SENSORS + 2):  # the last one never goes on a manifest
            key = generate_private_key("ec-p256")
            csr = build_csr(key, parse_subject(f"CN=chip-{number:04d}"), [
                x509.UniformResourceIdentifier(f"urn:chipco:chip:{number:04d}")])
            outcome = pki.issuance.issue(IssuanceRequest(
                "chipco-components", "component", csr, "chipco:provisioning-station-1"))
            issued = _issued(outcome, "component certificate")
            chips.append(Holder(f"chip-{number:04d}", key,
                                (issued.certificate, *issued.chain[:-1]), issued.record))
        self.say("ChipCo", f"provisioning station: {len(chips)} chips with a key on the chip "
                           f"and a component certificate (IDevID) from chipco-components")
        return chips

    def ship(self, pki: PKI, sender: str, recipient: str, items: list[Holder],
             target: ImportTarget) -> None:
        signed = pki.manifests.export(sender, recipient, [h.record for h in items],
                                      f"{sender}:ra")
        imported = pki.manifests.import_manifest(recipient, signed, target, f"{recipient}:ra")
        self.say("manifest", f"{sender} → {recipient}: signed manifest of {imported.entries} "
                             f"identities imported as registrations for {target.profile} "
                             f"certificates from {target.authority}")

    def build_sensors(self, pki: PKI, chips: list[Holder]) -> list[Holder]:
        sensors = []
        for number, chip in enumerate(chips, start=1):
            key = generate_private_key("ec-p256")
            csr = build_csr(key, parse_subject(f"CN=sensor-{number:04d}"))
            outcome = pki.enrollment.enroll(EnrollmentRequest(
                csr=csr, requester=f"device:{chip.name}", client_chain=chip.chain,
                possession_signature=sign_possession(chip.key, csr)),
                MethodName.PREVIOUS_STAGE)
            if number > SENSORS:  # the chip that was on no manifest
                if not isinstance(outcome, Rejected):
                    raise DemoError(f"a chip on no manifest was not refused: {outcome}")
                self.result.refused[chip.name] = f"{outcome.reason.value}: {outcome.detail}"
                self.say("DeviceCo", f"{chip.name} (on no manifest) refused: "
                                     f"{outcome.reason.value}")
                continue
            issued = _issued(outcome, "device certificate")
            sensors.append(Holder(f"sensor-{number:04d}", key,
                                  (issued.certificate, *issued.chain[:-1]), issued.record))
        self.say("DeviceCo", f"{len(sensors)} sensors built; each proved its chip's identity and "
                             f"received a device certificate from deviceco-devices")
        return sensors

    # -- 4. operational certificates through the device agent --------------------------------

    def agent_for(self, name: str, protocol: str, enrollment: dict[str, str]) -> Agent:
        root = self.pki_or_fail().authorities.get("operatorco-root").certificate
        url = (self.server.https_url if protocol == "est"
               else f"{self.server.http_url}/.well-known/cmp")
        return build_agent(AgentConfig(
            directory=self.dir / "devices" / name, protocol=protocol, url=url,
            trust_anchors=(certificate_fingerprint(root),), subject=parse_subject(f"CN={name}"),
            enrollment=enrollment))

    def enroll_operational(self, sensors: list[Holder]) -> dict[str, Agent]:
        agents = {}
        for sensor in sensors:
            files = self.dir / "devices" / f"{sensor.name}-stage"
            files.mkdir(parents=True, exist_ok=True)
            (files / "device.pem").write_bytes(encode_pem_chain(sensor.chain))
            if not (files / "device.key").exists():
                write_private(files / "device.key", sensor.key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption()))
            agent = self.agent_for(sensor.name, "est", {
                "previous_certificate": str(files / "device.pem"),
                "previous_key": str(files / "device.key")})
            identity = agent.enroll()
            agents[sensor.name] = agent
            self.say("OperatorCo", f"{sensor.name}: agent enrolled over EST with its DeviceCo "
                                   f"certificate → operational certificate "
                                   f"{identity.certificate.serial_number:x}, domains "
                                   f"{sorted(certificate_domains(identity.certificate))}")
        first = agents[sensors[0].name]
        renewed = first.renew()
        self.say("renewal", f"{sensors[0].name}: agent renewed (EST simplereenroll with its "
                            f"current certificate) → {renewed.certificate.serial_number:x}, key "
                            f"store version {renewed.version}")
        return agents

    def enroll_other_domain(self, pki: PKI) -> Agent:
        created = pki.registrations.create(RegistrationSpec(
            "operatorco", OPERATIONS, "operational", RegistrationMethod.ONE_TIME_SECRET,
            subject=parse_subject("CN=sensor-b7-0001"), domain=OTHER_DOMAIN), "operatorco:crm")
        assert created.secret is not None
        agent = self.agent_for("sensor-b7-0001", "cmp", {
            "registration_id": created.registration.id, "secret": created.secret})
        identity = agent.enroll()
        self.say("OperatorCo", f"sensor-b7-0001 (building 7): agent enrolled over CMP with a "
                               f"one-time secret (ir, PasswordBasedMac) → domains "
                               f"{sorted(certificate_domains(identity.certificate))}")
        return agent

    # -- 5. the broker -------------------------------------------------------------------------

    def broker_identity(self, pki: PKI) -> tuple[Path, Path, Path]:
        key = generate_private_key("ec-p256")
        csr = build_csr(key, parse_subject("CN=mqtt.building-42.operator.example"), [
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.UniformResourceIdentifier(f"urn:iotpki:domain:{DEMO_DOMAIN}")])
        issued = _issued(pki.issuance.issue(IssuanceRequest(OPERATIONS, "service", csr,
                                                            "operatorco:ops")), "broker")
        directory = self.broker.directory
        (directory / "broker.pem").write_bytes(encode_pem_chain([issued.certificate,
                                                                 *issued.chain[:-1]]))
        key_file = directory / "broker.key"
        if key_file.exists():
            key_file.unlink()
        write_private(key_file, key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        (directory / "ca.pem").write_bytes(encode_pem_chain(
            pki.authorities.get(OPERATIONS).full_chain[::-1]))
        return directory / "ca.pem", directory / "broker.pem", key_file

    def fetch_crl(self, must_list: int | None = None) -> Path:
        """The CRL as relying parties get it: from the server's CRL distribution point
        (each server node looks for a newer CRL at most once a second, and republishes the
        full CRL within IOTPKI_CRL_FULL_AFTER_CHANGE of a revocation)."""
        url = f"{self.server.http_url}/crl/{OPERATIONS}.crl"
        deadline = time.monotonic() + 90
        while True:
            with urllib.request.urlopen(url, timeout=30) as answer:
                crl = x509.load_der_x509_crl(answer.read())
            if must_list is None or crl.get_revoked_certificate_by_serial_number(must_list):
                break
            if time.monotonic() > deadline:
                raise DemoError(f"the served CRL does not list {must_list:x}")
            time.sleep(0.5)
        path = self.broker.directory / "crl.pem"
        path.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
        return path

    def check_broker_as_peer(self, agents: dict[str, Agent]) -> None:
        """DESIGN.md §1 step 5 on the device: the broker must name the sensor's domain."""
        broker_chain = x509.load_pem_x509_certificates(
            (self.broker.directory / "broker.pem").read_bytes())
        revocation = CRLCache()
        for name, agent in agents.items():
            identity = agent.store.current()
            assert identity is not None
            try:
                peer = check_peer(identity.certificate, broker_chain, agent.trust.anchors,
                                  revocation, datetime.now(UTC))
                self.say("peer check", f"{name} accepts the broker: shared domain "
                                       f"{sorted(peer.domains)}, chain and CRL good")
            except PeerRejectedError as exc:
                self.result.refused[f"{name} → broker"] = exc.reason
                self.say("peer check", f"{name} will not deliver to the broker: {exc.reason}")

    def pki_or_fail(self) -> PKI:
        if self.pki is None:
            raise DemoError("the PKI is not created yet")
        return self.pki


def client_of(agent: Agent, name: str) -> Client:
    identity = agent.store.current()
    if identity is None or identity.chain_file is None or identity.key_file is None:
        raise DemoError(f"{name} has no certificate in files")
    return Client(name, identity.chain_file, identity.key_file)


def _issued(outcome: object, what: str) -> Issued:
    if not isinstance(outcome, Issued):
        raise DemoError(f"{what} not issued: {outcome}")
    return outcome


DEVICE_TARGET = ImportTarget("deviceco-devices", "device", timedelta(days=90))
OPERATIONAL_TARGET = ImportTarget(OPERATIONS, "operational", timedelta(days=90),
                                  domain=DEMO_DOMAIN)
__all__ = ["DEVICE_TARGET", "OPERATIONAL_TARGET", "Demo", "DemoResult", "RefusedError",
           "Subscription", "client_of", "publish"]
