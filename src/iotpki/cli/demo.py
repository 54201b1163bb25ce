"""`iotpki demo`: the supply-chain story (docs/demo.md) end to end, printing each step (see
`demo_story` for what happens, `demo_broker` for the processes it starts)."""

from __future__ import annotations

import tempfile
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path

import typer
from cryptography import x509

from iotpki.agent.device import Agent
from iotpki.agent.errors import RefusedError
from iotpki.cli.demo_broker import DemoError, Outcome, free_port
from iotpki.cli.demo_setup import DEMO_DOMAIN
from iotpki.cli.demo_story import (
    DEVICE_TARGET,
    OPERATIONAL_TARGET,
    OPERATIONS,
    SENSORS,
    Demo,
    DemoResult,
    Say,
    Subscription,
    client_of,
    publish,
)
from iotpki.cli.output import JSON_OPTION, console, emit_json, fail
from iotpki.wire.peer import certificate_domains

TOPIC = f"{DEMO_DOMAIN}/floor-3/temperature"


def run_demo(data_dir: Path, say: Say) -> DemoResult:
    demo = Demo(data_dir, say, free_port(), free_port(), free_port())
    pki = demo.create_pki()
    agents: dict[str, Agent] = {}
    with ExitStack() as cleanup:
        cleanup.callback(pki.close)
        cleanup.callback(_close_all, agents)
        chips = demo.make_chips(pki)
        demo.ship(pki, "chipco", "deviceco", chips[:SENSORS], DEVICE_TARGET)
        sensors = demo.build_sensors(pki, chips)
        demo.ship(pki, "deviceco", "operatorco", sensors, OPERATIONAL_TARGET)
        cleanup.callback(demo.server.stop)
        demo.server.start()
        demo.say("servers", f"iotpki serve: EST on {demo.server.https_url}, CMP/OCSP/CRL on "
                       f"{demo.server.http_url}")
        agents.update(demo.enroll_operational(sensors))
        agents["sensor-b7-0001"] = demo.enroll_other_domain(pki)
        ca_file, cert_file, key_file = demo.broker_identity(pki)
        demo.check_broker_as_peer(agents)
        acl = {name: [f"{d}/#" for d in sorted(_domains(agent))] for name, agent in agents.items()}
        demo.broker.configure(ca_file, cert_file, key_file, demo.fetch_crl(), acl)
        cleanup.callback(demo.broker.stop)
        demo.broker.start()
        demo.say("broker", f"Mosquitto on 127.0.0.1:{demo.broker.port}: TLS with require_certificate, "
                      f"the CRL of {OPERATIONS}, username = certificate CN, ACL: each sensor "
                      f"only on its domain's topics")
        _publish_and_refuse(demo, agents, ca_file)
        _stolen(demo, agents, ca_file)
    return demo.result


def _publish_and_refuse(demo: Demo, agents: dict[str, Agent], ca_file: Path) -> None:
    subscriber = Subscription(demo.broker, client_of(agents["sensor-0001"], "sensor-0001"),
                              ca_file, f"{DEMO_DOMAIN}/#")
    try:
        sent = publish(demo.broker, client_of(agents["sensor-0002"], "sensor-0002"), ca_file,
                       TOPIC, "21.5")
        _expect(sent, True, "sensor-0002 publishing to its domain")
        demo.say("MQTT", f"sensor-0002 published 21.5 to {TOPIC}")
        intruder = publish(demo.broker, client_of(agents["sensor-b7-0001"], "sensor-b7-0001"),
                           ca_file, TOPIC, "99.9")
        _expect(intruder, False, "sensor-b7-0001 publishing to building 42")
        demo.result.refused["sensor-b7-0001"] = intruder.output or "not authorized"
        demo.say("MQTT", f"sensor-b7-0001 (building 7) publishing to {TOPIC}: refused "
                         f"({intruder.output or 'not authorized'})")
        received = subscriber.received()
    finally:
        subscriber.close()
    demo.result.published = received
    if not any("21.5" in line for line in received) or any("99.9" in line for line in received):
        raise DemoError(f"the subscriber received {received}")
    demo.say("MQTT", f"sensor-0001 subscribed to {DEMO_DOMAIN}/# and received {received}")


def _stolen(demo: Demo, agents: dict[str, Agent], ca_file: Path) -> None:
    pki = demo.pki_or_fail()
    stolen = agents["sensor-0003"]
    identity = stolen.store.current()
    assert identity is not None
    pki.revocation.revoke(OPERATIONS, identity.certificate.serial_number,
                          x509.ReasonFlags.key_compromise, "operatorco:crm (reported stolen)")
    # Mosquitto reads one full CRL, no delta: the server republishes the full CRL within
    # IOTPKI_CRL_FULL_AFTER_CHANGE (30 s) of a revocation (docs/crl.md).
    demo.fetch_crl(must_list=identity.certificate.serial_number)
    running = demo.broker.process
    demo.broker.reload()  # SIGHUP: Mosquitto 2.0 re-reads crlfile (demo_broker)
    demo.say("stolen", f"sensor-0003 reported stolen: certificate "
                       f"{identity.certificate.serial_number:x} revoked (keyCompromise), new CRL "
                       f"published and fetched from the CRL distribution point, broker "
                       f"reloaded with it (SIGHUP)")
    refused = publish(demo.broker, client_of(stolen, "sensor-0003"), ca_file, TOPIC, "0.0")
    _expect(refused, False, "the stolen sensor-0003")
    demo.result.refused["sensor-0003"] = refused.output
    demo.result.broker_reloaded_in_place = (demo.broker.process is running
                                            and running is not None and running.poll() is None)
    demo.say("MQTT", f"sensor-0003 refused by the broker: {refused.output.splitlines()[0]}")
    still = publish(demo.broker, client_of(agents["sensor-0002"], "sensor-0002"), ca_file,
                    TOPIC, "21.6")
    _expect(still, True, "sensor-0002 after the revocation of another sensor")
    try:
        stolen.renew()
    except RefusedError as exc:
        demo.result.refused["sensor-0003 renewal"] = exc.reason
        demo.say("stolen", f"sensor-0003's renewal refused by the server: {exc.detail}")
    else:
        raise DemoError("a revoked sensor renewed its certificate")


def _close_all(agents: dict[str, Agent]) -> None:
    for agent in agents.values():
        agent.close()


def _expect(outcome: Outcome, accepted: bool, what: str) -> None:
    if outcome.ok is not accepted:
        raise DemoError(f"{what}: expected {'success' if accepted else 'refusal'}, "
                        f"got {outcome.output!r}")


def _domains(agent: Agent) -> frozenset[str]:
    identity = agent.store.current()
    return certificate_domains(identity.certificate) if identity is not None else frozenset()


def demo(
    data_dir: Path = typer.Option(None, "--data-dir",
                                  help="Where the demo keeps its PKI, devices and broker "
                                       "(default: a temporary directory, removed after)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Run the whole story end to end with a Mosquitto broker.

    Chips, manifests, stage and operational certificates through the device agent, a
    Mosquitto broker that accepts building-42 sensors, refuses another domain and, after
    its revocation, a stolen sensor."""
    def say(title: str, detail: str) -> None:
        if not as_json:
            console.print(f"[bold cyan]{title:>11}[/] {detail}", highlight=False)

    with ExitStack() as stack:
        directory = data_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(
            prefix="iotpki-demo-")))
        try:
            result = run_demo(directory.resolve(), say)
        except DemoError as exc:
            fail(f"demo step failed: {exc}")
    if as_json:
        emit_json(asdict(result))
    else:
        console.print("[bold green]demo complete[/]")
